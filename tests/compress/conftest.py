"""Fixtures of the compression tests: real text in the tiny tokenizer's ids, and a teacher trained on it."""

from __future__ import annotations

import pytest
import torch

from edgellm.compress.activations import token_batches

from .tiny import ROWS, SEQ, tiny_llama


@pytest.fixture(scope="package")
def text_ids(tiny_hf, wiki_text) -> torch.Tensor:
    """Real text (WikiText-2) in the tiny tokenizer's ids."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny_hf / "tokenizer.model"))
    return torch.tensor(sp.encode(wiki_text), dtype=torch.long)


@pytest.fixture
def batches(text_ids):
    return token_batches(text_ids, SEQ, ROWS * SEQ, batch_size=4)


@pytest.fixture(scope="package")
def teacher(text_ids):
    """A tiny language model briefly trained on the text, so that it has something to teach."""
    model = tiny_llama(layers=4, seed=1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(0.2)
    rows = text_ids[: (len(text_ids) // SEQ) * SEQ].view(-1, SEQ)[:-8]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(40):
        ids = rows[torch.randint(0, len(rows), (8,), generator=gen)]
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)
