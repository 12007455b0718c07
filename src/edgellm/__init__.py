"""edgellm: compressed generative language models on edge devices, measured reproducibly.

Reruns the case study of arXiv 2411.09148 as a DVC pipeline; each concern has one module:
config (params.yaml schema), data and tasks (evaluation sets), models (base checkpoints),
convert (GGUF conversion and quantization), runtime (llama.cpp), evaluate (quality
metrics), devices (resource measurements), report (tables and figures), pipeline (stages).
"""

__version__ = "0.1.0"
