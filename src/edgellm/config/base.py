"""What every part of the schema shares: the strict base model, names, shares, and the llama.cpp type lists."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import gguf
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..paths import TASKS_FILE

QUANT_TYPES: frozenset[str] = frozenset(
    """F32 F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q5_K Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_K Q4_1 Q4_0
    Q3_K_L Q3_K_M Q3_K_S Q3_K Q2_K Q2_K_S IQ4_NL IQ4_XS IQ3_M IQ3_S IQ3_XS IQ3_XXS
    IQ2_M IQ2_S IQ2_XS IQ2_XXS IQ1_M IQ1_S TQ1_0 TQ2_0""".split()
)
#: Tensor types (gguf's names): what ``--token-embedding-type`` accepts (``Q4_K``, not the file type ``Q4_K_M``).
TENSOR_TYPES: frozenset[str] = frozenset(n for n in gguf.GGMLQuantizationType.__members__ if n in QUANT_TYPES)
#: Types that llama-quantize refuses to produce without an importance matrix.
NEEDS_IMATRIX: frozenset[str] = frozenset({"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M", "Q2_K_S"})

#: Tasks the evaluator knows: the names defined in ``edgellm/eval/tasks.yaml`` (read without importing
#: ``edgellm.eval.tasks``, which pulls in ``datasets``).
TASK_DEFS: dict = yaml.safe_load(TASKS_FILE.read_text())
TASK_NAMES: frozenset[str] = frozenset(TASK_DEFS)
GENERATIVE_TASKS: frozenset[str] = frozenset(n for n, d in TASK_DEFS.items() if d.get("metric") == "truthfulqa_gen")
class ParamsError(ValueError):
    """A bad ``params.yaml``: the message names the file, the key and the value."""


#: where the parameters a stage reads are recorded, one dotted key a line (set by the notebook runner)
READS_ENV = "EDGELLM_PARAMS_READS"
#: the keys read so far, while recording (a process-wide set: a notebook's cells run in several asyncio contexts)
_READS: list[set[str] | None] = [None]


class Strict(BaseModel):
    """Every schema of the project (parameters, device profiles, published measurements): unknown keys are
    errors, values are frozen.

    A model that is part of a loaded ``params.yaml`` knows its dotted key (:func:`mark_paths`), and while
    :func:`recording_reads` is active every field a stage reads is recorded under that key: how the pipeline
    checks that each stage's params deps in ``dvc.yaml`` are exactly the keys it reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _key: str | None = PrivateAttr(default=None)

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name.startswith("_") or _READS[0] is None:
            return value
        key = _key_of(self)
        if key is None or name not in type(self).model_fields:
            return value
        return _recorded(f"{key}.{name}" if key else name, value)

    def model_dump(self, *args, **kwargs) -> dict[str, Any]:
        key = _key_of(self)
        if key:
            _record(key)
        return super().model_dump(*args, **kwargs)


class ReadDict(dict):
    """A dict field of the parameters while reads are recorded: a key looked up is recorded as ``<dict>.<key>``,
    any walk over the whole dict as the dict's own key."""

    def __init__(self, data: dict, key: str):
        super().__init__(data)
        self._key = key

    def __getitem__(self, k):
        return _recorded(f"{self._key}.{k}", super().__getitem__(k))

    def get(self, k, default=None):
        return self[k] if dict.__contains__(self, k) else (_record(f"{self._key}.{k}") or default)

    def __contains__(self, k) -> bool:
        _record(f"{self._key}.{k}")
        return super().__contains__(k)

    def _whole(self):
        _record(self._key)
        return self

    def __iter__(self):
        return super(ReadDict, self._whole()).__iter__()

    def __len__(self) -> int:
        return super(ReadDict, self._whole()).__len__()

    def items(self):
        return [(k, _recorded(f"{self._key}.{k}", v)) for k, v in super(ReadDict, self._whole()).items()]

    def values(self):
        return [v for _, v in self.items()]

    def keys(self):
        return super(ReadDict, self._whole()).keys()


def _key_of(model: Strict) -> str | None:
    """A model's dotted key in the loaded parameters (None: not part of them), read without recording."""
    private = object.__getattribute__(model, "__pydantic_private__")
    return private.get("_key") if private else None


def _record(key: str) -> None:
    reads = _READS[0]
    if reads is not None and key not in reads:
        reads.add(key)
        path = os.environ.get(READS_ENV)
        if path:
            with open(path, "a") as f:
                f.write(key + "\n")


def _recorded(key: str, value: Any) -> Any:
    """``value`` as a stage sees it: a model of the tree (its own reads are recorded), a dict that records its
    lookups, or a leaf, recorded as read."""
    if isinstance(value, Strict) and _key_of(value) is not None:
        return value
    if isinstance(value, dict):
        return ReadDict(value, key)
    _record(key)
    return value


