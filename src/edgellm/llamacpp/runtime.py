"""A GGUF model in llama.cpp, through llama-cpp-python's low-level API.

The high-level ``llama_cpp.Llama`` copies the logits of every evaluated token
into Python and evaluates one sequence at a time. The study needs what the
reference tools do instead: several sequences per decode (llama-perplexity
decodes ``n_batch / n_ctx`` chunks at once), logits only where they are scored,
and one prompt shared by all answer choices through the KV cache. So this
module drives ``llama_decode`` directly; one model and one context are loaded
once and reused for all the work of a stage.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import llama_cpp

from .gguf import ModelFileError, check_gguf

_LOG_CALLBACK = None


def quiet_llama_logs() -> None:
    """Silence llama.cpp's per-load log spam (errors still raise in Python)."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is None:

        @llama_cpp.llama_log_callback
        def _cb(level, text, user_data):  # noqa: ANN001
            return None

        _LOG_CALLBACK = _cb
        llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


_backend_ready = False


def _backend() -> None:
    global _backend_ready
    if not _backend_ready:
        quiet_llama_logs()
        llama_cpp.llama_backend_init()
        _backend_ready = True


class Batch:
    """A reusable ``llama_batch`` whose tokens may belong to several sequences."""

    def __init__(self, capacity: int, n_seq_max: int):
        self.capacity = capacity
        self.n_seq_max = n_seq_max
        self._b = llama_cpp.llama_batch_init(capacity, 0, n_seq_max)
        self.token = np.ctypeslib.as_array(self._b.token, shape=(capacity,))
        self.pos = np.ctypeslib.as_array(self._b.pos, shape=(capacity,))
        self.n_seq_id = np.ctypeslib.as_array(self._b.n_seq_id, shape=(capacity,))
        self.logits = np.ctypeslib.as_array(self._b.logits, shape=(capacity,))
        self.n = 0

    def clear(self) -> None:
        self.n = 0

    def add(self, tokens: Sequence[int], start_pos: int, seq_ids: Sequence[int], logits: Sequence[bool] | bool) -> None:
        """Append a run of tokens at consecutive positions, all in ``seq_ids``."""
        k = len(tokens)
        if self.n + k > self.capacity:
            raise ValueError(f"batch overflow: {self.n + k} tokens > capacity {self.capacity}")
        if len(seq_ids) > self.n_seq_max:
            raise ValueError(f"{len(seq_ids)} sequences > n_seq_max {self.n_seq_max}")
        sl = slice(self.n, self.n + k)
        self.token[sl] = tokens
        self.pos[sl] = np.arange(start_pos, start_pos + k)
        self.n_seq_id[sl] = len(seq_ids)
        self.logits[sl] = logits
        seq = self._b.seq_id
        for i in range(self.n, self.n + k):
            row = seq[i]
            for j, s in enumerate(seq_ids):
                row[j] = s
        self.n += k

    @property
    def n_outputs(self) -> int:
        return int(np.count_nonzero(self.logits[: self.n]))

    def native(self) -> llama_cpp.llama_batch:
        self._b.n_tokens = self.n
        return self._b

    def __del__(self) -> None:
        b = getattr(self, "_b", None)
        if b is not None:
            try:
                llama_cpp.llama_batch_free(b)
            except Exception:  # interpreter shutdown
                pass
            self._b = None


