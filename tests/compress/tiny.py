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
