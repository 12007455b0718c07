"""Every path of the study, in one place: the project's files and the package's own data files.

Stages, the report, the device runners, the tests and the benchmarks all ask
:class:`Layout` where a file is, so that they, ``dvc.yaml`` and the README agree.
The package data (task definitions, device profiles, the bundle's ``run.sh``
template) is found through :data:`PACKAGE`, so a non-editable ``pip install``
finds it too.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the installed package's folder: its data files travel with it (``pyproject.toml`` package-data)
PACKAGE = Path(__file__).resolve().parent
#: lm-evaluation-harness task definitions (``edgellm/eval/tasks.yaml``)
TASKS_FILE = PACKAGE / "eval" / "tasks.yaml"
#: device profiles, one YAML file per device
PROFILES_DIR = PACKAGE / "devices" / "profiles"
#: the template of a bundle's ``run.sh``
RUN_SH_TEMPLATE = PACKAGE / "devices" / "run.sh.in"

ROOT_ENV = "EDGELLM_ROOT"
#: llama.cpp's source tree and host tools (``make tools`` links ``.llama.cpp``)
LLAMA_CPP_ENV = "EDGELLM_LLAMA_CPP"
#: the aarch64 cross build (``make cross`` links ``.llama.cpp-aarch64``)
CROSS_ENV = "EDGELLM_LLAMA_CPP_AARCH64"


class ProjectNotFound(FileNotFoundError):
    """No study folder (params.yaml with dvc.yaml beside it) around the working directory."""


def project_root() -> Path:
    """The directory holding params.yaml (papermill runs notebooks from notebooks/)."""
    if ROOT_ENV in os.environ:
        return Path(os.environ[ROOT_ENV]).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "params.yaml").is_file() and (d / "dvc.yaml").is_file():
            return d
    raise ProjectNotFound(f"no params.yaml with a dvc.yaml beside it in {here} or its parents; set {ROOT_ENV}")


def llama_cpp_dir(root: Path | None = None) -> Path:
    """Where llama.cpp's source (``src/``) and host tools (``bin/``) are expected."""
    if os.environ.get(LLAMA_CPP_ENV):
        return Path(os.environ[LLAMA_CPP_ENV])
    return (root or project_root()) / ".llama.cpp"


def generic_dir(root: Path | None = None) -> Path:
    """A second x86 build with ggml's generic C kernels (``make generic``): the cross-build noise floor."""
    return (root or project_root()) / ".llama.cpp-generic"


def cross_armv8a_dir(root: Path | None = None) -> Path:
    """The plain Armv8-A build (no dot product: the Cortex-A53 of a Pi Zero 2 W): ``bin/`` of ``make cross``."""
    return (root or project_root()) / ".llama.cpp-aarch64-armv8a"


def cross_dir(root: Path | None = None) -> Path:
    """Where the aarch64 build's binaries (``bin/``) are expected."""
    if os.environ.get(CROSS_ENV):
        return Path(os.environ[CROSS_ENV])
    return (root or project_root()) / ".llama.cpp-aarch64"


