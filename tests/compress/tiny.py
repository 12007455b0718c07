"""Tiny Llama models for the compression tests (random weights, fixed seeds)."""

from __future__ import annotations

import torch

ROWS, SEQ = 8, 32


def tiny_llama(layers=4, hidden=64, inter=128, heads=4, kv=2, seed=0, vocab=512):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv, head_dim=hidden // heads,
                      max_position_embeddings=256, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(5.0)
    return model


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def block_weights(model):
    return {n: p for n, p in model.named_parameters() if ".layers." in n and p.dim() == 2}


def tiny_gemma3(vocab: int = 512, layers: int = 7, seed: int = 0, hidden: int = 256, window: int = 8):
    """A tiny random Gemma 3: one global block in six (the rest attend through a ``window``-token sliding window,
    with another RoPE base), q/k norms, four norms per block, tied embeddings."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(layers)]
    cfg = Gemma3TextConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=64, query_pre_attn_scalar=64,
                           sliding_window=window, layer_types=types, max_position_embeddings=4096, bos_token_id=1,
                           eos_token_id=2, pad_token_id=0, tie_word_embeddings=True,
                           rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
                                            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}})
    cfg.architectures = ["Gemma3ForCausalLM"]
    model = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():  # some structure, and norms away from their init, so that every tensor matters
        for p in model.parameters():
            p.mul_(3.0) if p.dim() == 2 else p.add_(torch.randn_like(p) * 0.3)
    return model


def save_tiny_gemma3(dest, tokenizer_dir, **kwargs):
    """:func:`tiny_gemma3` as a checkpoint with the SentencePiece tokenizer in ``tokenizer_dir``."""
    import shutil
    from pathlib import Path

    dest = Path(dest)
    model = tiny_gemma3(**kwargs)
    model.save_pretrained(dest, safe_serialization=True)
    shutil.copy(Path(tokenizer_dir) / "tokenizer.model", dest / "tokenizer.model")
    # the tiny SentencePiece model as Llama's tokenizer class reads it (Gemma's class adds special tokens beyond
    # its 512 pieces); llama.cpp's converter reads tokenizer.model itself
    (dest / "tokenizer_config.json").write_text('{"tokenizer_class": "LlamaTokenizer", "add_bos_token": true}')
    return dest, model
