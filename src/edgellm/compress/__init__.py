"""Compact models beyond GGUF types: pruning and knowledge distillation in PyTorch.

- :mod:`.activations`: calibration batches and activation statistics (hooks only)
- :mod:`.prune`: magnitude, Wanda, N:M, depth (ShortGPT / angular) and width (Minitron) pruning
- :mod:`.distill`: resumable KL distillation from a teacher
- :mod:`.recipe`: a ``params.yaml`` recipe (prune, then distill) applied to a base checkpoint
"""
