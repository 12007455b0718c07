"""The architecture, checked: one-way layers, no cycles, no private names across modules, small modules,
package data that installs, and code fingerprints (the stages' deps) that cover exactly what each stage imports."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgellm.codedeps import DATA_FILES, stage_code

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = SRC / "edgellm"
MAX_LINES = 420  # "about 400"
def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def module_path(name: str) -> Path:
    base = SRC.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    pkg = mod.split(".") if MODULES[mod].name == "__init__.py" else mod.split(".")[:-1]
    base = pkg[: len(pkg) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(mod: str) -> list[tuple[str, str | None, ast.AST]]:
    """(imported module, imported name or None, node) for every edgellm import of ``mod``, anywhere in it."""
    tree = ast.parse(MODULES[mod].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node) for a in node.names if a.name.split(".")[0] == "edgellm"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(mod, node)
            if target.split(".")[0] != "edgellm":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, None, node) if sub in MODULES else (target, a.name, node))
    return out


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}


def closure(mods: set[str]) -> set[str]:
    """Every edgellm module that importing ``mods`` executes (packages' __init__ included)."""
    g = graph()
    seen: set[str] = set()
    todo = list(mods)
    while todo:
        m = todo.pop()
        parts = m.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b, a.b.c
            p = ".".join(parts[:i])
            if p in MODULES and p not in seen:
                seen.add(p)
                todo += sorted(g[p])
    return seen


# --------------------------------------------------------------------------- layers and cycles
def test_layers_contract_holds():
    """import-linter's layers contract (pyproject.toml) on the real package."""
    proc = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_layers_contract_fails_when_a_lower_layer_imports_a_higher_one(tmp_path):
    """The contract can fail: a copy of the package where io imports a stage is rejected."""
    shutil.copytree(PKG, tmp_path / "src" / "edgellm", ignore=shutil.ignore_patterns("__pycache__"))
    io = tmp_path / "src" / "edgellm" / "io.py"
    io.write_text(io.read_text() + "\nfrom .stages import common  # noqa: E402,F401\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    proc = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=tmp_path,
                          capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path / "src"), "PATH": ""})
    assert proc.returncode != 0
    assert "edgellm.io" in proc.stdout and "edgellm.stages" in proc.stdout, proc.stdout


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(g[m]):
            # a package's __init__ importing its own submodules is not a cycle between concerns
            if m == n.rsplit(".", 1)[0] and MODULES[m].name == "__init__.py":
                continue
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n] if n in stack else [m, n])
            elif n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_no_private_name_imported_from_another_module():
    bad = [f"{m}: {t}.{n}" for m in MODULES for t, n, _ in imports(m) if n and n.startswith("_") and t != m]
    bad += [f"{m}: {t}" for m in MODULES for t, n, _ in imports(m) if n is None and t.rsplit(".", 1)[-1].startswith("_")]
    assert not bad, bad


def test_no_edgellm_import_inside_a_function():
    """Imports written inside functions hid the old cycles; every edgellm import is at module level."""
    bad = []
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("edgellm")):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                elif isinstance(node, ast.Import) and any(a.name.startswith("edgellm") for a in node.names):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, bad


def test_modules_are_small():
    long = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


