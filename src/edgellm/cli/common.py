"""What the subcommands share: the study's parameters (the project's params.yaml when run inside a checkout, else
the package's defaults), the model file checked before any work, argparse types for numeric options, and the
rule for a file a command writes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Params, load_params
from ..config.schema import Report
from ..llamacpp.gguf import ModelFileError, check_gguf
from ..paths import ProjectNotFound, project_root


def study_root() -> Path | None:
    """The project the command runs in (``EDGELLM_ROOT``, or cwd or a parent with params.yaml and dvc.yaml);
    None outside a checkout, where the commands use :func:`default_params`."""
    try:
        return project_root()
    except ProjectNotFound:
        return None


def default_params() -> Params:
    """The package's defaults: no study, the schema's default settings (seed, threads, the scoring context,
    the shard plan, the profile's and devices' settings), with data from the hub (``data.local_dir`` null;
    ``EDGELLM_DATA_DIR`` still points at a local mirror).

    The schema requires ``models``, ``quantization`` and ``evaluate``: this is the smallest valid study, one
    placeholder model at the reference type, and the tasks ``report.generalization`` needs. No subcommand
    reads those: the model is the file given on the command line, the tasks are ``--tasks``."""
    return Params.model_validate({
        "data": {"local_dir": None},
        "models": {"model": {"source": "local", "path": "."}},
        "quantization": {"types": {"F16": "main"}},
        "evaluate": {"tasks": {t: None for t in Report().generalization}, "tiers": {"main": {}}},
    })


def study_params(root: Path | None = None) -> Params:
    """params.yaml of ``root`` (default: the checkout the command runs in), else :func:`default_params`."""
    root = root or study_root()
    return default_params() if root is None else load_params(root / "params.yaml")


# --------------------------------------------------------------------------- the model file
def tensor_data_end(path: Path) -> int:
    """Where a GGUF file's last tensor ends, by its header and tensor infos (gguf's GGUFReader, which raises
    when the header, or a tensor's data, runs past the end of the file)."""
    from gguf import GGUFReader  # slow on a large vocabulary (it parses every token): imported when needed

    r = GGUFReader(path)
    return max((int(t.data_offset) + int(t.n_bytes) for t in r.tensors), default=int(r.data_offset))


def needed_bytes(path: Path) -> int | None:
    """For the message about a file the reader refused: the bytes its tensor infos require, read without the
    tensors' data (which the reader fails to shape when the file ends first); None when the header itself is
    cut or damaged. Reads gguf-py's tensor-info fields (name, n_dims, dims, type, offset), a layout of the
    format, through the reader's internal step that builds the tensors."""
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader

    class TensorInfos(GGUFReader):
        def _build_tensors(self, start_offs: int, fields: list) -> None:
            self.data_end = start_offs
            for f in fields:
                dims, raw_type, offset = f.parts[3], f.parts[4], f.parts[5]
                block, size = GGML_QUANT_SIZES[GGMLQuantizationType(int(raw_type[0]))]
                end = start_offs + int(offset[0]) + int(np.prod(dims.astype(np.int64))) * size // block
                self.data_end = max(self.data_end, end)
            self.tensors = []

    try:
        return TensorInfos(path).data_end
    except Exception:  # any failure here only means the message says less
        return None


def model_file(path: str) -> Path:
    """The GGUF file, checked before any work: a missing, non-GGUF or truncated file fails here with its name.

    ``check_gguf`` reads only the first four bytes, so a file cut short (an interrupted download or copy) passes
    it and fails later inside llama.cpp: in ``bench``, as a traceback from the profiling process. So the file's
    size is held against what its header and tensor infos require."""
    p = check_gguf(Path(path))
    size = p.stat().st_size
    try:
        end = tensor_data_end(p)
    except (ValueError, IndexError, KeyError, OverflowError, TypeError):
        end = needed_bytes(p)
        if end is None or end <= size:
            raise ModelFileError(f"{p}: truncated or corrupt GGUF file ({size} bytes): its header cannot be read")
    if size < end:
        raise ModelFileError(f"{p}: truncated GGUF file: {size} bytes, its tensor data needs {end}")
    return p


# --------------------------------------------------------------------------- numeric options
def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
    return value


def positive_int(text: str) -> int:
    """argparse type of a count (threads, items, tokens, repetitions): a 0 or a negative value fails at the
    command line, argparse naming the option and the value, not later as range()'s or llama.cpp's error."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type of a count where 0 means none (layers offloaded to a GPU)."""
    return _int_at_least(text, 0)


def positive_int_list(text: str) -> list[int]:
    """argparse type of comma-separated counts (``-t 1,2,4``, as llama-bench takes them)."""
    parts = text.split(",")
    if not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated integers expected")
    return [_int_at_least(p, 1) for p in parts]


def port_number(text: str) -> int:
    """argparse type of a TCP port."""
    value = _int_at_least(text, 1)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} must be at most 65535")
    return value


# --------------------------------------------------------------------------- files written
def new_file(path: str, overwrite: bool, option: str) -> Path:
    """A file the command will write: its folder must exist (a typo must not create a tree of folders), and an
    existing file is kept unless ``--overwrite`` (a second run must not silently replace the first one's)."""
    p = Path(path)
    if not p.parent.is_dir():
        raise FileNotFoundError(f"{option} {path}: folder {p.parent} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"{option} {path}: is a folder; give a file name")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{option} {path}: exists; give --overwrite to replace it")
    return p
