"""Typed stage records: the JSON files under ``results/`` that later stages, the report and the fleet read.

Each class names every field a consumer reads and keeps the rest (``extra="allow"``),
so that ``Record.load(path).dump()`` gives back exactly the dict that was read and a
stage can write through the same class (``write_json`` sorts the keys). A missing
record raises :class:`RecordMissing`, naming the file and the stage that writes it.

======================  ===============================  ==============
class                   file                             written by
======================  ===============================  ==============
:class:`BaseModelRecord`        ``results/models/<base>.json``   ``models``
:class:`BlockKLRecord`          ``results/block_kl/<base>.json`` ``block_kl``
:class:`CompressedModelRecord`  ``results/models/<ckpt>.json``   ``compress``
:class:`GgufRecord`             ``results/gguf/<v>.json``        ``quantize``
:class:`EvalRecord`             ``results/eval/<v>.json``        ``evaluate``
:class:`ProfileRecord`          ``results/profile/<v>.json``     ``profile``
:class:`BundleRecord`           ``results/bundles/<v>.json``     ``bundle``
:class:`FleetSummary`           ``results/fleet.json``           ``fleet``
======================  ===============================  ==============
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .io import read_json, write_json

#: a JSON number: an int stays an int, a float a float (so that dump() gives back the same text)
Num = int | float


class RecordMissing(FileNotFoundError):
    """A stage record is missing; the message names the file and the stage to run."""


class Part(BaseModel):
    """A nested part of a record: named fields, everything else kept as it was."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Record(Part):
    """A stage record: one JSON file written by one stage."""

    #: what the record is (for messages) and the dvc stage that writes it
    what: ClassVar[str] = "stage"
    stage: ClassVar[str] = ""

    @classmethod
    def load(cls, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise RecordMissing(f"{path}: {cls.what} record missing; run its stage "
                                f"(dvc repro {cls.stage or ''})".replace(" )", ")"))
        return cls.model_validate(read_json(path))

    def dump(self) -> dict:
        """The record's JSON content, exactly as it was read (fields not given stay absent)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def write(self, path: str | Path) -> None:
        write_json(path, self.dump())


# --------------------------------------------------------------------------- models
class FileEntry(Part):
    bytes: int
    sha256: str


class BaseModelRecord(Record):
    """A base model as the ``models`` stage fetched it: where it came from and its files."""

    what: ClassVar[str] = "model"
    stage: ClassVar[str] = "models"
    n_params: int
    source: str | None = None
    dequantized_from_gguf: bool = False
    package: str | None = None
    wheel: str | None = None
    wheel_sha256: str | None = None
    files: dict[str, FileEntry] = {}

    @property
    def checkpoint_file(self) -> FileEntry | None:
        return self.files.get("model.safetensors")



def base_files(path: str | Path) -> dict:
    """The files (name -> size and sha256) of the base model whose record is ``path``: what a computation on its
    weights names to show which weights it ran on."""
    return BaseModelRecord.load(path).dump().get("files", {})

class ParamCount(Part):
    params: int
    nonzero_params: int


class DistillRun(Part):
    seconds: Num
    steps_done: int


class DistillSpec(Part):
    batch_size: int
    seq_len: int
    tokens: int
    text: str


class RecipeSpec(Part):
    distill: DistillSpec | None = None
    prune: dict[str, Any] | None = None


class BlockKLRecord(Record):
    """``block_kl`` stage: per block of a base model, the mean per-token KL divergence from the model that
    dropping the block alone causes on the calibration rows (depth pruning by ``kl`` drops the lowest)."""

    what: ClassVar[str] = "block KL"
    stage: ClassVar[str] = "block_kl"
    model: str
    scores: list[Num]
    calibration: dict[str, Any]   # compress.calibration the rows came from
    base_files: dict[str, FileEntry]   # the base checkpoint's files the scores were computed on
    seconds: Num
    versions: dict[str, str | None] = {}


class CompressedModelRecord(BaseModelRecord):
    """A compressed checkpoint (``compress`` stage): pruning, distillation and their effect."""

    what: ClassVar[str] = "compression"
    stage: ClassVar[str] = "compress"
    base: str
    recipe: str
    params: ParamCount
    param_reduction: Num
    recipe_spec: RecipeSpec
    prune: dict[str, Any] | None = None
    distill: DistillRun | None = None
    heldout_kl: Num | None = None
    history: list[dict[str, Any]] = []

    @property
    def nonzero_share(self) -> float:
        return self.params.nonzero_params / self.params.params

    @property
    def distill_tokens(self) -> int | None:
        """Tokens the distillation really trained on (steps done x batch x sequence length)."""
        if self.distill is None or self.recipe_spec.distill is None:
            return None
        spec = self.recipe_spec.distill
        return self.distill.steps_done * spec.batch_size * spec.seq_len

    @property
    def distill_seconds(self) -> float | None:
        return self.distill.seconds if self.distill else None


def load_model_record(path: str | Path) -> BaseModelRecord | CompressedModelRecord:
    """A ``results/models/*.json`` record of either kind (compressed ones say ``source: compress``)."""
    path = Path(path)
    if not path.is_file():
        raise RecordMissing(f"{path}: model record missing; run its stage (dvc repro models / compress)")
    data = read_json(path)
    cls = CompressedModelRecord if data.get("source") == "compress" else BaseModelRecord
    return cls.model_validate(data)


# --------------------------------------------------------------------------- gguf
class TensorTypeShare(Part):
    bytes: int
    params: int
    tensors: int


class GgufRecord(Record):
    what: ClassVar[str] = "conversion"
    stage: ClassVar[str] = "quantize"
    variant: str
    type: str
    file_bytes: int
    bpw: Num
    n_params: int
    kquant_eligible_share: Num
    tensor_types: dict[str, TensorTypeShare]
    tensors: list[dict[str, Any]]

    @property
    def file_mb(self) -> float:
        return self.file_bytes / 1e6

    def type_mix(self) -> str:
        """'Q5_0 61% / Q4_K 22% / ...' by share of parameters: what the file really holds."""
        parts = [(k, v.params / self.n_params) for k, v in self.tensor_types.items()]
        return " / ".join(f"{k} {100 * s:.0f}%" for k, s in parts if s >= 0.005)


# --------------------------------------------------------------------------- eval
class KlStats(Part):
    kld_mean: Num | None = None
    kld_stderr: Num | None = None
    same_top_p: Num | None = None
    # the KL reference checked on its sample rows: mean KL from float32 rows and from the stored form
    kld_check_rows: int | None = None
    kld_check_full: Num | None = None
    kld_check_stored: Num | None = None
    kld_check_rel_gap: Num | None = None
    same_top_check_equal: bool | None = None


class Perplexity(Part):
    ppl: Num
    ppl_stderr: Num | None = None  # NaN (written as null) when the log-likelihoods have no variance
    n_tokens: int
    kl: KlStats | None = None


class TaskScore(Part):
    """One task's scores; generative tasks have no ``acc`` (the judge stage scores them)."""

    n: int
    acc: Num | None = None
    acc_stderr: Num | None = None
    acc_norm: Num | None = None
    acc_norm_stderr: Num | None = None
    #: the items' mean accuracy under uniform guessing (0 for a loglikelihood task)
    chance: Num | None = None
    #: a loglikelihood task's exp(-mean log-likelihood) of the continuation (lm-eval's perplexity)
    perplexity: Num | None = None

    @property
    def scored(self) -> bool:
        return self.acc is not None


class EvalRecord(Record):
    what: ClassVar[str] = "evaluation"
    stage: ClassVar[str] = "evaluate"
    variant: str
    perplexity: Perplexity
    tasks: dict[str, TaskScore]


# --------------------------------------------------------------------------- profile
class BenchResult(Part):
    """One llama-bench test (``pp<n_prompt>`` or ``tg<n_gen>``) at one thread count."""

    avg_ts: Num
    stddev_ts: Num
    n_tokens: int | None = None
    energy: dict[str, Any] | None = None


class Ttft(Part):
    mean_s: Num


class ThreadRun(Part):
    """The tests at one thread count; the JSON keys of the tests are ``pp<n>`` and ``tg<n>``."""

    threads: int
    ttft: Ttft

    @property
    def tests(self) -> dict[str, BenchResult]:
        """Every test of the run by its llama-bench name (``pp512``, ``tg128``), in the record's order."""
        return {k: BenchResult.model_validate(v) for k, v in (self.model_extra or {}).items()
                if k.startswith(("pp", "tg"))}

    def _one(self, prefix: str) -> tuple[str, BenchResult]:
        found = [(k, v) for k, v in self.tests.items() if k.startswith(prefix)]
        if len(found) != 1:
            raise ValueError(f"a profile run holds {len(found)} {prefix} tests, not one: {[k for k, _ in found]}")
        return found[0]

    @property
    def pp_name(self) -> str:
        return self._one("pp")[0]

    @property
    def pp(self) -> BenchResult:
        """Prompt processing."""
        return self._one("pp")[1]

    @property
    def tg_name(self) -> str:
        return self._one("tg")[0]

    @property
    def tg(self) -> BenchResult:
        """Token generation."""
        return self._one("tg")[1]


class ProfileDevice(Part):
    name: str


class ProfileRecord(Record):
    what: ClassVar[str] = "profile"
    stage: ClassVar[str] = "profile"
    variant: str
    device: ProfileDevice
    load_seconds: Num
    peak_rss_bytes: int
    peak_rss_model_bytes: int
    measured: bool = True
    runs: list[ThreadRun]

    @property
    def best(self) -> ThreadRun:
        """The run with the most threads."""
        return max(self.runs, key=lambda r: r.threads)

    def at_threads(self, threads: int) -> ThreadRun:
        """The run at ``threads``, else the last one."""
        return next((r for r in self.runs if r.threads == threads), self.runs[-1])


# --------------------------------------------------------------------------- bundles
class BundleFile(Part):
    path: str
    role: str
    sha256: str
    bytes: int


class Bundle(Part):
    path: str
    isa: str
    build: str | None = None  # the llama.cpp build it ships: the host's, "aarch64" (Armv8.2-A), "aarch64-armv8a"
    files: list[BundleFile]

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


class EmulationCheck(Part):
    """llama-perplexity of an aarch64 build under qemu against the host build."""

    ok: bool
    build: str | None = None      # which aarch64 build ("aarch64": Armv8.2-A with dot product; "aarch64-armv8a")
    qemu_cpu: str | None = None   # the CPU model qemu emulated (None: qemu's default, which has every extension)
    chunks: int
    n_ctx: int
    options: list[str]
    ppl_host: Num | None = None
    ppl_aarch64: Num | None = None
    rel_diff: Num | None = None
    kld: Num | None = None
    same_top_pct: Num | None = None
    same_ppl: bool
    tolerance: Num | None = None
    kld_tolerance: Num | None = None
    control_f32: EmulationCheck | None = None


class BundleRecord(Record):
    what: ClassVar[str] = "bundle"
    stage: ClassVar[str] = "bundle"
    variant: str
    bundles: dict[str, Bundle]
    #: None: a frontier-tier variant (not bundled), or a compressed checkpoint whose type's kernels are checked on
    #: the base model's file (devices.emulation_check.compressed); ``skipped`` says which
    emulation_check: EmulationCheck | None = None
    #: the plain Armv8-A build (Pi Zero 2 W) under qemu emulating a Cortex-A53; None where no fleet device needs it
    emulation_check_armv8a: EmulationCheck | None = None
    versions: dict[str, str | None] = {}

    @property
    def model_file(self) -> BundleFile:
        """The GGUF file the bundles ship (the same in every bundle)."""
        return next(f for b in self.bundles.values() for f in b.files if f.role == "model")


# --------------------------------------------------------------------------- fleet
class FleetSummary(Record):
    """``results/fleet.json``: the host as a device, the roofline calibration, and the fleet shares."""

    what: ClassVar[str] = "fleet"
    stage: ClassVar[str] = "fleet"
    host: dict[str, Any]
    calibration: dict[str, dict[str, Any]]
    fleet: list[str]
    memory_share: Num
    min_tg_ts: Num
    n_ctx: int
    fleet_share: dict[str, Num]