# --------------------------------------------------------------------------- packaging
def test_every_data_file_is_package_data():
    """``pip install .`` must carry every non-Python file the library reads (pyproject's package-data)."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    covered = set()
    for pkg, patterns in data.items():
        base = SRC.joinpath(*pkg.split("."))
        for pat in patterns:
            covered |= {p for p in base.glob(pat) if p.is_file()}
    files = {p for p in PKG.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert files - covered == set(), sorted(str(p.relative_to(ROOT)) for p in files - covered)


# --------------------------------------------------------------------------- dvc.yaml
STAGE_IMPORT = re.compile(r"from edgellm\.stages import (\w+)|from edgellm\.stages\.(\w+) import|"
                          r"python -m (edgellm(?:\.\w+)+)")


def stage_modules(stage: dict) -> set[str]:
    """The edgellm modules a stage's command runs: its notebook's code cells, or a ``python -m`` module."""
    cmd = stage["cmd"]
    code = cmd
    nb = NOTEBOOK_CMD.search(cmd)
    if nb:
        cells = json.loads((ROOT / "notebooks" / f"{nb.group(1)}.ipynb").read_text())["cells"]
        code += "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    mods = set()
    for m in STAGE_IMPORT.finditer(code):
        a, b, c = m.groups()
        mods.add(c if c else f"edgellm.stages.{a or b}")
    code_imports = re.findall(r"^\s*(?:from|import) (edgellm(?:\.\w+)*)", code, re.M)
    mods |= {m for m in code_imports if m in MODULES}
    return mods


#: every notebook stage's command: the runner and the notebook's name
NOTEBOOK_CMD = re.compile(r"python -m edgellm\.stages\.notebook (\w+)")


def dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_key(stage: dict) -> str:
    """The fingerprint a stage's command calls for: its notebook's stem, or its ``python -m`` module."""
    nb = NOTEBOOK_CMD.search(stage["cmd"])
    return nb.group(1) if nb else re.search(r"python -m (edgellm[\w.]+)", stage["cmd"]).group(1)


def needed_files(stage: dict) -> set[str]:
    """This test's own account of the files a stage runs: its import closure and the data files those read."""
    mods = closure(stage_modules(stage))
    return {str(MODULES[m].relative_to(ROOT)) for m in mods} | {f for m in mods for f in DATA_FILES.get(m, [])}


CODE_STAGES = sorted(n for n in dvc_stages() if n != "code")


@pytest.mark.parametrize("name", CODE_STAGES)
def test_stage_depends_on_its_code_fingerprint_and_on_no_source_file(name):
    """Each stage's code reaches DVC through one fingerprint file (src/edgellm/codedeps.py says why)."""
    body = dvc_stages()[name].get("do", dvc_stages()[name])
    deps = [str(d) for d in body.get("deps", [])]
    assert f"results/code/{stage_key(body)}.txt" in deps, f"{name}: no results/code/{stage_key(body)}.txt dep"
    assert not [d for d in deps if d.startswith("src/")], f"{name}: names source files; its fingerprint covers them"


@pytest.mark.parametrize("name", CODE_STAGES)
def test_stage_fingerprint_covers_exactly_the_code_it_runs(name):
    """Exact deps: the code stage's fingerprint of a stage lists every module it imports and every data file
    those read (nothing stale is missed), and nothing else (editing code it does not run leaves it up to date)."""
    body = dvc_stages()[name].get("do", dvc_stages()[name])
    assert stage_modules(body), f"{name}: no edgellm module found in its command"
    assert set(stage_code(ROOT)[stage_key(body)]) == needed_files(body), name


def test_the_code_stage_depends_on_all_the_code_it_fingerprints():
    """The library, the notebooks, and the toolchain's pins and build flags (part of every fingerprint)."""
    deps = {str(d) for d in dvc_stages()["code"]["deps"]}
    assert {"src/edgellm", "notebooks", "requirements.lock", "Makefile"} == deps


def test_each_stage_kind_is_declared_once():
    """One stage per kind, whatever the variant (a base type, a compressed checkpoint, a ladder point), and each
    notebook run by one stage."""
    stages = dvc_stages()
    assert not [n for n in stages if n.endswith(("_compressed", "_ladder"))]
    notebooks = [stage_key(s.get("do", s)) for s in stages.values() if NOTEBOOK_CMD.search(s.get("do", s)["cmd"])]
    assert len(notebooks) == len(set(notebooks)) and set(notebooks) == {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    # the notebook command is the runner's, written the same way everywhere (no papermill or publish by hand)
    assert "papermill" not in (ROOT / "dvc.yaml").read_text().split("stages:", 1)[1]


def print_deps() -> None:  # pragma: no cover - a helper for whoever edits dvc.yaml
    """``python tests/test_architecture.py``: the files each stage runs (what its fingerprint covers)."""
    for name in CODE_STAGES:
        body = dvc_stages()[name].get("do", dvc_stages()[name])
        print(name, *sorted(needed_files(body)), sep="\n  - ")


if __name__ == "__main__":  # pragma: no cover
    print_deps()
