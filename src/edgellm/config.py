"""The study's parameters: ``params.yaml`` parsed into a typed, validated schema.

``params.yaml`` is the single source of truth for the study; DVC reads the same
file to decide which stages are stale. Every value is checked here once, so a
typo fails at the first stage with a message naming the file, key and value,
instead of surfacing as a confusing error deep inside llama.cpp.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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

#: Tasks the evaluator knows: the names defined in ``edgellm/tasks.yaml`` (read without importing
#: ``edgellm.tasks``, which pulls in ``datasets``).
_TASK_DEFS: dict = yaml.safe_load((Path(__file__).with_name("tasks.yaml")).read_text())
TASK_NAMES: frozenset[str] = frozenset(_TASK_DEFS)
GENERATIVE_TASKS: frozenset[str] = frozenset(n for n, d in _TASK_DEFS.items() if d.get("metric") == "truthfulqa_gen")

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


def _check_names(names: list[str], known, unknown_msg: str, what: str) -> list[str]:
    """Every name known (``unknown_msg`` is formatted with the unknown ones and the known), none twice."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(unknown_msg.format(unknown=unknown, known=sorted(known)))
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate {what} {dupes}")
    return names


def _check_types(types: list[str]) -> list[str]:
    return _check_names(types, QUANT_TYPES, "unknown quantization type(s) {unknown}; llama-quantize knows {known}",
                        "quantization type(s)")


class Quantization(_Strict):
    types: Annotated[list[str], Field(min_length=1)]
    imatrix: Imatrix = Imatrix()

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        return _check_types(types)

    @model_validator(mode="after")
    def _imatrix_when_needed(self) -> Quantization:
        need = [t for t in self.types if t in NEEDS_IMATRIX]
        if need and not self.imatrix.enabled:
            raise ValueError(f"type(s) {need} need an importance matrix: set quantization.imatrix.enabled: true")
        return self


Share = Annotated[float, Field(gt=0, lt=1)]


class UnstructuredPrune(_Strict):
    """Zero weights (shapes unchanged): ``sparsity`` (unstructured) or ``pattern`` (N:M)."""

    method: Literal["magnitude", "wanda"]
    sparsity: Share | None = None
    pattern: Literal["2:4", "4:8"] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> UnstructuredPrune:
        if (self.sparsity is None) == (self.pattern is None):
            raise ValueError(f"{self.method} pruning needs exactly one of sparsity (e.g. 0.5) or pattern (e.g. '2:4')")
        return self


class DepthPrune(_Strict):
    """Drop whole decoder blocks, the least important on calibration text."""

    method: Literal["depth"]
    layers: Annotated[int, Field(ge=1)]
    importance: Literal["block_influence", "angular"] = "block_influence"


Dim = Annotated[int, Field(ge=1)] | Share


class WidthPrune(_Strict):
    """Remove hidden channels, MLP neurons and attention heads by activation importance.

    Each target is a size (int) or a share of the original (0 < float < 1);
    ``align`` rounds hidden and MLP sizes down to a multiple (256 lets
    llama.cpp's K-quants apply to those rows instead of falling back).
    """

    method: Literal["width"]
    hidden_size: Dim | None = None
    intermediate_size: Dim | None = None
    num_heads: Annotated[int, Field(ge=1)] | None = None
    num_kv_heads: Annotated[int, Field(ge=1)] | None = None
    align: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _something(self) -> WidthPrune:
        if all(v is None for v in (self.hidden_size, self.intermediate_size, self.num_heads, self.num_kv_heads)):
            raise ValueError("width pruning needs at least one of hidden_size, intermediate_size, num_heads, num_kv_heads")
        return self


PruneSpec = Annotated[UnstructuredPrune | DepthPrune | WidthPrune, Field(discriminator="method")]