def mark_paths(model: Strict, key: str = "") -> None:
    """Give every model of a loaded parameter tree its dotted key (the root's is "")."""
    model._key = key
    for name in type(model).model_fields:
        value = BaseModel.__getattribute__(model, name)
        sub = f"{key}.{name}" if key else name
        if isinstance(value, Strict):
            mark_paths(value, sub)
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, Strict):
                    mark_paths(v, f"{sub}.{k}")


@contextmanager
def recording_reads(path: str | Path | None = None) -> Iterator[set[str]]:
    """Record the parameter keys read inside the block (and append each new one to ``path``)."""
    reads: set[str] = set()
    outer, _READS[0] = _READS[0], reads
    old = os.environ.get(READS_ENV)
    if path is not None:
        os.environ[READS_ENV] = str(path)
    try:
        yield reads
    finally:
        _READS[0] = outer
        if path is not None:
            if old is None:
                os.environ.pop(READS_ENV, None)
            else:
                os.environ[READS_ENV] = old


def start_recording_from_env() -> None:
    """In a stage's process: record every read for the rest of it when the runner asked for it (``READS_ENV``)."""
    if os.environ.get(READS_ENV) and _READS[0] is None:
        _READS[0] = set()


Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._]*(-[A-Za-z0-9._]+)*$", max_length=64)]
def check_names(names: list[str], known, unknown_msg: str, what: str) -> list[str]:
    """Every name known (``unknown_msg`` is formatted with the unknown ones and the known), none twice."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(unknown_msg.format(unknown=unknown, known=sorted(known)))
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate {what} {dupes}")
    return names


#: A type name ending in this is the same llama.cpp type quantized with the importance matrix (``Q2_K-imat``).
IMATRIX_SUFFIX = "-imat"
#: ``<type>-emb<TYPE>``: the token embedding and output tensors quantized apart from the rest, at ``<TYPE>``
#: (``llama-quantize --token-embedding-type/--output-tensor-type``); ``Q4_K_M-embQ4_0-imat`` with the matrix.
EMBEDDING_MARK = "-emb"


def _parts(qtype: str) -> tuple[str, str | None, bool]:
    """(llama-quantize type, embedding/output type or None, importance matrix) of a study type name."""
    imat = qtype.endswith(IMATRIX_SUFFIX)
    core = qtype.removesuffix(IMATRIX_SUFFIX)
    body, _, emb = core.partition(EMBEDDING_MARK)
    return body, emb or None, imat


def base_type(qtype: str) -> str:
    """The llama-quantize type of a study type name (``Q2_K-imat`` -> ``Q2_K``, ``Q4_K_M-embQ4_0`` -> ``Q4_K_M``)."""
    return _parts(qtype)[0]


def embedding_type(qtype: str) -> str | None:
    """The type of the token embedding and output tensors when the name sets it apart (``Q4_K_M-embQ4_0``)."""
    return _parts(qtype)[1]


def uses_imatrix(qtype: str) -> bool:
    return _parts(qtype)[2]


def check_types(types: list[str]) -> list[str]:
    """Known llama.cpp types, each at most once; a type that needs an importance matrix must say so."""
    unknown = [t for t in types if base_type(t) not in QUANT_TYPES
               or (embedding_type(t) is not None and embedding_type(t) not in TENSOR_TYPES)]
    if unknown:
        raise ValueError(f"unknown quantization type(s) {unknown}; llama-quantize knows {sorted(QUANT_TYPES)} "
                         f"(append {IMATRIX_SUFFIX} to quantize with the importance matrix, insert "
                         f"{EMBEDDING_MARK}<TYPE> before it to give the embedding and output tensors a tensor type "
                         f"apart, one of {sorted(TENSOR_TYPES)})")
    check_names(types, set(types), "", "quantization type(s)")
    need = [t for t in types if not uses_imatrix(t) and (base_type(t) in NEEDS_IMATRIX or embedding_type(t) in NEEDS_IMATRIX)]
    if need:
        raise ValueError(f"type(s) {need} need an importance matrix: write them as "
                         f"{[t + IMATRIX_SUFFIX for t in need]}")
    floats = [t for t in types if uses_imatrix(t) and base_type(t) in ("F32", "F16", "BF16")]
    if floats:
        raise ValueError(f"type(s) {floats}: an importance matrix means nothing to a float type")
    return types


Share = Annotated[float, Field(gt=0, lt=1)]
#: How much of the evaluation a variant gets: ``main`` everything (accuracy, TruthfulQA, generation, speed,
#: devices, bundles), ``frontier`` what traces the trade-off curve cheaply (perplexity and KL on the same
#: tokens, the pooled generalization items, speed). The reference (``evaluate.kl_base``) also runs the screen.
Tier = Literal["main", "frontier"]
