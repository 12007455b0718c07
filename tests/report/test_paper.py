"""The paper's generated numbers: macros LaTeX really expands, and undefined ones caught in the log."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

from edgellm.report.latex import tex_escape
from edgellm.report.paper import PaperError, check_log, numbers_tex

pytestmark = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs TeX Live (make sysdeps)")


def _build(tmp_path, body: str) -> subprocess.CompletedProcess:
    df = pd.DataFrame([{"variant": "m-Q4_K_M", "ppl": 25.0102, "file_mb": 105.45, "gen_acc_delta": -0.0645}])
    (tmp_path / "numbers.tex").write_text(numbers_tex({"refPpl": "23.91", "refVariant": tex_escape("m-F16")}, df))
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\input{numbers}\n\\begin{document}\n"
                                      + body + "\n\\end{document}\n")
    return subprocess.run(["pdflatex", "-interaction=nonstopmode", "doc.tex"], cwd=tmp_path, capture_output=True,
                          text=True)


def test_defined_values_expand(tmp_path):
    _build(tmp_path, r"\typeout{VALUES [\refPpl] [\val{m-Q4_K_M}{ppl}] [\val{m-Q4_K_M}{file_mb}]}"
                     r"PPL \refPpl{} of \refVariant; \val{m-Q4_K_M}{ppl} and \val{m-Q4_K_M}{file_mb} MB.")
    assert check_log(tmp_path / "doc.log")["pages"] == 1
    assert "VALUES [23.91] [25.010] [105.5]" in (tmp_path / "doc.log").read_text()


def test_negative_values_print_a_minus_sign_in_text_and_in_math(tmp_path):
    _build(tmp_path, r"\typeout{DELTA [\val{m-Q4_K_M}{gen_acc_delta}]}"
                     r"a change of \val{m-Q4_K_M}{gen_acc_delta} and $\Delta = \val{m-Q4_K_M}{gen_acc_delta}$.")
    assert check_log(tmp_path / "doc.log")["pages"] == 1
    assert r"DELTA [\ensuremath {-0.065}]" in (tmp_path / "doc.log").read_text()


def test_a_range_of_equal_numbers_prints_one_number(tmp_path):
    _build(tmp_path, r"\newcommand{\lo}{80}\newcommand{\hi}{80}\newcommand{\upper}{95}"
                     r"\setbox0\hbox{\range{\lo}{\hi}}\typeout{EQUAL [\the\wd0]}"
                     r"\setbox0\hbox{80}\typeout{ONE [\the\wd0]}"
                     r"\setbox0\hbox{\range{\lo}{\upper}}\typeout{RANGE [\the\wd0]}"
                     r"\setbox0\hbox{80--95}\typeout{TWO [\the\wd0]}")
    log = (tmp_path / "doc.log").read_text()
    width = {k: log.split(f"{k} [")[1].split("]")[0] for k in ("EQUAL", "ONE", "RANGE", "TWO")}
    assert width["EQUAL"] == width["ONE"] and width["RANGE"] == width["TWO"] != width["ONE"]


@pytest.mark.parametrize("body, culprit", [
    (r"\val{m-Q4_K_M}{kld}", "m-Q4_K_M/kld"),          # a metric the pipeline did not produce
    (r"\val{m-Q2_K}{ppl}", "m-Q2_K/ppl"),              # a variant that is not in the study
    (r"\refKld", "Undefined control sequence"),        # a study-level macro that does not exist
    (r"see Table~\ref{tab:nothing}", "tab:nothing"),   # a broken reference
])
def test_undefined_numbers_and_references_fail_the_check(tmp_path, body, culprit):
    _build(tmp_path, body)
    with pytest.raises(PaperError, match=culprit):
        check_log(tmp_path / "doc.log")


def test_macro_names_must_be_letters():
    with pytest.raises(ValueError, match="letters only"):
        numbers_tex({"ppl2": "1"}, pd.DataFrame(columns=["variant"]))


def test_tex_escape():
    assert tex_escape("smollm2-135m-Q4_K_M") == r"smollm2-135m-Q4\_K\_M"
    assert tex_escape("50% & {x}") == r"50\% \& \{x\}"


def test_a_long_name_cannot_hide_an_undefined_value_in_the_wrapped_log(tmp_path):
    """TeX wraps its log at 79 characters; a warning split across lines is still found."""
    long = "m-" + "x" * 70 + "-Q4_K_M"
    _build(tmp_path, rf"\val{{{long}}}{{ppl}}")
    assert f"`{long}/ppl' on page" not in (tmp_path / "doc.log").read_text()  # the log did wrap it
    with pytest.raises(PaperError, match="undefined"):
        check_log(tmp_path / "doc.log")


def test_values_of_variants_the_study_lacks_are_listed_not_raised(tmp_path):
    """Given the study's numbers, a value of a variant the study has none of is foreign (the text names another
    study's variant: it prints ??); a missing value of a variant the study has is still an error."""
    _build(tmp_path, r"\val{m-Q2_K}{ppl} and \val{other-model-F16}{ppl}")
    info = check_log(tmp_path / "doc.log", numbers=tmp_path / "numbers.tex")
    assert info["foreign"] == ["m-Q2_K/ppl", "other-model-F16/ppl"] and info["pages"] == 1
    _build(tmp_path, r"\val{m-Q4_K_M}{kld}")
    with pytest.raises(PaperError, match="m-Q4_K_M/kld"):
        check_log(tmp_path / "doc.log", numbers=tmp_path / "numbers.tex")


