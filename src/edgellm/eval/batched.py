"""Batched scoring and parallel generation: many questions per llama.cpp decode.

One question per decode leaves a CPU mostly idle on a small model: a question
is 30-150 tokens, while matrix kernels reach their prompt-processing speed
(``llama-bench`` pp512) only on hundreds of tokens at once. So the scorer packs
questions into decodes of up to ``budget`` tokens (the context's ``n_batch``).
Every (context, continuation) pair of every question in a pack is its own
llama.cpp sequence, and the pack's tokens form a prefix tree: a token is
decoded once and tagged with every sequence whose tokens agree up to it, so a
question's context is shared by its choices, WinoGrande's two contexts share
the sentence before the blank, and TruthfulQA's six-shot preamble is decoded
once per pack. Log-probabilities are taken only where a continuation token is
predicted.

Generation runs up to ``n_parallel`` questions as parallel sequences with
continuous batching: a finished answer frees its sequence for the next
question, whose prompt is prefilled in the same decode as the other answers'
next tokens. The prompt prefix common to all questions is decoded once and
shared through the KV cache.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm  # text bars: they render in executed notebooks

from ..llamacpp.runtime import Batch, Model, log_softmax_rows
from .requests import GeneratedText, Request


@dataclass(frozen=True)
class Score:
    """A continuation's summed log-likelihood and whether greedy decoding would produce it."""

    ll: float
    greedy: bool


@dataclass
class DecodeStats:
    """What the scorer decoded: the benchmark's rate is ``tokens / seconds``."""

    tokens: int = 0
    outputs: int = 0
    decodes: int = 0
    seconds: float = 0.0


class _Trie:
    """A pack's tokens as a prefix tree: node = one token at one position, shared by the sequences
    that agree up to it. Node ids grow from parent to child, so id order is a valid decode order
    (every sequence's tokens appear at consecutive positions, as llama.cpp requires)."""

    def __init__(self) -> None:
        self.token: list[int] = []
        self.pos: list[int] = []
        self.seqs: list[list[int]] = []
        self.children: list[dict[int, int]] = []
        self.root: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.token)

    def insert(self, tokens: Sequence[int], seq: int, start: int = 0) -> list[int]:
        """Add a sequence's tokens at positions ``start``, ``start + 1``, ...; return its nodes."""
        path, level = [], self.root
        for p, t in enumerate(tokens, start):
            node = level.get(t)
            if node is None:
                node = len(self.token)
                level[t] = node
                self.token.append(t)
                self.pos.append(p)
                self.seqs.append([])
                self.children.append({})
            self.seqs[node].append(seq)
            path.append(node)
            level = self.children[node]
        return path


@dataclass
class _Entry:
    request: int
    pair: int
    path: list[int]
    targets: np.ndarray  # continuation tokens
    first: int  # index in path of the node that predicts the first continuation token


@dataclass
class _Pack:
    """Questions decoded together; their first ``shared`` tokens are already in the KV cache."""

    shared: int = 0
    trie: _Trie = field(default_factory=_Trie)
    entries: list[_Entry] = field(default_factory=list)
    n_seq: int = 0

    def add(self, i: int, req: Request) -> None:
        for k, (ctx, cont) in enumerate(req.pairs):
            tokens = np.concatenate([ctx, cont])[self.shared : -1].tolist()  # the last token predicts nothing
            path = self.trie.insert(tokens, self.n_seq, self.shared)
            self.entries.append(_Entry(i, k, path, np.asarray(cont), len(ctx) - 1 - self.shared))
            self.n_seq += 1


