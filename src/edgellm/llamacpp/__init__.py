"""llama.cpp, the study's engine: the in-process runtime and the command-line tools.

- :mod:`.runtime`: a GGUF model and context through llama-cpp-python's low-level API (batched decodes)
- :mod:`.tools`: the one wrapper around llama.cpp's command-line tools (paths, runs, ``llama-perplexity``'s output)
- :mod:`.gguf`: checks and inspection of GGUF files (what a file really holds), with their constants
- :mod:`.convert`: Hugging Face checkpoint -> F32 GGUF, quantization, importance matrices
"""