class DistillSpec(_Strict):
    """Knowledge distillation from the base model (the teacher) into the pruned student."""

    text: Literal["lambada", "teacher"] = "lambada"   # calibration text, or text the teacher generates
    tokens: Annotated[int, Field(ge=1)] = 8192          # training budget
    seq_len: Annotated[int, Field(ge=8)] = 128
    batch_size: Annotated[int, Field(ge=1)] = 4
    lr: Annotated[float, Field(gt=0)] = 5e-4
    warmup: Annotated[float, Field(ge=0, lt=1)] = 0.05
    temperature: Annotated[float, Field(gt=0)] = 1.0
    ce_weight: Annotated[float, Field(ge=0, le=1)] = 0.0
    train_embeddings: bool = False
    checkpoint_every: Annotated[int, Field(ge=1)] = 8
    eval_every: Annotated[int, Field(ge=1)] = 1000000
    heldout_rows: Annotated[int, Field(ge=1)] = 8


class Recipe(_Strict):
    """Pruning, then distillation; at least one of them."""

    prune: PruneSpec | None = None
    distill: DistillSpec | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Recipe:
        if self.prune is None and self.distill is None:
            raise ValueError("a recipe needs prune, distill or both")
        return self


class Calibration(_Strict):
    """Text for activation statistics (LAMBADA development: no test set)."""

    tokens: Annotated[int, Field(ge=16)] = 4096
    seq_len: Annotated[int, Field(ge=8)] = 256


class Compress(_Strict):
    #: GGUF types every compressed checkpoint is quantized to
    types: Annotated[list[str], Field(min_length=1)] = ["Q4_K_M"]
    calibration: Calibration = Calibration()
    #: recipe name -> recipe; every recipe is applied to every base model
    recipes: dict[Name, Recipe] = {}

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        return _check_types(types)


class Perplexity(_Strict):
    n_ctx: Annotated[int, Field(ge=16, le=32768)] = 512
    max_chunks: Annotated[int | None, Field(ge=1)] = None
    n_batch: Annotated[int, Field(ge=16)] = 2048


class Generation(_Strict):
    #: Answer length cap for generative tasks (lm-eval's default max_gen_toks is 256; answers
    #: normally stop at "\n\n" long before; the number cut short is recorded per variant).
    max_new_tokens: Annotated[int, Field(ge=1, le=2048)] = 64


class Evaluate(_Strict):
    kl_base: str = "F16"
    perplexity: Perplexity = Perplexity()
    generation: Generation = Generation()
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
    generalization: list[str] = ["arc_easy", "arc_challenge", "hellaswag", "piqa", "boolq", "mmlu"]
    #: Bootstrap resamples for confidence intervals (percentile method, seeded by ``seed``).
    bootstrap: Annotated[int, Field(ge=100, le=1_000_000)] = 2000
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    #: Significance level of the paired tests (McNemar, paired bootstrap) against the reference variant.
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05


class HostPower(_Strict):
    """Whole-machine power of this host when it cannot be read (a VM has no RAPL): an assumption, labelled."""

    idle: Annotated[float, Field(gt=0)] = 2.0
    load: Annotated[float, Field(gt=0)] = 10.0
    peak: Annotated[float, Field(gt=0)] = 15.0


class EmulationCheck(_Strict):
    """The aarch64 build under qemu vs the host build: llama-perplexity on a short text."""

    n_ctx: Annotated[int, Field(ge=16)] = 64
    chunks: Annotated[int, Field(ge=1)] = 2
    #: context of the control run (the same weights dequantized to F32; float arithmetic is slow under qemu)
    control_n_ctx: Annotated[int, Field(ge=16)] = 32
    #: relative perplexity difference accepted as "the same"; the F32 control must meet it or the stage fails
    tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.001
    #: mean KL divergence (nats) from the host build's predictions accepted as "the same predictions": the
    #: deployed file must give the same perplexity or the same predictions, or the stage fails (quantized
    #: activations make the perplexity of two correct builds differ by percents on a short text; see bundle.verdict)
    kld_tolerance: Annotated[float, Field(gt=0, lt=10)] = 0.05
    #: llama-perplexity options for both builds (the same numerics on both ISAs as far as llama.cpp allows)
    options: list[str] = ["-nr", "-fa", "off", "-ctk", "f32", "-ctv", "f32"]


