"""The study's parameters: ``params.yaml`` parsed into a typed, validated schema.

``params.yaml`` is the single source of truth for the study; DVC reads the same
file to decide which stages are stale. Every value is checked here once, so a
typo fails at the first stage with a message naming the file, key and value,
instead of surfacing as a confusing error deep inside llama.cpp.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: Output types that llama.cpp's quantizer (``llama-quantize``) accepts.
QUANT_TYPES: frozenset[str] = frozenset(
    """F32 F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q5_K Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_K Q4_1 Q4_0
    Q3_K_L Q3_K_M Q3_K_S Q3_K Q2_K Q2_K_S IQ4_NL IQ4_XS IQ3_M IQ3_S IQ3_XS IQ3_XXS
    IQ2_M IQ2_S IQ2_XS IQ2_XXS IQ1_M IQ1_S TQ1_0 TQ2_0""".split()
)
#: Types that llama-quantize refuses to produce without an importance matrix.
NEEDS_IMATRIX: frozenset[str] = frozenset({"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M", "Q2_K_S"})

#: Multiple-choice tasks the evaluator knows (see ``edgellm.tasks``).
TASK_NAMES: frozenset[str] = frozenset(
    {"arc_easy", "arc_challenge", "hellaswag", "piqa", "truthfulqa_mc1", "truthfulqa_mc2"}
)

ROOT_ENV = "EDGELLM_ROOT"
DATA_ENV = "EDGELLM_DATA_DIR"


class ParamsError(ValueError):
    """A bad ``params.yaml``: the message names the file, the key and the value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._]*(-[A-Za-z0-9._]+)*$", max_length=64)]


class PypiGGUFModel(_Strict):
    """A GGUF file shipped inside a PyPI wheel (the offline default)."""

    source: Literal["pypi"]
    package: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+==[A-Za-z0-9._+-]+$")]
    file: Annotated[str, Field(pattern=r"\.gguf$")]
    license: str = "unknown"


class HubModel(_Strict):
    """A Hugging Face hub id such as ``HuggingFaceTB/SmolLM2-135M-Instruct``."""

    source: Literal["hub"]
    id: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+$")]
    revision: str = "main"
    license: str = "unknown"


class LocalModel(_Strict):
    """A Hugging Face checkpoint directory, or a directory holding a GGUF file."""

    source: Literal["local"]
    path: str
    gguf_file: str | None = None
    license: str = "unknown"


ModelSpec = Annotated[PypiGGUFModel | HubModel | LocalModel, Field(discriminator="source")]


class Imatrix(_Strict):
    enabled: bool = False
    text: Literal["lambada"] = "lambada"
    chunks: Annotated[int, Field(ge=1)] = 32
    n_ctx: Annotated[int, Field(ge=64)] = 512


class Quantization(_Strict):
    types: Annotated[list[str], Field(min_length=1)]
    imatrix: Imatrix = Imatrix()

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        unknown = [t for t in types if t not in QUANT_TYPES]
        if unknown:
            raise ValueError(
                f"unknown quantization type(s) {unknown}; llama-quantize knows {sorted(QUANT_TYPES)}"
            )
        dupes = sorted({t for t in types if types.count(t) > 1})
        if dupes:
            raise ValueError(f"duplicate quantization type(s) {dupes}")
        return types

    @model_validator(mode="after")
    def _imatrix_when_needed(self) -> Quantization:
        need = [t for t in self.types if t in NEEDS_IMATRIX]
        if need and not self.imatrix.enabled:
            raise ValueError(f"type(s) {need} need an importance matrix: set quantization.imatrix.enabled: true")
        return self


class Perplexity(_Strict):
    n_ctx: Annotated[int, Field(ge=16, le=32768)] = 512
    max_chunks: Annotated[int | None, Field(ge=1)] = None
    n_batch: Annotated[int, Field(ge=16)] = 2048


