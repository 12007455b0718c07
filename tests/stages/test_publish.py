"""The committed copy of an executed notebook: no run times or progress bars, figures linked, outputs and the file
capped, the same bytes for the same results."""

from __future__ import annotations

import base64
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import nbformat  # noqa: E402

from edgellm.stages import publish  # noqa: E402


def _executed(png: bytes, other_png: bytes) -> dict:
    cell_meta = {"papermill": {"start_time": "2026-12-03T04:00:00", "duration": 1.5, "status": "completed"},
                 "execution": {"iopub.execute_input": "2026-12-03T04:00:00"}, "tags": ["parameters"]}
    outputs = [
        {"output_type": "stream", "name": "stderr", "text": "shards: 100%|██████████| 4/4 [00:03<00:00, 1.2it/s]\n"},
        {"output_type": "stream", "name": "stderr", "text": "a warning a reader should see\n"},
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": base64.b64encode(png).decode(),
                                                                 "text/plain": "<IPython.core.display.Image object>"}},
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": base64.b64encode(other_png).decode(),
                                                                 "text/plain": "<Figure>"}},
        {"output_type": "execute_result", "execution_count": 3, "metadata": {}, "data": {"text/plain": "x" * 300_000}},
    ]
    return {"cells": [{"id": "c1", "cell_type": "code", "execution_count": 3, "metadata": cell_meta, "source": "display()",
                       "outputs": outputs}],
            "metadata": {"papermill": {"start_time": "2026-12-03T04:00:00", "end_time": "2026-12-03T04:01:00",
                                       "duration": 60.0, "parameters": {"variant": "v"}},
                         "kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _png(path, color: str) -> bytes:
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], color=color)
    fig.savefig(path)
    plt.close(fig)
    return path.read_bytes()


def test_the_committed_copy(tmp_path):
    (tmp_path / "figures").mkdir()
    png = _png(tmp_path / "figures" / "pareto_size.png", "red")
    other = _png(tmp_path / "inline.png", "blue")
    executed = tmp_path / "run" / "07_report.ipynb"
    executed.parent.mkdir(parents=True)
    executed.write_text(json.dumps(_executed(png, other)))
    target = tmp_path / "results" / "notebooks" / "07_report.ipynb"
    nb = publish.readable(json.loads(executed.read_text()), tmp_path, target.parent)
    # papermill's block and the kernel's version go; the parameters the run was given stay
    assert nb["metadata"] == {"kernelspec": {"name": "python3", "display_name": "Python 3"},
                              "language_info": {"name": "python"}, "parameters": {"variant": "v"}}
    cell = nb["cells"][0]
    assert cell["metadata"] == {"tags": ["parameters"]} and cell["id"] == "cell-0" and cell["execution_count"] == 1
    outs = cell["outputs"]
    assert [o.get("text", "") for o in outs[:1]] == ["a warning a reader should see\n"]  # the progress bar went
    assert outs[1]["data"]["text/markdown"] == "![pareto_size.png](../../figures/pareto_size.png)"
    assert base64.b64decode(outs[2]["data"]["image/png"]) == other  # an inline plot no file holds stays
    assert "left out of this copy" in outs[3]["text"]

    out = publish.publish(executed, tmp_path, target)
    assert out == target
    text = out.read_text()
    assert "2026-12-03" not in text and "it/s" not in text and "papermill" not in text and len(text) < 60_000
    # a notebook nbformat accepts, as a repository's web view renders it
    nbformat.validate(nbformat.reads(text, as_version=4))
    # the same executed notebook run again (other times, other random cell ids) gives the same bytes
    again = _executed(png, other)
    again["metadata"]["papermill"]["duration"] = 75.0
    again["metadata"]["language_info"] = {"name": "python", "version": "3.11.99"}
    for i, cell in enumerate(again["cells"]):
        cell["id"] = f"{i:08x}"
        cell["execution_count"] = 17
    executed.write_text(json.dumps(again))
    before = out.read_bytes()
    publish.publish(executed, tmp_path, target)
    assert out.read_bytes() == before


def test_a_notebook_over_the_cap_loses_its_largest_outputs_first(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "MAX_NOTEBOOK_BYTES", 30_000)
    cells = [{"cell_type": "code", "id": f"c{i}", "execution_count": i, "metadata": {}, "source": "x",
              "outputs": [{"output_type": "stream", "name": "stdout", "text": "y" * size}]}
             for i, size in enumerate([20_000, 15_000, 100])]
    nb = publish.readable({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, tmp_path, tmp_path)
    texts = [c["outputs"][0]["text"] for c in nb["cells"]]
    assert "left out of this copy" in texts[0] and texts[1] == "y" * 15_000 and texts[2] == "y" * 100
    assert len(publish._serialize(nb)) <= 30_000
