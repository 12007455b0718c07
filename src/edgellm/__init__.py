"""edgellm: compressed generative language models on edge devices, measured reproducibly.

Reruns the case study of arXiv 2411.09148 as a DVC pipeline. One package per concern,
imports flowing one way (top to bottom; ``pyproject.toml``'s import-linter contract):
``stages`` (one module per DVC stage), ``report`` (tables, figures, the paper's numbers),
``devices`` / ``eval`` / ``compress`` (resources on devices; quality; pruning and
distillation), ``models`` (base checkpoints), ``provenance``, ``llamacpp`` (runtime and
tools), ``config`` / ``records`` (params.yaml's schema; typed stage records), and
``paths`` / ``io`` at the bottom.
"""

__version__ = "0.1.0"
