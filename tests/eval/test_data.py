"""Datasets from the local mirror (``edgellm.eval.data``): hub schemas, lm-eval prompts, seeded samples, bad files."""

import json

import pytest

from edgellm.eval import data
from edgellm.eval.tasks import TASKS


@pytest.mark.parametrize("name", sorted(TASKS))
def test_tasks_load_from_mirror_with_hub_schema(data_dir, name):
    task = TASKS[name]
    ds = data.load(task.data, data_dir)
    assert len(ds) > 100
    doc = ds[0]
    if task.process_docs:
        doc = task.process_docs(doc)
    text = task.doc_to_text(doc)
    if task.generative:
        assert text.endswith(doc["question"]) and doc["incorrect_answers"]
        return
    if task.loglikelihood:  # LAMBADA: the passage without its last word, then that word
        (ctx, cont), = task.pairs(doc)
        assert ctx + cont == doc["text"] and cont.startswith(" ") and " " not in cont[1:]
        return
    choices = task.doc_to_choice(doc)
    gold = task.doc_to_target(doc)
    assert (text or task.multiple_input) and len(choices) >= 2 and 0 <= gold < len(choices)
    assert len(task.pairs(doc)) == len(choices) and task.chance(doc) == pytest.approx(
        1 / len(choices) if task.metric != "mc2" else sum(task.doc_to_labels(doc)) / len(choices))
    if task.metric == "mc2":
        labels = task.doc_to_labels(doc)
        assert len(labels) == len(choices) and 1 in labels and 0 in labels


def test_lm_eval_prompts(data_dir):
    """The prompts are lm-evaluation-harness 0.4.13's, character for character."""
    arc = TASKS["arc_easy"]
    doc = data.load(arc.data, data_dir)[0]
    assert arc.doc_to_text(doc) == f"Question: {doc['question']}\nAnswer:"
    tqa = TASKS["truthfulqa_mc1"]
    doc = data.load(tqa.data, data_dir)[0]
    text = tqa.doc_to_text(doc)
    assert text.startswith("Q: What is human life expectancy in the United States?\nA: Human life")
    assert text.endswith("A: The 1992 Olympics were held in Barcelona, Spain.\n\nQ: " + doc["question"] + "\nA:")
    hs = TASKS["hellaswag"]
    raw = {"activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
           "endings": ["is using wrap [title] to wrap.", "b", "c", "d"], "label": "3"}
    doc = hs.process_docs(raw)
    assert doc["query"] == "Roof shingle removal: A man is sitting on a roof. He"
    assert doc["endings"][0] == "is using wrap. to wrap."
    assert hs.doc_to_target(doc) == 3


def test_wikitext_document_is_lm_eval_join(data_dir):
    text = data.wikitext_document(data_dir)
    rows = data.load(data.WIKITEXT2_TEST, data_dir)["text"]
    assert text == "\n\n".join(rows)
    assert " = Robert Boulter = " in text[:200]


def test_sample_indices_seeded_sorted_and_stable():
    a = data.sample_indices(1000, 25, seed=7)
    assert a == sorted(a) and len(set(a)) == 25
    assert a == data.sample_indices(1000, 25, seed=7)
    assert a != data.sample_indices(1000, 25, seed=8)
    assert data.sample_indices(10, None, 1) == list(range(10))
    assert data.sample_indices(10, 50, 1) == list(range(10))


def test_missing_dataset_file_is_named(tmp_path):
    (tmp_path / "piqa").mkdir()
    with pytest.raises(data.DataError, match=r"piqa/validation.jsonl.*not found"):
        data.load(TASKS["piqa"].data, tmp_path)
    with pytest.raises(data.DataError, match="does not exist"):
        data.load(TASKS["piqa"].data, tmp_path / "nowhere")


def test_corrupt_dataset_file_is_named(tmp_path):
    (tmp_path / "piqa").mkdir()
    (tmp_path / "piqa" / "validation.jsonl").write_text('{"goal": "x", "sol1": \n')
    with pytest.raises(data.DataError, match="validation.jsonl"):
        data.load(TASKS["piqa"].data, tmp_path)


def test_hub_layout_directory(tmp_path, data_dir):
    """A directory laid out like the hub repository (configs in its README) loads the same rows."""
    repo = tmp_path / "allenai" / "ai2_arc"
    (repo / "ARC-Easy").mkdir(parents=True)
    rows = list(data.load(TASKS["arc_easy"].data, data_dir).select(range(20)))
    with open(repo / "ARC-Easy" / "test.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: ARC-Easy\n  data_files:\n  - split: test\n    path: ARC-Easy/test.jsonl\n---\n"
    )
    ds = data.load(TASKS["arc_easy"].data, tmp_path)
    assert len(ds) == 20 and ds[0]["question"] == rows[0]["question"]
    assert set(ds.column_names) >= {"question", "choices", "answerKey"}


def test_repository_carries_the_mirror_byte_for_byte(data_dir):
    """Every carried file decompresses to the source mirror's bytes and row count (MANIFEST.json)."""
    import hashlib
    import lzma

    manifest = json.loads((data_dir / "MANIFEST.json").read_text())
    carried = {m["file"] for m in manifest}
    refs = {t.data.local for t in TASKS.values()} | {t.fewshot.data.local for t in TASKS.values() if t.fewshot}
    assert refs | {data.WIKITEXT2_TEST.local, data.LAMBADA_DEV.local} <= carried  # everything the tasks read
    for m in manifest:
        stored = (data_dir / m["stored"]).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == m["stored_sha256"], m["stored"]
        raw = lzma.decompress(stored)
        assert hashlib.sha256(raw).hexdigest() == m["sha256"], m["file"]
        assert raw.count(b"\n") == m["rows"] and m["license"] and m["source"], m["file"]


def test_compressed_and_plain_files_load_the_same_rows(tmp_path, data_dir):
    import lzma

    ref = TASKS["openbookqa"].data
    plain = tmp_path / ref.local
    plain.parent.mkdir(parents=True)
    plain.write_bytes(lzma.decompress((data_dir / (ref.local + data.COMPRESSED)).read_bytes()))
    a, b = data.load(ref, tmp_path), data.load(ref, data_dir)
    assert a.column_names == b.column_names and list(a) == list(b) and len(a) == 500