class Layout:
    """Where every stage reads and writes, relative to the project root."""

    def __init__(self, root: Path):
        self.root = Path(root)

    # ---- inputs
    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def wikitext(self) -> Path:
        return self.prepared / "wikitext-2-raw-v1-test.txt"

    @property
    def calibration(self) -> Path:
        return self.prepared / "calibration.txt"

    @property
    def prepared_info(self) -> Path:
        return self.prepared / "info.json"

    def task_items(self, task: str) -> Path:
        return self.prepared / "tasks" / f"{task}.jsonl"

    @property
    def params_check(self) -> Path:
        """The params stage's record: the validated parameters (every other stage runs after it)."""
        return self.root / "results" / "params.json"

    # ---- models
    def checkpoint(self, name: str) -> Path:
        """A Hugging Face checkpoint: a base model, or a compressed one."""
        return self.root / "models" / "hf" / name

    def work(self, name: str) -> Path:
        """Scratch space that is no stage's output (it survives an interruption; .gitignore'd)."""
        return self.root / "models" / "work" / name

    def compress_work(self, name: str) -> Path:
        """Resumable training state of a compress stage."""
        return self.work(name)

    def distill_curve(self, name: str) -> Path:
        return self.root / "plots" / "distill" / f"{name}.csv"

    def model_record(self, model: str) -> Path:
        return self.root / "results" / "models" / f"{model}.json"

    def block_kl(self, model: str) -> Path:
        """Per block of a base model, the KL divergence dropping it costs (the ``block_kl`` stage)."""
        return self.root / "results" / "block_kl" / f"{model}.json"

    def f32(self, model: str) -> Path:
        return self.root / "models" / "gguf" / model / "F32.gguf"

    def imatrix_dir(self, model: str) -> Path:
        return self.root / "models" / "imatrix" / model

    def imatrix(self, model: str) -> Path:
        return self.imatrix_dir(model) / "imatrix.gguf"

    def gguf(self, model: str, qtype: str) -> Path:
        return self.root / "models" / "gguf" / model / f"{qtype}.gguf"

    def kl_reference(self, model: str) -> Path:
        return self.root / "models" / "klref" / f"{model}.npz"

    # ---- per-variant records
    def gguf_record(self, variant: str) -> Path:
        return self.root / "results" / "gguf" / f"{variant}.json"

    def eval_record(self, variant: str) -> Path:
        return self.root / "results" / "eval" / f"{variant}.json"

    @property
    def items_dir(self) -> Path:
        return self.root / "results" / "items"

    def items(self, variant: str) -> Path:
        return self.items_dir / f"{variant}.json"

    @property
    def judged(self) -> Path:
        """Every variant's generated TruthfulQA answers with both judges' verdicts."""
        return self.root / "results" / "hallucination.json"

    def profile_record(self, variant: str) -> Path:
        return self.root / "results" / "profile" / f"{variant}.json"

    # ---- devices
    def bundles(self, variant: str) -> Path:
        """A variant's bundles, one directory per device."""
        return self.root / "bundles" / variant

    def bundle(self, variant: str, device: str) -> Path:
        """A deployment bundle: everything ``variant`` needs on ``device`` (hard links to the GGUF file)."""
        return self.bundles(variant) / device

    def bundle_record(self, variant: str) -> Path:
        """A variant's bundles (manifests) and the aarch64-under-qemu perplexity check."""
        return self.root / "results" / "bundles" / f"{variant}.json"

    @property
    def host_record(self) -> Path:
        """This host as a device profile, with its measured bandwidth."""
        return self.root / "results" / "devices" / "this-host.json"

    @property
    def measured_dir(self) -> Path:
        """Measurements a runner brought back from a real device (committed by whoever took them)."""
        return self.root / "results" / "measured"

    def measured(self, device: str, variant: str) -> Path:
        return self.measured_dir / device / f"{variant}.json"

    @property
    def published_dir(self) -> Path:
        """Published llama.cpp measurements on real devices, and the shapes of the models they ran."""
        return self.root / "data" / "published"

    @property
    def published_speeds(self) -> Path:
        return self.published_dir / "llamacpp_speeds.csv"

    @property
    def published_models(self) -> Path:
        return self.published_dir / "models.yaml"

    @property
    def published_power(self) -> Path:
        return self.published_dir / "power.csv"

    @property
    def validation_points(self) -> Path:
        """Every published point with its projections (stage ``validation``)."""
        return self.root / "results" / "devices" / "validation_points.csv"

    @property
    def validation_table(self) -> Path:
        """Per device, backend and test: projection errors, calibrated efficiency, band."""
        return self.root / "results" / "devices" / "validation.csv"

    @property
    def verdicts(self) -> Path:
        """Every variant on every backend of every fleet device, calibrated, with bands and states (``verdicts``)."""
        return self.root / "results" / "devices" / "verdicts.csv"

    @property
    def device_verdicts(self) -> Path:
        """Per variant and fleet device: the verdict of the best backend the bundle runs."""
        return self.root / "results" / "devices" / "device_verdicts.csv"

    @property
    def verdict_shares(self) -> Path:
        return self.root / "results" / "devices" / "fleet_shares.csv"

    @property
    def power_bands(self) -> Path:
        """Per device: the published range of power under llama.cpp load, beside the profile's estimate."""
        return self.root / "results" / "devices" / "power_bands.csv"

    @property
    def fleet_table(self) -> Path:
        return self.root / "results" / "fleet.csv"

    @property
    def accessibility_table(self) -> Path:
        return self.root / "results" / "accessibility.csv"

    @property
    def fleet_summary(self) -> Path:
        return self.root / "results" / "fleet.json"

    # ---- executed notebooks
    def executed_notebook(self, name: str) -> Path:
        """A stage's executed notebook as a reader opens it (committed; :mod:`edgellm.stages.publish`)."""
        return self.root / "results" / "notebooks" / f"{name}.ipynb"

    @property
    def stage_times(self) -> Path:
        """Each notebook stage's run time, appended by the runner (scratch: ``benchmarks/study_time.py``)."""
        return self.work("stage-times.jsonl")

    def params_reads(self, name: str) -> Path:
        """The parameter keys a stage run read, one a line (scratch: the check of dvc.yaml's params deps)."""
        return self.work("params-reads") / f"{name}.txt"

    @property
    def pipeline_vars(self) -> Path:
        """The variant and checkpoint tables ``dvc.yaml`` iterates over, derived from ``params.yaml``."""
        return self.root / "results" / "pipeline.yaml"

    # ---- report
    @property
    def results_table(self) -> Path:
        return self.root / "results" / "results.csv"

    @property
    def speed_table(self) -> Path:
        return self.root / "results" / "speed.csv"

    @property
    def recovery_table(self) -> Path:
        return self.root / "results" / "recovery.csv"

    @property
    def comparisons_table(self) -> Path:
        return self.root / "results" / "comparisons.csv"

    @property
    def task_screen_table(self) -> Path:
        """Each candidate task's base accuracy against chance: which tasks enter generalization accuracy."""
        return self.root / "results" / "tasks.csv"

    @property
    def audit_table(self) -> Path:
        """A seeded sample of generated answers per variant with the judges' verdicts."""
        return self.root / "results" / "audit.csv"

    def lm_eval_agreement(self, model: str) -> Path:
        """lm-evaluation-harness itself against the project on a base model's items (stage ``agreement``)."""
        return self.root / "results" / "agreement" / f"{model}.json"

    @property
    def artifacts_table(self) -> Path:
        return self.root / "results" / "artifacts.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics" / "summary.json"

    @property
    def variants_plot(self) -> Path:
        return self.root / "plots" / "variants.csv"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        return self.root / "paper" / "tables"

    @property
    def generated(self) -> Path:
        return self.root / "paper" / "generated"