class Evaluate(_Strict):
    kl_base: str = "F16"
    perplexity: Perplexity = Perplexity()
    #: Items per task (a seeded subset, the same for every variant); null = all items.
    tasks: dict[str, Annotated[int, Field(ge=1)] | None]
    n_ctx: Annotated[int, Field(ge=256)] = 4096

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: dict[str, int | None]) -> dict[str, int | None]:
        unknown = sorted(set(tasks) - TASK_NAMES)
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known: {sorted(TASK_NAMES)}")
        return tasks


class Profile(_Strict):
    threads: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = [2]
    n_prompt: Annotated[int, Field(ge=1)] = 512
    n_gen: Annotated[int, Field(ge=1)] = 128
    repetitions: Annotated[int, Field(ge=1)] = 5
    ttft_prompt: Annotated[int, Field(ge=1)] = 128


class Report(_Strict):
    #: Tasks averaged into "generalization accuracy" (held-out, not TruthfulQA).
    generalization: list[str] = ["arc_easy", "arc_challenge", "hellaswag", "piqa"]


class Data(_Strict):
    #: Local mirror of the hub datasets (relative to the project root); null = the hub.
    local_dir: str | None = "../shared/data"


class Params(_Strict):
    seed: int = 0
    threads: Annotated[int, Field(ge=1)] = 2
    data: Data = Data()
    models: Annotated[dict[Name, ModelSpec], Field(min_length=1)]
    quantization: Quantization
    evaluate: Evaluate
    profile: Profile = Profile()
    report: Report = Report()

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        if self.evaluate.kl_base not in self.quantization.types:
            raise ValueError(
                f"evaluate.kl_base {self.evaluate.kl_base!r} must be one of quantization.types {self.quantization.types}"
            )
        missing = [t for t in self.report.generalization if t not in self.evaluate.tasks]
        if missing:
            raise ValueError(f"report.generalization names task(s) {missing} that evaluate.tasks does not run")
        return self

    def variants(self) -> list[str]:
        """Every (model, type) pair, named as the DVC matrix names its stages."""
        return [variant_name(m, t) for m in self.models for t in self.quantization.types]


def variant_name(model: str, qtype: str) -> str:
    return f"{model}-{qtype}"


def split_variant(variant: str, params: Params) -> tuple[str, str]:
    """Inverse of :func:`variant_name`, checked against the study."""
    for model in params.models:
        for qtype in params.quantization.types:
            if variant_name(model, qtype) == variant:
                return model, qtype
    raise ParamsError(f"variant {variant!r} is not in the study; known: {params.variants()}")


def project_root() -> Path:
    """The directory holding params.yaml (papermill runs notebooks from notebooks/)."""
    if ROOT_ENV in os.environ:
        return Path(os.environ[ROOT_ENV]).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "params.yaml").is_file() and (d / "dvc.yaml").is_file():
            return d
    raise ParamsError(f"no params.yaml with a dvc.yaml beside it in {here} or its parents; set {ROOT_ENV}")


def _format_error(path: Path, err: ValidationError, raw: dict) -> str:
    lines = [f"{path}: invalid parameters"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("function-after", "tagged-union")))
        if e["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{loc}' (value {e['input']!r}); check the spelling")
        elif e["type"] == "missing":
            lines.append(f"  missing key '{loc}'")
        else:
            value = e.get("input")
            shown = f" (got {value!r})" if not isinstance(value, dict) else ""
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"  '{loc}': {msg}{shown}" if loc else f"  {msg}")
    return "\n".join(lines)


def load_params(path: str | Path | None = None) -> Params:
    """Read and validate params.yaml; raise :class:`ParamsError` naming what is wrong."""
    path = Path(path) if path is not None else project_root() / "params.yaml"
    if not path.is_file():
        raise ParamsError(f"{path}: parameters file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(_format_error(path, e, raw)) from None


def data_dir(params: Params, root: Path | None = None) -> Path | None:
    """The local dataset mirror, or None to read from the hub. ``EDGELLM_DATA_DIR`` wins."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).resolve()
    if params.data.local_dir is None:
        return None
    root = root or project_root()
    return (root / params.data.local_dir).resolve()
