"""Shared fixtures: the real data mirror the repository carries (data/mirror), and a tiny Llama model built and converted in the test.

The test folders mirror the packages of ``src/edgellm`` (``tests/eval`` for ``edgellm.eval``, ...);
each is a package, so that same-named files in two folders do not collide.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("EDGELLM_ROOT", str(ROOT))
# Tests never download: the hub is unreachable here, and a library that tries would only time out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _data_dir() -> Path:
    env = os.environ.get("EDGELLM_DATA_DIR")
    return Path(env) if env else ROOT / "data" / "mirror"  # the repository's own copy


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if not (d / "MANIFEST.json").is_file():
        pytest.fail(f"evaluation data mirror not found at {d}; set EDGELLM_DATA_DIR")
    return d


@pytest.fixture(scope="session")
def wiki_text(data_dir) -> str:
    from edgellm.eval.data import wikitext_document

    return wikitext_document(data_dir)[:60_000]


def _train_tokenizer(text: str, out: Path) -> None:
    import sentencepiece as spm

    corpus = out / "corpus.txt"
    corpus.write_text(text)
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out / "tokenizer"), vocab_size=512, model_type="bpe",
        character_coverage=1.0, byte_fallback=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
        num_threads=1, minloglevel=2, seed_sentencepiece_size=100000, shuffle_input_sentence=False,
    )
    corpus.unlink()
    (out / "tokenizer.vocab").unlink()


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory, wiki_text) -> Path:
    """A tiny Llama checkpoint (random weights, fixed seed) with a SentencePiece tokenizer.

    Rows of 256 let K-quants apply; the model is small enough to run in milliseconds.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path_factory.mktemp("tiny_hf")
    _train_tokenizer(wiki_text, d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, rms_norm_eps=1e-5)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # give it some structure so that predictions are not uniform
        for p in model.parameters():
            p.mul_(4.0 if p.dim() == 2 else 1.0)
    model.save_pretrained(d, safe_serialization=True)
    (d / "tokenizer_config.json").write_text('{"tokenizer_class": "LlamaTokenizer", "add_bos_token": true}')
    return d


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory, tiny_hf) -> dict[str, Path]:
    """The tiny model as GGUF files made by llama.cpp's converter and quantizer."""
    from edgellm.llamacpp.convert import convert_hf, quantize

    d = tmp_path_factory.mktemp("tiny_gguf")
    f32 = convert_hf(tiny_hf, d / "F32.gguf", "f32", ROOT)
    files = {"F32": f32}
    for t in ("F16", "Q8_0", "Q4_K_M"):
        files[t] = quantize(f32, d / f"{t}.gguf", t, threads=2, root=ROOT)
    return files


@pytest.fixture(scope="session")
def wiki_file(tmp_path_factory, wiki_text) -> Path:
    p = tmp_path_factory.mktemp("text") / "wiki.txt"
    p.write_text(wiki_text)
    return p
