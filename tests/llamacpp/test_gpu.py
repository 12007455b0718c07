"""The GPU path (a CUDA build, ``execution.n_gpu_layers``): the same scores as the CPU within the GPU's tolerance.

The tolerance: on the F32 file, every choice's summed log-likelihood within 2e-2 nats plus 1e-3 relative of
the CPU's (CUDA's matrix products use other kernels and sum orders, and may round activations to F16), and the
same predicted choice wherever the CPU's margin exceeds that. Without a GPU build the offload request fails
with a message naming the parameter, and nothing else changes (the rest of the suite is the CPU path).
"""

from __future__ import annotations

import llama_cpp
import numpy as np
import pytest

from edgellm.eval.batched import BatchScorer
from edgellm.eval.scoring import run_tasks
from edgellm.eval.tasks import TASKS, select_items
from edgellm.llamacpp.runtime import Model

GPU = bool(llama_cpp.llama_supports_gpu_offload())
CONTEXT = {"n_ctx": 4096, "n_batch": 512, "n_ubatch": 512, "n_seq_max": 64, "n_threads": 2}
ATOL, RTOL = 2e-2, 1e-3


def test_offloading_without_a_gpu_build_names_the_parameter(tiny_gguf):
    if GPU:
        pytest.skip("this build has a GPU backend")
    with pytest.raises(RuntimeError, match=r"execution\.n_gpu_layers.*no GPU backend"):
        Model(tiny_gguf["F32"], **CONTEXT, n_gpu_layers=99)
    with Model(tiny_gguf["F32"], **CONTEXT) as m:
        assert m.compute == "cpu"


@pytest.mark.skipif(not GPU, reason="no GPU build (the GPU path is untested where this skips)")
def test_gpu_scores_match_the_cpu_within_tolerance(tiny_gguf, data_dir):
    items = {name: select_items(TASKS[name], data_dir, 8, seed=3) for name in ("arc_easy", "piqa", "lambada_openai")}
    out = {}
    for layers in (0, 99):
        with Model(tiny_gguf["F32"], **CONTEXT, n_gpu_layers=layers) as m:
            assert m.compute == ("gpu" if layers else "cpu")
            out[layers] = run_tasks(BatchScorer(m), items, 8, progress=False)
    for name in items:
        for cpu, gpu in zip(out[0][name][1], out[99][name][1]):
            np.testing.assert_allclose(gpu.lls, cpu.lls, atol=ATOL, rtol=RTOL, err_msg=f"{name} item {cpu.index}")
            margin = np.sort(cpu.lls)[-1] - np.sort(cpu.lls)[-2] if len(cpu.lls) > 1 else np.inf
            if margin > 2 * ATOL:
                assert gpu.acc == cpu.acc, (name, cpu.index)
