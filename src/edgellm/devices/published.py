"""Published llama.cpp speeds measured on real devices, as validated data.

No physical device is attached to the study's machine, so every device number
is a projection. To know how wrong a projection is, it is held against speeds
that other people measured with llama.cpp on the real boards and phones
(``data/published/llamacpp_speeds.csv``): llama-bench's pp/tg, or a clearly
labelled equivalent (``metric``), each row with the address it was read from
and a verbatim quote of the number. The models those rows ran are described,
from their published configurations, in ``data/published/models.yaml``, so the
roofline can be applied to them with their own shape.

Bad rows fail with one message naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from ..config.base import Strict
from .fleet import invalid
from .roofline import Shape

BACKENDS = ("cpu", "cuda", "metal", "vulkan", "opencl")
Backend = Literal["cpu", "cuda", "metal", "vulkan", "opencl"]
#: How a source measured, closest to llama-bench first. ``llama-bench``: its pp/tg (or the same test in an app);
#: ``llama-cli``: llama.cpp's own per-run timings (prompt eval / eval time); ``llama-server``: a server's
#: per-request speeds under a load tool; ``ollama``: Ollama's eval rate (llama.cpp inside); ``app``: an app's
#: harness; ``other``: a number that is neither pp nor tg (e.g. prompt and generated tokens over one time),
#: shown beside its projection but left out of calibration and of the error summary.
MetricClass = Literal["llama-bench", "llama-cli", "llama-server", "ollama", "app", "other"]
COMPARABLE = ("llama-bench", "llama-cli", "llama-server", "ollama", "app")
Pos = Annotated[float, Field(gt=0)]
GIB = 2**30

#: average bits per weight of a whole file of each llama.cpp file type, as llama-quantize's table gives them for
#: 7B models (its mixtures: Q4_K_M keeps some tensors at Q6_K, so 4.89, not the 4.5 of a Q4_K block,
#: :func:`edgellm.llamacpp.gguf.block_bpw`); used only when a source gives no file size (``file_estimated``)
FILE_BPW_7B = {"F32": 32.0, "F16": 16.0, "BF16": 16.0, "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.69, "Q5_K_S": 5.54,
               "Q5_1": 6.0, "Q5_0": 5.5, "Q4_K_M": 4.89, "Q4_K_S": 4.58, "Q4_1": 5.0, "Q4_0": 4.5,
               "Q4_0_4_4": 4.5, "Q4_0_4_8": 4.5, "Q4_0_8_8": 4.5, "IQ4_NL": 4.5, "IQ4_XS": 4.25,
               "Q3_K_L": 4.27, "Q3_K_M": 3.91, "Q3_K_S": 3.5, "Q2_K": 3.0, "TQ2_0": 2.06, "TQ1_0": 1.69}


class PublishedError(ValueError):
    """A bad published-measurements file: the message names the file, line and column."""


class PublishedSpeed(Strict):
    """One published measurement: a model of one type on one device and backend."""

    device: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    backend: Backend
    threads: Annotated[int, Field(ge=1)] | None = None
    model: str
    params_b: Pos
    quant: Annotated[str, Field(pattern=r"^[A-Z0-9_]+$")]
    file_gib: Pos | None = None
    n_prompt: Annotated[int, Field(ge=1)] | None = None
    pp_ts: Pos | None = None
    n_gen: Annotated[int, Field(ge=1)] | None = None
    tg_ts: Pos | None = None
    build: str = ""
    metric_class: MetricClass
    #: how the source's number was taken, and how it differs from llama-bench's
    metric: Annotated[str, Field(min_length=3)]
    source_url: Annotated[str, Field(pattern=r"^(https?://|github:)\S+$")]
    #: the number as the source prints it, so a reader can find it there
    quote: Annotated[str, Field(min_length=3)]

    @model_validator(mode="after")
    def _a_speed(self) -> PublishedSpeed:
        if self.pp_ts is None and self.tg_ts is None:
            raise ValueError("a row needs pp_ts or tg_ts")
        return self

    @property
    def file_bytes(self) -> float:
        if self.file_gib is not None:
            return self.file_gib * GIB
        return self.params_b * 1e9 * FILE_BPW_7B[self.quant] / 8

    @property
    def file_estimated(self) -> bool:
        return self.file_gib is None


class ModelArch(Strict):
    """A published model's shape, from its configuration file (``source``)."""

    params_b: Pos
    n_layer: Annotated[int, Field(ge=1)]
    hidden: Annotated[int, Field(ge=1)]
    n_head: Annotated[int, Field(ge=1)]
    n_kv_head: Annotated[int, Field(ge=1)]
    head_dim: Annotated[int, Field(ge=1)] | None = None
    vocab: Annotated[int, Field(ge=1)]
    tied: bool
    #: sliding-window attention: the window, and one full-attention layer in ``global_every`` (the last of each
    #: group, as Gemma 3 lays them out); None: every layer attends to the whole context
    sliding_window: Annotated[int, Field(ge=1)] | None = None
    global_every: Annotated[int, Field(ge=1)] | None = None
    source: Annotated[str, Field(pattern=r"^https?://\S+$")]

    def layer_types(self) -> list[bool]:
        """Per layer, True where it attends through the sliding window."""
        if self.sliding_window is None:
            return [False] * self.n_layer
        every = self.global_every or 1
        return [(i + 1) % every != 0 for i in range(self.n_layer)]

    @property
    def q_dim(self) -> int:
        return self.n_head * (self.head_dim or self.hidden // self.n_head)

    @property
    def kv_dim(self) -> int:
        return self.n_kv_head * (self.head_dim or self.hidden // self.n_head)

    def shape(self, file_bytes: float, params_b: float | None = None) -> Shape:
        """The roofline's view of a file of this model: weights read and multiplied per token.

        The embedding table is looked up one row per token unless it doubles as the output head (``tied``);
        its share of the file is taken as its share of the parameters (types differ little at this scale).
        """
        params = (params_b or self.params_b) * 1e9
        embd = self.vocab * self.hidden
        # a GGUF file may store a tied model's output head as its own tensor: llama-bench then counts it twice
        tied = self.tied and params < self.params_b * 1e9 + embd / 2
        matmul = params if tied else params - embd
        per_token = file_bytes if tied else file_bytes * (params - embd) / params
        return Shape(weight_bytes=int(file_bytes), bytes_per_token=int(per_token), matmul_params=int(matmul),
                     n_layer=self.n_layer, kv_dim=self.kv_dim, q_dim=self.q_dim, head_params=embd)


class PublishedPower(Strict):
    """Power a device drew under llama.cpp (or Ollama) load, as a source measured it.

    ``scope`` is what the meter saw: ``wall`` (the whole device at its power input), ``pmic`` (the Raspberry Pi's
    power-management rails, which miss the 5 V/USB rails), ``rail`` (a Jetson module rail read by tegrastats),
    ``package`` (macOS powermetrics' CPU and GPU package power).
    """

    device: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    backend: Backend
    scope: Literal["wall", "pmic", "rail", "package"]
    watts_low: Pos
    watts_high: Pos
    model: str = ""
    condition: Annotated[str, Field(min_length=3)]
    source_url: Annotated[str, Field(pattern=r"^(https?://|github:)\S+$")]
    quote: Annotated[str, Field(min_length=3)]

    @model_validator(mode="after")
    def _ordered(self) -> PublishedPower:
        if self.watts_low > self.watts_high:
            raise ValueError(f"watts_low {self.watts_low} > watts_high {self.watts_high}")
        return self


def load_speeds(path: str | Path) -> list[PublishedSpeed]:
    """Every row of a published-speeds CSV, validated (empty cells are missing values)."""
    return _load_rows(path, PublishedSpeed)


def load_power(path: str | Path) -> list[PublishedPower]:
    return _load_rows(path, PublishedPower)


def _load_rows(path: str | Path, model: type[BaseModel]) -> list:
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise PublishedError(f"{path}: cannot read: {e}") from None
    out = []
    for i, raw in enumerate(rows, 2):   # line 1 is the header
        clean = {k: v.strip() for k, v in raw.items() if k is not None and v is not None and v.strip() != ""}
        if None in raw:
            raise PublishedError(f"{path}:{i}: more cells than columns")
        try:
            out.append(model.model_validate(clean))
        except ValidationError as e:
            raise PublishedError(invalid(f"{path}:{i}: invalid", e, "unknown column")) from None
    if not out:
        raise PublishedError(f"{path}: no rows")
    return out


def load_archs(path: str | Path) -> dict[str, ModelArch]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PublishedError(f"{path}: cannot read: {e}") from None
    if not isinstance(raw, dict):
        raise PublishedError(f"{path}: a mapping of model name -> shape")
    out = {}
    for name, spec in raw.items():
        try:
            out[str(name)] = ModelArch.model_validate(spec)
        except ValidationError as e:
            raise PublishedError(invalid(f"{path}: model {name!r}: invalid", e, "unknown column")) from None
    return out


def arch_for(row: PublishedSpeed, archs: dict[str, ModelArch], where: str = "") -> ModelArch:
    try:
        return archs[row.model]
    except KeyError:
        raise PublishedError(f"{where}model {row.model!r} has no shape in the models file; "
                             f"known: {sorted(archs)}") from None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


#: llama-bench's ``backends`` field -> the backend's name here
_BENCH_BACKENDS = {"cpu": "cpu", "cuda": "cuda", "metal": "metal", "vulkan": "vulkan", "opencl": "opencl",
                   "blas": "cpu"}


def from_measured(rec: dict) -> PublishedSpeed:
    """A measured record imported from a published llama-bench file (:func:`edgellm.devices.runners.import_llama_bench`)
    as a published point: the same numbers, labelled as llama-bench's own output."""
    backends = [b.strip().lower() for b in str(rec.get("backends") or "CPU").split(",")]
    accel = [_BENCH_BACKENDS.get(b, b) for b in backends if _BENCH_BACKENDS.get(b, b) != "cpu"]
    return PublishedSpeed(
        device=rec["device"], backend=accel[0] if accel else "cpu", threads=rec.get("threads"), model=rec["model"],
        params_b=rec["model_n_params"] / 1e9, quant=rec["quant"], file_gib=rec["model_size"] / GIB,
        n_prompt=rec["n_prompt"], pp_ts=rec["pp_ts"], n_gen=rec["n_gen"], tg_ts=rec["tg_ts"],
        build=str(rec.get("build_commit") or ""), metric_class="llama-bench", metric=f"llama-bench JSON ({rec.get('file', 'results/measured')})",
        source_url=rec["source_url"], quote=f"avg_ts {rec['pp_ts']:.2f} (pp{rec['n_prompt']}); "
                                            f"{rec['tg_ts']:.2f} (tg{rec['n_gen']})")
