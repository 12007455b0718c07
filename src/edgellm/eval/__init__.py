"""Quality: the evaluation data, the tasks as lm-evaluation-harness defines them, and how they are scored.

- :mod:`.data`: datasets from a local mirror or the hub, the same ``datasets.Dataset`` either way
- :mod:`.tasks`: ``tasks.yaml`` (lm-eval 0.4.13's task definitions as data) and item selection
- :mod:`.prepared`: the data stage's snapshot of texts and items, written and read in one place
- :mod:`.perplexity`: perplexity and KL divergence by llama-perplexity's protocol
- :mod:`.scoring`: multiple-choice log-likelihoods and greedy generation with shared prompt prefixes
- :mod:`.judge`: generated answers judged (lm-eval's BLEU/ROUGE, embeddings) under one hallucination rule
- :mod:`.reference_likelihood`: a judge from a language model's likelihood of the references given an answer
- :mod:`.judge_calibration`: the judges against labelled answers, a judge fitted to them, corrected rates
- :mod:`.stats`: bootstrap intervals and paired tests
- :mod:`.lmeval`: lm-evaluation-harness itself on the same items (the equivalence proof)
"""
