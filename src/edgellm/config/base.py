"""What every part of the schema shares: the strict base model, names, shares, and the llama.cpp type lists."""

from __future__ import annotations

from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..paths import TASKS_FILE

QUANT_TYPES: frozenset[str] = frozenset(
    """F32 F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q5_K Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_K Q4_1 Q4_0
    Q3_K_L Q3_K_M Q3_K_S Q3_K Q2_K Q2_K_S IQ4_NL IQ4_XS IQ3_M IQ3_S IQ3_XS IQ3_XXS
    IQ2_M IQ2_S IQ2_XS IQ2_XXS IQ1_M IQ1_S TQ1_0 TQ2_0""".split()
)
#: Types that llama-quantize refuses to produce without an importance matrix.
NEEDS_IMATRIX: frozenset[str] = frozenset({"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M", "Q2_K_S"})

#: Tasks the evaluator knows: the names defined in ``edgellm/eval/tasks.yaml`` (read without importing
#: ``edgellm.eval.tasks``, which pulls in ``datasets``).
TASK_DEFS: dict = yaml.safe_load(TASKS_FILE.read_text())
TASK_NAMES: frozenset[str] = frozenset(TASK_DEFS)
GENERATIVE_TASKS: frozenset[str] = frozenset(n for n, d in TASK_DEFS.items() if d.get("metric") == "truthfulqa_gen")
class ParamsError(ValueError):
    """A bad ``params.yaml``: the message names the file, the key and the value."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


def base_type(qtype: str) -> str:
    """The llama-quantize type of a study type name (``Q2_K-imat`` -> ``Q2_K``)."""
    return qtype.removesuffix(IMATRIX_SUFFIX)


def uses_imatrix(qtype: str) -> bool:
    return qtype.endswith(IMATRIX_SUFFIX)


def check_types(types: list[str]) -> list[str]:
    """Known llama.cpp types, each at most once; a type that needs an importance matrix must say so."""
    unknown = [t for t in types if base_type(t) not in QUANT_TYPES]
    if unknown:
        raise ValueError(f"unknown quantization type(s) {unknown}; llama-quantize knows {sorted(QUANT_TYPES)} "
                         f"(append {IMATRIX_SUFFIX} to quantize with the importance matrix)")
    check_names(types, set(types), "", "quantization type(s)")
    need = [t for t in types if t in NEEDS_IMATRIX]
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