class Model:
    """One GGUF model with one llama.cpp context, loaded once and reused.

    ``n_seq_max`` sequences share a unified KV cache of ``n_ctx`` cells, which is
    what lets one prompt serve every answer choice of a question.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        n_ctx: int = 2048,
        n_batch: int = 2048,
        n_ubatch: int = 512,
        n_seq_max: int = 1,
        n_threads: int | None = None,
        kv_unified: bool = True,
        use_mmap: bool = True,
        kv_f32: bool = False,
        flash_attn: int | None = None,
        n_gpu_layers: int = 0,
    ):
        _backend()
        self.path = check_gguf(path)
        if n_gpu_layers and not llama_cpp.llama_supports_gpu_offload():
            raise RuntimeError(f"n_gpu_layers={n_gpu_layers} (params.yaml execution.n_gpu_layers): this llama-cpp-python "
                               "build has no GPU backend; `make` builds it with CUDA where nvcc is found")
        #: where the layers run: "gpu" when any is offloaded, else "cpu" (records say which)
        self.compute = "gpu" if n_gpu_layers else "cpu"
        t0 = time.perf_counter()
        mparams = llama_cpp.llama_model_default_params()
        mparams.use_mmap = use_mmap
        mparams.n_gpu_layers = n_gpu_layers
        self._model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self._model:
            raise ModelFileError(f"{self.path}: llama.cpp could not load this model (truncated or unsupported file?)")
        self._ctx = None
        self.kv_f32 = kv_f32
        self.new_context(n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_ubatch, n_seq_max=n_seq_max,
                         n_threads=n_threads, kv_unified=kv_unified, flash_attn=flash_attn)
        self.load_seconds = time.perf_counter() - t0
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(self._vocab))
        self.n_params = int(llama_cpp.llama_model_n_params(self._model))
        self.size_bytes = int(llama_cpp.llama_model_size(self._model))

    def new_context(self, *, n_ctx: int, n_batch: int = 2048, n_ubatch: int = 512, n_seq_max: int = 1,
                    n_threads: int | None = None, kv_unified: bool = True, flash_attn: int | None = None) -> None:
        """Replace the context (KV cache and compute buffers); the weights stay loaded."""
        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        n_threads = n_threads or (os.cpu_count() or 1)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = min(n_ubatch, n_batch)
        cparams.n_seq_max = n_seq_max
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.kv_unified = kv_unified
        cparams.no_perf = True
        if self.kv_f32:  # llama.cpp keeps K and V in F16 by default; F32 to compare with float32 references
            cparams.type_k = cparams.type_v = llama_cpp.GGML_TYPE_F32
        if flash_attn is not None:
            cparams.flash_attn_type = flash_attn
        ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not ctx:
            raise ModelFileError(f"{self.path}: could not create a llama.cpp context (n_ctx={n_ctx})")
        self._ctx = ctx
        self._mem = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = llama_cpp.llama_n_ctx(ctx)
        self.n_batch = n_batch
        self.n_seq_max = n_seq_max
        self.n_threads = n_threads

    # -- tokens ---------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> np.ndarray:
        """llama.cpp's tokenizer, as ``common_tokenize`` calls it in the reference tools."""
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, parse_special)
        return np.ctypeslib.as_array(buf)[:n].astype(np.int32)

    def is_eog(self, token: int) -> bool:
        """End of generation (EOS, EOT, ...), as llama.cpp's samplers decide it."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, int(token)))

    def detokenize(self, tokens: Sequence[int]) -> str:
        out = bytearray()
        buf = ctypes.create_string_buffer(256)
        for t in tokens:
            n = llama_cpp.llama_token_to_piece(self._vocab, int(t), buf, len(buf), 0, False)
            out += buf.raw[:n]
        return out.decode("utf-8", errors="replace")

    # -- KV cache -------------------------------------------------------------
    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self._mem, True)

    def seq_rm(self, seq: int, p0: int = -1, p1: int = -1) -> None:
        llama_cpp.llama_memory_seq_rm(self._mem, seq, p0, p1)

    def seq_cp(self, src: int, dst: int, p0: int = -1, p1: int = -1) -> None:
        llama_cpp.llama_memory_seq_cp(self._mem, src, dst, p0, p1)

    def seq_keep(self, seq: int) -> None:
        llama_cpp.llama_memory_seq_keep(self._mem, seq)

    # -- compute --------------------------------------------------------------
    def set_threads(self, n_threads: int) -> None:
        llama_cpp.llama_set_n_threads(self._ctx, n_threads, n_threads)
        self.n_threads = n_threads

    def decode(self, batch: Batch) -> np.ndarray:
        """Decode a batch; return the logits of its output tokens, in batch order.

        The array is a view into llama.cpp's buffer: valid until the next decode.
        """
        n_out = batch.n_outputs
        rc = llama_cpp.llama_decode(self._ctx, batch.native())
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc} ({self.path.name}, {batch.n} tokens)")
        if n_out == 0:
            return np.empty((0, self.n_vocab), dtype=np.float32)
        ptr = llama_cpp.llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(ptr, shape=(n_out, self.n_vocab))

    def synchronize(self) -> None:
        llama_cpp.llama_synchronize(self._ctx)

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: llama_cpp may already be gone
            pass


def log_softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float32 with a float64 normaliser, as llama-perplexity does."""
    m = logits.max(axis=1, keepdims=True)
    shifted = logits - m
    lse = np.log(np.exp(shifted).sum(axis=1, dtype=np.float64)).astype(np.float32)
    shifted -= lse[:, None]
    return shifted
