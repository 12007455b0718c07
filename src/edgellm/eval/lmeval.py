"""Run lm-evaluation-harness itself on the study's items, to prove the scorer equivalent.

lm-eval's own task definitions are loaded (its YAMLs, with their templates,
``process_docs`` and ``process_results``); only where the documents come from
is changed: the exact items a study scored are written to local JSON files and
lm-eval is pointed at them. Two adaptations are data-side, not definition-side:
BoolQ is read by lm-eval from super_glue (``label``) while the mirror is
google/boolq (``answer``: the same rows), so ``label = int(answer)`` is added;
the mirror's HellaSwag rows are already lm-eval-processed (raw hub fields are
not in the mirror), so lm-eval's ``process_docs`` is replaced by the renaming
it would have produced (``endings`` -> ``choices``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .tasks import TASKS

#: lm-eval task name for each of the study's tasks (MMLU: one task per subject)
LM_EVAL_NAMES = {"arc_easy": "arc_easy", "arc_challenge": "arc_challenge", "hellaswag": "hellaswag",
                 "piqa": "piqa", "boolq": "boolq", "truthfulqa_mc1": "truthfulqa_mc1",
                 "truthfulqa_mc2": "truthfulqa_mc2", "truthfulqa_gen": "truthfulqa_gen",
                 "mmlu": "mmlu_{subject}", "mmlu_5shot": "mmlu_{subject}", "lambada_openai": "lambada_openai",
                 "sciq": "sciq", "winogrande": "winogrande", "openbookqa": "openbookqa"}


@dataclass
class ItemOutput:
    """lm-eval's outputs for one item: per-choice log-likelihoods and metrics, or a generation."""

    lls: list[float] | None
    metrics: dict
    completion: str | None = None


def _write_jsonl(path: Path, rows: Sequence[Mapping]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


def _hellaswag_docs(dataset):
    return dataset.map(lambda d: {"choices": d["endings"], "gold": int(d["label"])})


def task_configs(items: Mapping[str, tuple[Sequence[int], Sequence[dict], Sequence[Sequence[dict]]]],
                 workdir: Path) -> tuple[list[dict], dict[str, tuple[str, list[int]]]]:
    """lm-eval task configs reading ``items`` (task -> (indices, docs, few-shot docs)) from local files.

    Returns the configs and, for each lm-eval task, (study task, dataset indices in file order).
    """
    from lm_eval.tasks import TaskManager

    tm = TaskManager()
    configs: list[dict] = []
    where: dict[str, tuple[str, list[int]]] = {}

    def add(study_task: str, lm_name: str, suffix: str, rows: list[dict], idx: list[int],
            shots: list[dict] | None, num_fewshot: int) -> None:
        cfg = tm._factory._load_full_config(tm.task_index[lm_name])  # lm-eval's resolved YAML
        for key in ("tag", "group", "task_list"):
            cfg.pop(key, None)
        split = cfg.get("test_split") or cfg["validation_split"]
        name = lm_name + suffix
        files = {split: str(_write_jsonl(workdir / name / f"{split}.jsonl", rows))}
        if cfg.get("fewshot_split"):  # lm-eval loads it even at 0-shot, where it is never sampled
            files[cfg["fewshot_split"]] = str(_write_jsonl(workdir / name / "fewshot.jsonl", shots or rows))
        cfg |= {"task": name, "dataset_path": "json", "dataset_name": None,
                "dataset_kwargs": {"data_files": files}, "training_split": None, "num_fewshot": num_fewshot}
        if cfg.get("test_split"):
            cfg["validation_split"] = None
        if study_task == "hellaswag":
            cfg["process_docs"] = _hellaswag_docs
        configs.append(cfg)
        where[name] = (study_task, idx)

    for study_task, (indices, docs, shots) in items.items():
        task = TASKS[study_task]
        lm_name = LM_EVAL_NAMES[study_task]
        if study_task == "boolq":
            docs = [{**d, "label": int(d["answer"])} for d in docs]
        if "{subject}" in lm_name:  # one lm-eval task per subject, its dev split for the shots
            by_subject: dict[str, list[int]] = {}
            for k, d in enumerate(docs):
                by_subject.setdefault(d["subject"], []).append(k)
            n_shot = task.fewshot.n if task.fewshot else 0
            for subject, ks in sorted(by_subject.items()):
                fs = shots[ks[0]] if n_shot else None
                add(study_task, lm_name.format(subject=subject), "_5shot" if n_shot else "",
                    [docs[k] for k in ks], [indices[k] for k in ks], fs, n_shot)
        else:
            add(study_task, lm_name, "", list(docs), list(indices), None, 0)
    return configs, where


def run(pretrained: str | Path, items: Mapping, workdir: Path, *, batch_size: int = 1,
        max_gen_toks: int = 64, dtype: str = "float32") -> dict[str, dict[int, ItemOutput]]:
    """lm-eval's Hugging Face backend on ``items``; returns study task -> dataset index -> outputs."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    configs, where = task_configs(items, Path(workdir))
    lm = HFLM(pretrained=str(pretrained), dtype=dtype, device="cpu", batch_size=batch_size,
              max_length=8192)
    res = simple_evaluate(model=lm, tasks=configs, log_samples=True, bootstrap_iters=0,
                          gen_kwargs={"max_gen_toks": max_gen_toks}, random_seed=0, numpy_random_seed=0,
                          torch_random_seed=0, fewshot_random_seed=0)
    out: dict[str, dict[int, ItemOutput]] = {}
    for name, samples in res["samples"].items():
        study_task, indices = where[name]
        for s in samples:
            metrics = {k: s[k] for k in s.get("metrics", []) if k in s}
            if TASKS[study_task].generative:
                io = ItemOutput(None, metrics, s["resps"][0][0])
            elif TASKS[study_task].loglikelihood:  # one (ll, is_greedy) response
                io = ItemOutput([float(s["resps"][0][0][0])], metrics)
            else:
                io = ItemOutput([float(r[0][0]) for r in s["resps"]], metrics)
            out.setdefault(study_task, {})[indices[s["doc_id"]]] = io
    return out
