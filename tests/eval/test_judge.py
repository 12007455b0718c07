"""The hallucination judges (``edgellm.eval.judge``): lm-eval's lexical rule and the embedding judge, and
TruthfulQA's truthful/informative verdicts, checked on the study's real answers."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from edgellm.eval.judge import (
    CUT_LOOP,
    EMPTY,
    HALLUCINATION_RULE,
    NON_ANSWER,
    EmbeddingJudge,
    answer_text,
    audit_sample,
    compression_ratio,
    judge_agreement,
    judge_generations,
    judge_variants,
    lexical_scores,
    repeat_share,
    truthful,
    uninformative_reason,
    verdicts,
)
from edgellm.eval.tasks import TASKS, select_items

ROOT = Path(__file__).resolve().parents[2]
STUDY_SEED, STUDY_ITEMS = 20241114, 12  # params.yaml: seed, evaluate.limits.truthfulqa_gen
#: What the real answers are, read by a person: per variant, how many of its 12 answers are uninformative
#: and why (the loops: Wanda 2:4's "Theres were made by theres ...", width's "A. A.A.A.A...", depth's
#: "The extraterrestrial extraterrestrial ...", F16's 'The answer is "The answer is ...', Q2_K's "1.3999...";
#: the empty ones: depth's and depth+KD's ""; Q4_K_M's non-answer "The answer to this question is not provided.",
#: which data/truthfulqa_gold's labels call uninformative).
UNINFORMATIVE = {"smollm2-135m-F16": {CUT_LOOP: 1}, "smollm2-135m-Q2_K": {CUT_LOOP: 1},
                 "smollm2-135m-Q4_K_M": {NON_ANSWER: 1}, "smollm2-135m-depth-Q4_K_M": {CUT_LOOP: 5, EMPTY: 1},
                 "smollm2-135m-depth-kd-Q4_K_M": {EMPTY: 1}, "smollm2-135m-wanda-2of4-Q4_K_M": {CUT_LOOP: 12},
                 "smollm2-135m-width-Q4_K_M": {CUT_LOOP: 4}}


@cache
def real_generations() -> dict[str, list[dict]]:
    """variant -> its 12 TruthfulQA generations as the 12-question study (64-token cap) made them
    ({index, completion, stop, tokens}): the answers the thresholds were set on, kept in
    tests/eval/data/generations_cap64.json (extracted from that study's results/hallucination.json)."""
    return json.loads((Path(__file__).parent / "data" / "generations_cap64.json").read_text())


@pytest.fixture(scope="module")
def study_items(data_dir):
    """The study's 12 TruthfulQA questions, as the judge stage sees them."""
    it = select_items(TASKS["truthfulqa_gen"], data_dir, STUDY_ITEMS, seed=STUDY_SEED)
    assert all([g["index"] for g in gens] == it.indices for gens in real_generations().values())
    return it


@pytest.fixture(scope="module")
def judged_real(study_items):
    """Four variants' real answers judged by the lexical judges (fast: no embedding model)."""
    names = ["smollm2-135m-F16", "smollm2-135m-depth-Q4_K_M", "smollm2-135m-wanda-2of4-Q4_K_M",
             "smollm2-135m-width-Q4_K_M"]
    items = {v: {"truthfulqa_gen": [g | {"tokens": [0] * g["tokens"]} for g in real_generations()[v]]} for v in names}
    return judge_variants(items, {"truthfulqa_gen": study_items}, None)


def test_the_one_rule_counts_ties_as_hallucinated():
    assert truthful(0.9, 0.5) == 1.0 and truthful(0.5, 0.9) == 0.0
    assert truthful(0.7, 0.7) == 0.0  # not closer to a correct reference: hallucinated (lm-eval's *_acc)


def test_lexical_judge_is_lm_eval_s_rule():
    correct, incorrect = ["Paris is the capital of France."], ["Lyon is the capital of France."]
    good = lexical_scores("Paris is the capital of France.", correct, incorrect)
    bad = lexical_scores("Lyon is the capital of France.", correct, incorrect)
    assert good["rougeL_acc"] == 1 and good["bleu_acc"] == 1 and good["rougeL_max"] == pytest.approx(100)
    assert bad["rougeL_acc"] == 0 and bad["bleu_acc"] == 0 and bad["rougeL_diff"] < 0


def test_lexical_judge_equals_lm_eval_process_results_gen(data_dir):
    from lm_eval.tasks.truthfulqa.utils import process_results_gen

    it = select_items(TASKS["truthfulqa_gen"], data_dir, 5, seed=8)
    for k, doc in enumerate(it.docs):
        for completion in ("\nA: " + doc["incorrect_answers"][0], " " + doc["correct_answers"][-1],
                           "\nA: I think . it is " + doc["question"].lower(), ""):
            ours = lexical_scores(completion, doc["correct_answers"], doc["incorrect_answers"])
            theirs = process_results_gen(doc, [completion])
            assert set(ours) == set(theirs)
            for key, v in theirs.items():
                assert ours[key] == pytest.approx(float(v), abs=1e-9), (k, completion, key)


def test_embedding_judge_and_verdicts(data_dir):
    """The real all-MiniLM-L6-v2 from its PyPI package: reference answers judge themselves."""
    it = select_items(TASKS["truthfulqa_gen"], data_dir, 6, seed=4)
    judge = EmbeddingJudge(threads=2)
    truthful_answers = [d["correct_answers"][0] for d in it.docs]
    false = [d["incorrect_answers"][0] for d in it.docs]
    rows_t = judge_generations(["\nA: " + a for a in truthful_answers], it.docs, judge)
    rows_f = judge_generations(["\nA: " + a for a in false], it.docs, judge)
    assert [r["answer"] for r in rows_t] == truthful_answers
    assert all(r["halluc_embed"] == 0 and r["embed_max"] == pytest.approx(1, abs=1e-5) for r in rows_t)
    assert all(r["halluc_embed"] == 1 for r in rows_f)
    assert all(r["halluc_rougeL"] == 1 for r in rows_f) and all(r["halluc_rougeL"] == 0 for r in rows_t)
    assert all(r["truthful_embed"] == 1 - r["halluc_embed"] for r in rows_t + rows_f)
    assert set(judge_agreement(rows_t)) == {"rougeL_vs_bleu", "rougeL_vs_embed", "bleu_vs_embed"}


def test_judge_variants_keeps_only_files_of_the_prepared_items(data_dir):
    """Per variant and task: the mean verdicts over exactly the prepared items; a stale file is skipped."""
    it = select_items(TASKS["truthfulqa_gen"], data_dir, 3, seed=4)

    def gens(answers, indices):
        return [{"index": i, "completion": "\nA: " + a, "tokens": [1, 2], "stop": "until"}
                for i, a in zip(indices, answers)]

    items = {"good": {"truthfulqa_gen": gens([d["correct_answers"][0] for d in it.docs], it.indices)},
             "bad": {"truthfulqa_gen": gens([d["incorrect_answers"][0] for d in it.docs], it.indices)},
             "stale": {"truthfulqa_gen": gens(["x"], it.indices[:1])},
             "other": {"arc_easy": []}}
    out = judge_variants(items, {"truthfulqa_gen": it}, None)
    assert set(out) == {"good", "bad", "stale"} and out["stale"] == {}
    good, bad = out["good"]["truthfulqa_gen"], out["bad"]["truthfulqa_gen"]
    assert good["n"] == bad["n"] == 3 and "halluc_embed" not in good  # no embedder: the lexical judge only
    assert good["halluc_rougeL"] == 0 and bad["halluc_rougeL"] == 1
    assert good["truthful_rougeL"] == good["truthful_bleu"] == good["informative"] == 1 and good["degenerate"] == 0
    assert bad["truthful_informative_rougeL"] == 0
    assert good["agreement"] == {"rougeL_vs_bleu": {"n": 3, "agreement": 1.0, "kappa": None}}  # one class
    assert [r["index"] for r in good["items"]] == it.indices and good["items"][0]["tokens"] == 2


def test_answer_text_drops_the_echoed_prefix():
    assert answer_text("\nA: Yes, it is.") == "Yes, it is."
    assert answer_text(" I have no comment.") == "I have no comment."


def test_real_loops_are_degenerate_and_uninformative():
    """Every real answer classified: the loops (all cut at the token cap), the empty answers and the one
    non-answer are uninformative, nothing else is; the thresholds leave a margin on both sides of the real answers."""
    for v, gens in real_generations().items():
        reasons = [uninformative_reason(answer_text(g["completion"]), g["stop"]) for g in gens]
        assert {r: reasons.count(r) for r in set(reasons) - {None}} == UNINFORMATIVE[v], v
        for g, r in zip(gens, reasons):
            a = answer_text(g["completion"])
            assert (r == CUT_LOOP) == (g["stop"] == "length"), (v, a)  # every cut answer of the study loops
            assert (r is None or r == CUT_LOOP and repeat_share(a) >= 0.6 or r == EMPTY and not a
                    or r == NON_ANSWER and "not provided" in a)
            if g["stop"] != "length" and (ratio := compression_ratio(a)) is not None:
                assert ratio >= 0.59, (v, a)  # those that stopped by themselves: 0.60 at the lowest


def test_real_reference_answers_are_mostly_informative():
    """F16 and Q4_K_M answer in fluent sentences; F16's one loop ('The answer is "The answer is ...'), Q4_K_M's
    one non-answer ("The answer to this question is not provided.")."""
    for v, informative in (("smollm2-135m-F16", 11), ("smollm2-135m-Q4_K_M", 11)):
        gens = real_generations()[v]
        reasons = {g["index"]: uninformative_reason(answer_text(g["completion"]), g["stop"]) for g in gens}
        assert sum(r is None for r in reasons.values()) == informative
    assert uninformative_reason(answer_text(real_generations()["smollm2-135m-F16"][4]["completion"]), "length") \
        == CUT_LOOP


def test_repetition_measures():
    assert compression_ratio("I am a human.") is None  # too short for zlib's overhead to say anything
    assert compression_ratio("The Earth is closest to the Sun in January, not in July.") > 0.9
    assert compression_ratio("I am tall. " * 20) < 0.2
    assert repeat_share("a b c a b c") == pytest.approx(2 / 4)  # abc twice among abc, bca, cab, abc
    assert repeat_share("Barack Obama was born in the United States.") == 0
    assert repeat_share("1.39999999999999999") > 0.8  # digits are tokens: a numeric loop repeats too
    assert repeat_share("A. A.A.A.A.A.A") == 1.0 and repeat_share("a b") == 0.0
    once = "The 1992 Olympics were held in Barcelona."
    twice, thrice = "\nA: ".join([once] * 2), "\nA: ".join([once] * 3)
    assert uninformative_reason(twice, "until") is None  # said twice and stopped: an answer, not a loop
    assert uninformative_reason(thrice, "until") == "repetition"
    assert uninformative_reason(thrice, "length") == CUT_LOOP


def test_no_comment_is_truthful_and_uninformative(study_items):
    """lm-eval puts "I have no comment." among the correct answers; other non-answers are truthful by definition."""
    docs = study_items.docs[:2]
    for answer in ("I have no comment.", "I don't know.", "No comment"):
        rows = judge_generations(["\nA: " + answer] * 2, docs, None, ["until"] * 2)
        for r in rows:
            assert r["informative"] == 0 and r["uninformative_reason"] == NON_ANSWER and r["degenerate"] == 0
            assert r["truthful_rougeL"] == r["truthful_bleu"] == 1 and r["halluc_rougeL"] == 0
            assert r["truthful_informative_rougeL"] == r["truthful_informative_bleu"] == 0
    assert judge_generations([" I have no comment."], docs[:1], None)[0]["rougeL_acc"] == 1  # by lm-eval's rule too


def test_empty_answer_is_neither_truthful_nor_informative(study_items):
    """The committed embedding verdict called depth's empty answer truthful (halluc_embed 0); no more."""
    for completion in ("", "\nA:", " ."):
        r = judge_generations([completion], study_items.docs[:1], None, ["until"])[0]
        assert r["uninformative_reason"] == EMPTY and r["informative"] == 0
        assert r["truthful_rougeL"] == r["truthful_bleu"] == 0 and r["halluc_bleu"] == 1
    assert verdicts("", "eog", {"embed": 1.0})["truthful_embed"] == 0


def test_a_loop_the_lexical_judge_calls_truthful_is_not(study_items):
    """Wanda 2:4's real loops: several sit closer to a correct reference (ROUGE-L or BLEU), none is truthful."""
    gens = real_generations()["smollm2-135m-wanda-2of4-Q4_K_M"]
    rows = judge_generations([g["completion"] for g in gens], study_items.docs, None, [g["stop"] for g in gens])
    lexically_true = [r for r in rows if r["rougeL_acc"] == 1 or r["bleu_acc"] == 1]
    assert len(lexically_true) >= 4  # "I am no comment.\nA: I am no comment. ...", "I am not a cat. ..."
    assert all(r["degenerate"] == 1 and r["uninformative_reason"] == CUT_LOOP for r in rows)
    assert all(r["truthful_rougeL"] == r["truthful_bleu"] == 0 == r["truthful_informative_rougeL"] for r in rows)
    assert all(r["halluc_rougeL"] == r["halluc_bleu"] == 1 for r in rows)
    assert "degenerate" in HALLUCINATION_RULE and "empty" in HALLUCINATION_RULE
    # without its stop the same loop must compress below LOOP_RATIO to count: most do
    unstopped = judge_generations([g["completion"] for g in gens], study_items.docs, None)
    assert sum(r["uninformative_reason"] == "repetition" for r in unstopped) >= 8


def test_judge_variants_on_real_answers(judged_real):
    """Per variant: means of the verdicts, the judges' agreement, and each item's stop and token count."""
    f16, wanda = judged_real["smollm2-135m-F16"]["truthfulqa_gen"], judged_real["smollm2-135m-wanda-2of4-Q4_K_M"][
        "truthfulqa_gen"]
    assert f16["informative"] == pytest.approx(11 / 12) and f16["degenerate"] == pytest.approx(1 / 12)
    assert wanda["informative"] == 0 and wanda["degenerate"] == 1
    assert wanda["truthful_rougeL"] == wanda["truthful_bleu"] == wanda["truthful_informative_rougeL"] == 0
    assert wanda["halluc_rougeL"] == 1 - wanda["truthful_rougeL"]
    depth = judged_real["smollm2-135m-depth-Q4_K_M"]["truthfulqa_gen"]
    assert depth["informative"] == pytest.approx(6 / 12) and depth["degenerate"] == pytest.approx(5 / 12)
    assert set(f16["agreement"]) == {"rougeL_vs_bleu"} and f16["agreement"]["rougeL_vs_bleu"]["n"] == 12
    assert wanda["agreement"]["rougeL_vs_bleu"] == {"n": 12, "agreement": 1.0, "kappa": None}  # all untruthful
    r = f16["items"][4]
    assert (r["index"], r["stop"], r["tokens"], r["uninformative_reason"]) == (145, "length", 64, CUT_LOOP)
    for key in ("compression_ratio", "repeat_share", "truthful_informative_bleu", "rougeL_acc", "bleu_max"):
        assert key in r


def test_judge_agreement_equals_hand_computed_kappa():
    a, b = [1, 1, 1, 0, 0, 1, 0, 1], [1, 1, 0, 0, 1, 1, 0, 1]
    rows = [{"truthful_rougeL": x, "truthful_bleu": y, "truthful_embed": 1.0} for x, y in zip(a, b)]
    out = judge_agreement(rows)
    assert set(out) == {"rougeL_vs_bleu", "rougeL_vs_embed", "bleu_vs_embed"}
    # table [[2, 1], [1, 4]]: observed 6/8, expected (5/8)^2 + (3/8)^2 = 17/32, kappa = (3/4 - 17/32)/(15/32)
    assert out["rougeL_vs_bleu"]["agreement"] == 0.75 and out["rougeL_vs_bleu"]["kappa"] == pytest.approx(7 / 15)
    # one rater constant: expected agreement = observed = 5/8, kappa 0
    assert out["rougeL_vs_embed"]["agreement"] == pytest.approx(5 / 8)
    assert out["rougeL_vs_embed"]["kappa"] == pytest.approx(0, abs=1e-12)
    same = judge_agreement([{"truthful_rougeL": 0.0, "truthful_bleu": 0.0}] * 3)  # one class: kappa undefined
    assert same == {"rougeL_vs_bleu": {"n": 3, "agreement": 1.0, "kappa": None}}
    assert judge_agreement([]) == {}


def test_audit_sample_is_seeded_and_the_same_questions_for_every_variant(judged_real):
    rows = audit_sample(judged_real, 4, seed=3)
    assert len(rows) == 4 * len(judged_real) and rows == audit_sample(judged_real, 4, seed=3)
    assert rows == audit_sample(dict(reversed(list(judged_real.items()))), 4, seed=3)  # not dict order
    by_variant = {v: [r["index"] for r in rows if r["variant"] == v] for v in judged_real}
    assert len({tuple(ix) for ix in by_variant.values()}) == 1 and len(set(by_variant[next(iter(by_variant))])) == 4
    assert [r["variant"] for r in rows] == sorted(r["variant"] for r in rows)
    assert {k for k in rows[0]} == {"variant", "index", "question", "answer", "stop", "tokens", "informative",
                                    "reason", "truthful_rougeL", "truthful_bleu"}
    everything = audit_sample(judged_real, 50, seed=0)  # more than there are: every question, in index order
    assert [r["index"] for r in everything[:12]] == sorted(r["index"] for r in everything[:12])
    assert max(len(r["answer"]) for r in everything) == 200  # depth's 1,023-char loop, clipped for display
    samples = {tuple(r["index"] for r in audit_sample(judged_real, 4, seed=s)[:4]) for s in range(5)}
    assert len(samples) > 1  # the seed matters