class Devices(_Strict):
    #: device profiles (src/edgellm/profiles/<name>.yaml) the variants are projected onto
    fleet: Annotated[list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]], Field(min_length=1)] = [
        "raspberry-pi-5", "jetson-orin-nano", "pixel-8", "iphone-15-pro", "raspberry-pi-zero-2w"]
    #: share of a device's RAM the model may take (the OS and other apps keep the rest)
    memory_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    #: usable generation speed (tokens/s)
    min_tg_ts: Annotated[float, Field(gt=0)] = 10.0
    #: context the memory budget must hold (KV cache)
    n_ctx: Annotated[int, Field(ge=16)] = 2048
    #: llama-bench repetitions in a bundle's run.sh
    repetitions: Annotated[int, Field(ge=1)] = 5
    host_power_w: HostPower = HostPower()
    emulation_check: EmulationCheck = EmulationCheck()

    @field_validator("fleet")
    @classmethod
    def _profiles_exist(cls, fleet: list[str]) -> list[str]:
        known = {p.stem for p in (Path(__file__).with_name("profiles")).glob("*.yaml")}
        return _check_names(fleet, known, "no device profile for {unknown}; known: {known} (src/edgellm/profiles/)",
                            "device(s)")


class Data(_Strict):
    #: Local mirror of the hub datasets (relative to the project root); null = the hub.
    local_dir: str | None = "../shared/data"


class Params(_Strict):
    seed: int = 0
    threads: Annotated[int, Field(ge=1)] = 2
    data: Data = Data()
    models: Annotated[dict[Name, ModelSpec], Field(min_length=1)]
    quantization: Quantization
    compress: Compress = Compress()
    evaluate: Evaluate
    profile: Profile = Profile()
    report: Report = Report()
    devices: Devices = Devices()

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        if self.evaluate.kl_base not in self.quantization.types:
            raise ValueError(
                f"evaluate.kl_base {self.evaluate.kl_base!r} must be one of quantization.types {self.quantization.types}"
            )
        missing = [t for t in self.report.generalization if t not in self.evaluate.tasks]
        if missing:
            raise ValueError(f"report.generalization names task(s) {missing} that evaluate.tasks does not run")
        generative = sorted(set(self.report.generalization) & GENERATIVE_TASKS)
        if generative:
            raise ValueError(f"report.generalization names generative task(s) {generative}: it averages accuracies")
        need = [t for t in self.compress.types if t in NEEDS_IMATRIX]
        if need and not self.quantization.imatrix.enabled:
            raise ValueError(f"compress.types {need} need an importance matrix: set quantization.imatrix.enabled: true")
        names = [v.name for v in self.all_variants()] + list(self.checkpoints())
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"names {dupes} are ambiguous: rename a model or a compress recipe")
        return self

    def checkpoints(self) -> dict[str, tuple[str, str | None]]:
        """Every checkpoint the study converts: name -> (base model, recipe or None)."""
        out: dict[str, tuple[str, str | None]] = {m: (m, None) for m in self.models}
        for m in self.models:
            for r in self.compress.recipes:
                out[checkpoint_name(m, r)] = (m, r)
        return out

    def all_variants(self) -> list[Variant]:
        out = [Variant(variant_name(m, t), m, m, None, t) for m in self.models for t in self.quantization.types]
        for m in self.models:
            for r in self.compress.recipes:
                ck = checkpoint_name(m, r)
                out += [Variant(variant_name(ck, t), ck, m, r, t) for t in self.compress.types]
        return out

    def variants(self) -> list[str]:
        """Every variant, named as the DVC matrices name their stages."""
        return [v.name for v in self.all_variants()]


@dataclass(frozen=True)
class Variant:
    """One GGUF file of the study: a checkpoint (a base model, or a recipe applied to one) at one type."""

    name: str
    checkpoint: str
    base: str
    recipe: str | None
    qtype: str


def variant_name(checkpoint: str, qtype: str) -> str:
    return f"{checkpoint}-{qtype}"


def checkpoint_name(model: str, recipe: str) -> str:
    return f"{model}-{recipe}"


def resolve_variant(variant: str, params: Params) -> Variant:
    """The variant named ``variant``, checked against the study."""
    for v in params.all_variants():
        if v.name == variant:
            return v
    raise ParamsError(f"variant {variant!r} is not in the study; known: {params.variants()}")


def split_variant(variant: str, params: Params) -> tuple[str, str]:
    """(checkpoint, type) of a variant."""
    v = resolve_variant(variant, params)
    return v.checkpoint, v.qtype


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