def test_the_default_paper_names_only_variants_and_models_of_the_default_study():
    """What is foreign to a smoke study must not be foreign to the default one: every variant and model the
    paper's text quotes a value of has values in the committed numbers."""
    from pathlib import Path

    from edgellm.report.paper import defined_owners

    root = Path(__file__).resolve().parents[2]
    tex = (root / "paper" / "main.tex").read_text()
    quoted = set(re.findall(r"\\(?:val|claim|cfg)\{([^}]+)\}\{", tex))
    quoted |= set(re.findall(r"\\newcommand\{\\[A-Za-z]+\}\[1\]\{\\claim\{([^}]+)\}\{#1\}\}", tex))
    assert quoted and quoted <= defined_owners(root / "paper" / "generated" / "numbers.tex")


#: what may carry a digit in main.tex's text: names (models, GGUF types, devices, instruction sets, datasets, tool
#: tests) and notation (0/1 scores, 1 - alpha, top-1, 2:4 sparsity, 4-bit grids), never a measured number
NAMED = re.compile(r"SmolLM2-135M|Gemma~?3|gemma3-270m|smollm2-135m[\w-]*|Llama-3\.1-8B|Pi~?5|Zero~?2~?W|Cortex-A53|"
                   r"Armv8(?:\.2)?-A|x86|aarch64|FP32|[BF]F?(?:16|32)|I?Q\d(?:\\?_[A-Z0-9]+)*|MC[12]|WikiText-2|"
                   r"\b0/1\b|1-\\alpha|top-1|2:4|\b4-bit|[A-Za-z]+\d+[A-Za-z]*")
#: commands whose arguments are names, keys or quotations, not numbers of this study
NAME_ARGS = re.compile(r"\\(?:ref|label|cite[pt]?|input|includegraphics|permodel|val|claim|gem|cfg|texttt|url|quoted|"
                       r"begin|end|section|paragraph)\*?(?:\[[^\]]*\])?(?:\{[^{}]*\}){1,2}")


def test_no_number_in_the_papers_text_is_typed():
    """Every number of main.tex's text is a macro the report computed (or a \\quoted number of a cited source):
    digits may appear only in names and notation (NAMED) and in the arguments of NAME_ARGS."""
    from pathlib import Path

    tex = (Path(__file__).resolve().parents[2] / "paper" / "main.tex").read_text()
    body = re.sub(r"(?<!\\)%.*", "", tex[tex.index("\\begin{document}"):])
    typed = [line.strip() for line in NAMED.sub(" ", NAME_ARGS.sub(" ", body)).splitlines() if re.search(r"\d", line)]
    assert not typed, typed
