"""Evaluation data from the Hugging Face hub or from a local mirror with the hub's schemas.

Both paths end in the same ``datasets.Dataset`` with the same columns, so every
consumer runs one code path whichever source the study points at.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import datasets


class DataError(FileNotFoundError):
    """A dataset that cannot be found or read; the message names the file."""


@dataclass(frozen=True)
class DatasetRef:
    """Where one split lives: its hub id/config and its file in the local mirror."""

    hub_id: str
    config: str | None
    split: str
    local: str  # path relative to the mirror root

    def describe(self) -> str:
        return f"{self.hub_id}" + (f" ({self.config})" if self.config else "") + f" [{self.split}]"


WIKITEXT2_TEST = DatasetRef("Salesforce/wikitext", "wikitext-2-raw-v1", "test", "wikitext/wikitext-2-raw-v1/test.jsonl")
LAMBADA_DEV = DatasetRef("cimec/lambada", None, "validation", "lambada/development.jsonl")

#: the suffix of the xz-compressed copies the repository carries (data/mirror)
COMPRESSED = ".xz"

datasets.disable_progress_bars()


def load(ref: DatasetRef, data_dir: Path | None) -> datasets.Dataset:
    """Load a split from the local mirror when ``data_dir`` is set, otherwise from the hub.

    The mirror's file may be stored xz-compressed (``<local>.xz``, as ``data/mirror`` carries it).

    ``data_dir`` may also be a directory laid out like a hub dataset repository
    (``<data_dir>/<hub_id>``), which is how the hub path is tested offline.
    """
    if data_dir is None:
        return datasets.load_dataset(ref.hub_id, ref.config, split=ref.split)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist (data.local_dir in params.yaml or EDGELLM_DATA_DIR)")
    path = data_dir / ref.local
    if not path.is_file() and path.with_name(path.name + COMPRESSED).is_file():
        path = path.with_name(path.name + COMPRESSED)  # the repository's copy (datasets decompresses it)
    if path.is_file():
        try:
            return datasets.load_dataset("json", data_files=str(path), split="train")
        except Exception as e:  # datasets wraps JSON errors in several types
            raise DataError(f"{path}: cannot be read as JSON lines ({type(e).__name__}: {e})") from None
    hub_copy = data_dir / ref.hub_id
    if hub_copy.is_dir():
        return datasets.load_dataset(str(hub_copy), ref.config, split=ref.split)
    raise DataError(f"{path}: dataset file for {ref.describe()} not found in the local mirror {data_dir}")


def wikitext_document(data_dir: Path | None) -> str:
    """WikiText-2 test as one document, joined as lm-eval joins it."""
    return "\n\n".join(load(WIKITEXT2_TEST, data_dir)["text"])


def calibration_text(data_dir: Path | None) -> str:
    """LAMBADA development passages: text kept apart from every test set."""
    return "\n\n".join(load(LAMBADA_DEV, data_dir)["text"])


def sample_indices(n: int, limit: int | None, seed: int) -> list[int]:
    """A seeded, sorted subset of ``range(n)``; identical for every variant of a study."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))