class BatchScorer:
    """Log-likelihoods of many questions per decode, and greedy answers in parallel sequences.

    The model's context must have ``n_seq_max`` sequences for the largest pack
    and ``n_ctx`` cells for the largest pack's unique tokens (see
    :func:`edgellm.stages.evaluate` for the sizes the study uses).
    """

    def __init__(self, model: Model, budget: int | None = None):
        self.model = model
        self.budget = budget or model.n_batch
        self.batch = Batch(model.n_batch, model.n_seq_max)
        self.stats = DecodeStats()

    # ------------------------------------------------------------------ multiple choice / loglikelihood
    def score(self, reqs: Sequence[Request], progress: bool = False, desc: str = "") -> list[list[Score]]:
        """Every request's pairs scored, in request order; questions packed up to ``budget`` tokens.

        The prompt prefix common to all the requests (TruthfulQA's six-shot preamble) is decoded once,
        into a sequence of its own that every pack's sequences copy from the KV cache.
        """
        out: list[list[Score | None]] = [[None] * len(r.pairs) for r in reqs]
        if not reqs:
            return []
        m = self.model
        shared = _common_prefix([c for r in reqs for c, _ in r.pairs])
        n_seq = m.n_seq_max - (1 if shared else 0)  # the last sequence holds the shared prefix
        if shared:
            self._decode_prefix(reqs[0].pairs[0][0][:shared], m.n_seq_max - 1)
        bar = tqdm(total=len(reqs), desc=desc, disable=not progress, mininterval=5)
        pending: list[int] = []
        pack = _Pack(shared)
        for i, req in enumerate(reqs):
            if len(req.pairs) > n_seq:
                raise ValueError(f"{len(req.pairs)} continuations > n_seq_max {m.n_seq_max}")
            pack.add(i, req)
            if pending and (len(pack.trie) > self.budget or pack.n_seq > n_seq):
                self._run(self._pack_of(reqs, pending, shared), out)  # the pack without request i
                bar.update(len(pending))
                pending, pack = [], _Pack(shared)
                pack.add(i, req)
            pending.append(i)
        if pending:
            self._run(pack, out)
            bar.update(len(pending))
        bar.close()
        m.clear()
        return out  # type: ignore[return-value]

    @staticmethod
    def _pack_of(reqs: Sequence[Request], indices: Sequence[int], shared: int) -> _Pack:
        pack = _Pack(shared)
        for i in indices:
            pack.add(i, reqs[i])
        return pack

    def _decode_prefix(self, tokens: np.ndarray, seq: int) -> None:
        """``tokens`` at positions 0.. into sequence ``seq`` (no outputs), from an empty cache."""
        m, b = self.model, self.batch
        if len(tokens) >= m.n_ctx:
            raise ValueError(f"a question needs more than {len(tokens)} tokens; the context holds {m.n_ctx}")
        m.clear()
        t0 = time.perf_counter()
        for start in range(0, len(tokens), m.n_batch):
            piece = tokens[start : start + m.n_batch]
            b.clear()
            b.add(piece, start, [seq], False)
            m.decode(b)
            self.stats.decodes += 1
        self.stats.tokens += len(tokens)
        self.stats.seconds += time.perf_counter() - t0

    def _run(self, pack: _Pack, out: list[list[Score | None]]) -> None:
        m, b, trie = self.model, self.batch, pack.trie
        if pack.shared + len(trie) > m.n_ctx:
            raise ValueError(f"a question needs {pack.shared + len(trie)} tokens; the context holds {m.n_ctx}")
        wanted: dict[int, set[int]] = {}  # output node -> continuation tokens it predicts
        for e in pack.entries:
            for node, tok in zip(e.path[e.first :], e.targets):
                wanted.setdefault(node, set()).add(int(tok))
        logprob: dict[tuple[int, int], float] = {}
        argmax: dict[int, int] = {}
        t0 = time.perf_counter()
        if pack.shared:  # every sequence starts from the shared prefix, the previous pack's cells go
            m.seq_keep(m.n_seq_max - 1)
            for s in range(pack.n_seq):
                m.seq_cp(m.n_seq_max - 1, s)
        else:
            m.clear()
        for start in range(0, len(trie), m.n_batch):  # a pack larger than n_batch: consecutive decodes
            nodes = range(start, min(start + m.n_batch, len(trie)))
            b.clear()
            for n in nodes:
                b.add((trie.token[n],), trie.pos[n], trie.seqs[n], n in wanted)
            rows = m.decode(b)
            outs = [n for n in nodes if n in wanted]
            if outs:
                argmax.update(zip(outs, np.argmax(rows, axis=1).tolist()))
                lp = log_softmax_rows(rows.copy())
                for r, n in enumerate(outs):
                    for tok in wanted[n]:
                        logprob[n, tok] = float(lp[r, tok])
            self.stats.decodes += 1
            self.stats.outputs += len(outs)
        self.stats.tokens += len(trie)
        self.stats.seconds += time.perf_counter() - t0
        for e in pack.entries:
            nodes = e.path[e.first :]
            lls = np.array([logprob[n, int(t)] for n, t in zip(nodes, e.targets)], dtype=np.float32)
            greedy = all(argmax[n] == int(t) for n, t in zip(nodes, e.targets))
            out[e.request][e.pair] = Score(float(lls.astype(np.float64).sum()), greedy)

    # ------------------------------------------------------------------ generation
    def generate(self, contexts: Sequence[np.ndarray], max_new_tokens: int, until: Sequence[str] = (),
                 n_parallel: int = 16, progress: bool = False, desc: str = "") -> list[GeneratedText]:
        """Greedy answers, ``n_parallel`` at a time, each stopped at end-of-generation, at the first of
        ``until`` (the text is cut there, as lm-eval cuts it) or after ``max_new_tokens``."""
        m, b = self.model, self.batch
        if not contexts:
            return []
        shared = _common_prefix(contexts)
        own = max(len(c) for c in contexts) - shared
        n_par = min(n_parallel, m.n_seq_max - 1, len(contexts), (m.n_ctx - shared) // (own + max_new_tokens))
        if n_par < 1:
            raise ValueError(f"prompts of {shared + own} tokens + {max_new_tokens} new do not fit n_ctx {m.n_ctx}")
        self._decode_prefix(contexts[0][:shared], 0)  # the common prefix once, in sequence 0
        t0 = time.perf_counter()
        results: list[GeneratedText | None] = [None] * len(contexts)
        queue = iter(range(len(contexts)))
        slots: dict[int, _Slot] = {}
        bar = tqdm(total=len(contexts), desc=desc, disable=not progress, mininterval=5)

        def admit(seq: int) -> None:
            i = next(queue, None)
            if i is None:
                slots.pop(seq, None)
                return
            m.seq_cp(0, seq)
            slots[seq] = _Slot(i, shared, contexts[i][shared:])

        for seq in range(1, n_par + 1):
            admit(seq)
        while slots:
            b.clear()
            stepping = []
            for seq, st in slots.items():
                if b.n + len(st.pending) > b.capacity:
                    continue  # prefill waits for the next decode
                mask = np.zeros(len(st.pending), dtype=bool)
                mask[-1] = True
                b.add(st.pending, st.pos, [seq], mask)
                st.pos += len(st.pending)
                stepping.append(seq)
            logits = m.decode(b)
            self.stats.tokens += b.n
            self.stats.decodes += 1
            nexts = np.argmax(logits, axis=1).tolist()
            for seq, tok in zip(stepping, nexts):
                st = slots[seq]
                done = st.step(m, tok, until, max_new_tokens)
                if done is not None:
                    results[st.index] = done
                    m.seq_rm(seq)
                    bar.update(1)
                    admit(seq)
        bar.close()
        m.clear()
        self.stats.seconds += time.perf_counter() - t0
        return results  # type: ignore[return-value]


@dataclass
class _Slot:
    """One answer being generated in its own sequence."""

    index: int
    pos: int
    pending: np.ndarray  # tokens to decode next: the prompt's own tokens, then the last generated one
    out: list[int] = field(default_factory=list)

    def step(self, m: Model, tok: int, until: Sequence[str], max_new_tokens: int) -> GeneratedText | None:
        if m.is_eog(tok):
            return GeneratedText(m.detokenize(self.out), self.out, "eog")
        self.out.append(tok)
        text = m.detokenize(self.out)
        hits = [text.index(u) for u in until if u in text]
        if hits:
            return GeneratedText(text[: min(hits)], self.out, "until")
        if len(self.out) >= max_new_tokens:
            return GeneratedText(text, self.out, "length")
        self.pending = np.asarray([tok], dtype=np.int32)
        return None


def _common_prefix(contexts: Sequence[np.ndarray]) -> int:
    """Tokens every context starts with, leaving each at least one token of its own."""
    first = contexts[0]
    n = min(len(c) for c in contexts) - 1
    for c in contexts[1:]:
        diff = np.nonzero(c[:n] != first[:n])[0]
        n = int(diff[0]) if len(diff) else n
    return max(n, 0)
