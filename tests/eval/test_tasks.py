"""Tasks as data: tasks.yaml against lm-evaluation-harness's own YAMLs, and bad definitions."""

from __future__ import annotations

import pytest

from edgellm.eval.tasks import TASKS, TaskFileError, load_tasks, select_items


@pytest.fixture(scope="module")
def lm_eval_configs():
    from lm_eval.tasks import TaskManager

    tm = TaskManager()
    names = {"arc_easy": "arc_easy", "arc_challenge": "arc_challenge", "hellaswag": "hellaswag", "piqa": "piqa",
             "boolq": "boolq", "mmlu": "mmlu_anatomy", "truthfulqa_mc1": "truthfulqa_mc1",
             "truthfulqa_mc2": "truthfulqa_mc2", "truthfulqa_gen": "truthfulqa_gen", "sciq": "sciq",
             "openbookqa": "openbookqa", "lambada_openai": "lambada_openai", "winogrande": "winogrande"}
    return {ours: tm._factory._load_full_config(tm.task_index[theirs]) for ours, theirs in names.items()}


@pytest.mark.parametrize("name", ["arc_easy", "arc_challenge", "piqa", "boolq", "mmlu", "sciq", "openbookqa"])
def test_templates_are_lm_eval_s(name, lm_eval_configs):
    """Where lm-eval's template reads the same columns, the definition is lm-eval's, string for string."""
    ours, theirs = TASKS[name], lm_eval_configs[name]
    assert ours.text == theirs["doc_to_text"]
    assert ours.choices == theirs["doc_to_choice"]
    if name != "boolq":  # lm-eval reads super_glue's `label`; the mirror is google/boolq's `answer`
        assert ours.target == theirs["doc_to_target"]


def test_lambada_is_lm_eval_s_loglikelihood_task(lm_eval_configs, data_dir):
    theirs, ours = lm_eval_configs["lambada_openai"], TASKS["lambada_openai"]
    assert theirs["output_type"] == "loglikelihood" and ours.loglikelihood
    assert ours.text == theirs["doc_to_text"] and ours.continuation == theirs["doc_to_target"]


def test_winogrande_templates_equal_lm_eval_s_functions(lm_eval_configs, data_dir):
    """lm-eval's preprocess_winogrande functions, written as templates, give the same contexts, gold and
    continuation on real items (lm-eval's multiple input: each option fills the blank)."""
    theirs, task = lm_eval_configs["winogrande"], TASKS["winogrande"]
    it = select_items(task, data_dir, 20, seed=4)
    for doc in it.docs:
        assert task.doc_to_choice(doc) == theirs["doc_to_choice"](doc)
        assert task.doc_to_target(doc) == theirs["doc_to_text"](doc)
        assert task.doc_to_continuation(doc) == theirs["doc_to_target"](doc)
        assert task.pairs(doc) == [(c, " " + theirs["doc_to_target"](doc)) for c in theirs["doc_to_choice"](doc)]


def test_truthfulqa_prompts_render_like_lm_eval(lm_eval_configs, data_dir):
    from lm_eval.utils import apply_template

    for name in ("truthfulqa_mc1", "truthfulqa_gen"):
        task = TASKS[name]
        it = select_items(task, data_dir, 3, seed=1)
        for doc in it.docs:
            assert task.doc_to_text(doc) == apply_template(lm_eval_configs[name]["doc_to_text"], doc)
    assert TASKS["truthfulqa_gen"].until == ("\n\n",)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_renders_real_items(name, data_dir):
    task = TASKS[name]
    it = select_items(task, data_dir, 4, seed=3)
    assert len(it.indices) == 4 and it.indices == sorted(it.indices)
    for doc, shots in zip(it.docs, it.shots):
        ctx = task.context(doc, shots)
        assert ctx.endswith(task.doc_to_text(doc))
        if task.generative:
            assert doc["correct_answers"] and "I have no comment." in doc["correct_answers"]
            assert all(a.endswith(".") for a in doc["incorrect_answers"])
            continue
        if task.loglikelihood:
            (context, continuation), = task.pairs(doc, shots)
            assert context == ctx and context + continuation == doc["text"]
            continue
        choices = task.doc_to_choice(doc)
        assert len(choices) >= 2 and 0 <= task.doc_to_target(doc) < len(choices)


def test_mmlu_five_shot_is_first_n_of_the_subject(data_dir):
    from edgellm.eval import data

    task = TASKS["mmlu_5shot"]
    it = select_items(task, data_dir, 3, seed=5)
    dev = list(data.load(task.fewshot.data, data_dir))
    for doc, shots in zip(it.docs, it.shots):
        assert shots == [d for d in dev if d["subject"] == doc["subject"]][:5]
        ctx = task.context(doc, shots)
        first = shots[0]
        assert f"{first['question'].strip()}\nA. {first['choices'][0]}" in ctx
        assert f"Answer: {'ABCD'[first['answer']]}\n\n" in ctx
    assert TASKS["mmlu"].context(it.docs[0]).startswith("The following are multiple choice questions")


def test_boolq_gold_from_bool_answer():
    doc = {"passage": "p", "question": "is it", "answer": True}
    assert TASKS["boolq"].doc_to_target(doc) == 1
    assert TASKS["boolq"].doc_to_text(doc) == "p\nQuestion: is it?\nAnswer:"


@pytest.mark.parametrize("text, match", [
    ("a: {dataset: {hub: x, split: s, local: f}, text: t, metric: acc, choices: c, target: 0, colour: red}",
     r"task 'a' has unknown key\(s\) \['colour'\]"),
    ("a: {dataset: {hub: x, split: s, local: f}, text: t, metric: accuracy, choices: c, target: 0}",
     "metric 'accuracy' is not one of"),
    ("a: {include: b}\nb: {include: a}", "include cycle a -> b -> a"),
    ("a: {include: nowhere}", "includes unknown task 'nowhere'"),
    ("a: {dataset: {hub: x, split: s, local: f}, text: t, metric: acc}", "needs choices and target"),
    ("a: {dataset: {hub: x}, text: t, metric: acc, choices: c, target: 0}", "dataset needs hub, split and local"),
    ("a: {dataset: {hub: x, split: s, local: f}, text: t, metric: acc, choices: c, target: 0, process: nope}",
     "process 'nope' is not one of"),
])
def test_bad_task_files_name_file_task_and_key(tmp_path, text, match):
    path = tmp_path / "tasks.yaml"
    path.write_text(text)
    with pytest.raises(TaskFileError, match=match) as e:
        load_tasks(path)
    assert str(path) in str(e.value)


def test_a_new_task_is_a_definition(tmp_path, data_dir):
    """Adding a task needs no code: ARC-Challenge's test split with a different prompt."""
    path = tmp_path / "tasks.yaml"
    path.write_text(
        "arc_val:\n"
        "  dataset: {hub: allenai/ai2_arc, config: ARC-Challenge, split: test, local: ai2_arc/ARC-Challenge/test.jsonl}\n"
        "  text: \"Q: {{question}}\\nA:\"\n"
        "  choices: \"{{choices.text}}\"\n"
        "  target: \"{{choices.label.index(answerKey)}}\"\n"
        "  metric: acc\n")
    task = load_tasks(path)["arc_val"]
    it = select_items(task, data_dir, 2, seed=0)
    assert task.context(it.docs[0]).startswith("Q: ") and task.acc_norm
