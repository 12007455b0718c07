"""Which of the library's files each DVC stage runs: the code fingerprints that stand in for per-file deps.

A stage must rerun when, and only when, code it executes changes. Listing every module of a stage's import
closure as a DVC dep did that, but made ``dvc.lock`` 600 kB (≈150 stages × ≈30 files), and DVC parses and
rewrites the whole lock file around every stage it runs: ≈10 s per stage, a sixth of the study's wall time,
and 16 s for an unchanged ``dvc status``. Instead the ``code`` stage writes, per notebook (or ``python -m``
module), one small text file listing ``sha256  path`` for exactly the files that stage executes or reads;
each stage depends on its file. Editing a module rewrites only the fingerprints of the stages that import it,
so only those rerun; the closure is computed from the source (``ast``), nothing is imported.

What is hashed is what runs, not how it reads: a module's syntax tree with its docstrings removed (comments
never reach it), and a YAML data file's parsed content. So a new docstring or comment stales nothing, and a
changed function body stales exactly the stages whose closure holds it. Every fingerprint also carries the
toolchain (:func:`toolchain`): the pinned versions of the packages that compute numbers and the llama.cpp
revision and build flags, so upgrading torch or llama-cpp-python reruns the study.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path

import yaml

from .io import sha256_file

#: non-Python files a module reads at import or run time; its stages depend on them too
DATA_FILES = {
    "edgellm.eval.tasks": ["src/edgellm/eval/tasks.yaml"],
    "edgellm.devices.bundle": ["src/edgellm/devices/run.sh.in"],
    "edgellm.devices.fleet": ["src/edgellm/devices/profiles"],
    # the params stage validates task and device names against these
    "edgellm.stages.params": ["src/edgellm/eval/tasks.yaml", "src/edgellm/devices/profiles"],
}

#: stages run as ``python -m <module>`` rather than through a notebook
MODULE_STAGES = ("edgellm.stages.params", "edgellm.stages.block_kl", "edgellm.report.paper")
#: what every notebook stage runs: papermill and the executed notebook's committed copy
NOTEBOOK_RUNNER = "edgellm.stages.notebook"

class Package:
    """The modules of the ``edgellm`` package under ``root/src`` and the edgellm imports between them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        src = self.root / "src"
        self.modules = {self._name(p, src): p for p in sorted((src / "edgellm").rglob("*.py"))}

    @staticmethod
    def _name(path: Path, src: Path) -> str:
        rel = path.relative_to(src).with_suffix("")
        return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)

    def _resolve(self, mod: str, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        pkg = mod.split(".") if self.modules[mod].name == "__init__.py" else mod.split(".")[:-1]
        return ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))

    def imports(self, mod: str) -> set[str]:
        """The edgellm modules ``mod`` imports, anywhere in its source."""
        out = set()
        for node in ast.walk(ast.parse(self.modules[mod].read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name in self.modules}
            elif isinstance(node, ast.ImportFrom):
                target = self._resolve(mod, node)
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    out.add(sub if sub in self.modules else target)
        return {m for m in out if m in self.modules and m != mod}

    def closure(self, mods: set[str]) -> set[str]:
        """Every module that importing ``mods`` executes (each parent package's ``__init__`` included)."""
        seen: set[str] = set()
        todo = sorted(mods)
        while todo:
            parts = todo.pop().split(".")
            for i in range(1, len(parts) + 1):
                p = ".".join(parts[:i])
                if p in self.modules and p not in seen:
                    seen.add(p)
                    todo += sorted(self.imports(p))
        return seen

    def files(self, mods: set[str]) -> list[str]:
        """The repository-relative files (modules and the data files they read) that running ``mods`` uses."""
        closure = self.closure(mods)
        paths = {str(self.modules[m].relative_to(self.root)) for m in closure}
        paths |= {f for m in closure for f in DATA_FILES.get(m, [])}
        return sorted(paths)


def notebook_modules(notebook: Path, modules: dict[str, Path]) -> set[str]:
    """The edgellm modules (of ``modules``) that a notebook's code cells import."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    out = set()
    for cell in (c for c in cells if c["cell_type"] == "code"):
        src = "\n".join(line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                out |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                        for a in node.names}
    return {m for m in out if m in modules}


#: the packages whose code computes the study's numbers: a new pinned version reruns every stage
TOOLCHAIN_PACKAGES = ("llama-cpp-python", "torch", "transformers", "accelerate", "gguf", "numpy", "lm-eval",
                      "sentence-transformers", "rouge-score", "sacrebleu", "scipy", "statsmodels", "pandas")
#: the Makefile's lines that decide what llama.cpp computes: its revision (the llama-cpp-python sdist it is
#: vendored in), the instruction-set flags and the CMake options of the host and aarch64 builds
_BUILD_LINE = re.compile(r"^(LLAMA_CPP_PYTHON|NATIVE_FLAGS|ARM_ARCH|ARM_ARCH_BASE) :=|-DGGML_|-DCMAKE_BUILD_TYPE")


def _normalized_python(text: str) -> str:
    """The module's syntax tree without docstrings: equal for two sources that differ in comments, docstrings
    or layout only."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=True, include_attributes=False)


def content_hash(path: Path) -> str:
    """sha256 of what a file means to the code: a Python module's normalized tree, a YAML file's parsed
    content, any other file's bytes."""
    path = Path(path)
    if path.suffix == ".py":
        data = _normalized_python(path.read_text()).encode()
    elif path.suffix in (".yaml", ".yml"):
        data = json.dumps(yaml.safe_load(path.read_text()), sort_keys=True, default=str).encode()
    else:
        return sha256_file(path)
    return hashlib.sha256(data).hexdigest()


def toolchain(root: Path) -> list[str]:
    """``package==version`` of :data:`TOOLCHAIN_PACKAGES` as ``requirements.lock`` pins them, and the
    Makefile's llama.cpp revision and build-flag lines (whitespace-normalized), in file order."""
    root = Path(root)
    wanted = {p.replace("_", "-").lower() for p in TOOLCHAIN_PACKAGES}
    pins = []
    for line in (root / "requirements.lock").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep and name.replace("_", "-").lower() in wanted:
            pins.append(f"{name.replace('_', '-').lower()}=={version.strip()}")
    missing = sorted(wanted - {p.split("==")[0] for p in pins})
    if missing:
        raise ValueError(f"{root / 'requirements.lock'}: no pinned version of {missing}")
    build = [" ".join(line.split()) for line in (root / "Makefile").read_text().splitlines()
             if _BUILD_LINE.search(line)]
    return sorted(pins) + build


def _digest(path: Path) -> list[tuple[str, Path]]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [(content_hash(p), p) for p in files if "__pycache__" not in p.parts]


def fingerprint(root: Path, files: list[str], tools: list[str] | None = None) -> str:
    """The toolchain lines, then ``sha256  path`` per file (directories expanded), sorted by path: the bytes
    change exactly when the toolchain or what a file means does."""
    root = Path(root)
    tools = toolchain(root) if tools is None else tools
    rows = [f"{h}  {p.relative_to(root).as_posix()}" for f in files for h, p in _digest(root / f)]
    return "".join(f"toolchain  {t}\n" for t in tools) + "\n".join(sorted(rows, key=lambda r: r[66:])) + "\n"


def stage_code(root: Path) -> dict[str, list[str]]:
    """Fingerprint name -> the files it covers: one per notebook under ``notebooks/``, one per module stage."""
    root = Path(root)
    pkg = Package(root)
    notebooks = sorted((root / "notebooks").glob("*.ipynb"))
    out = {nb.stem: pkg.files(notebook_modules(nb, pkg.modules) | {NOTEBOOK_RUNNER}) for nb in notebooks}
    out |= {m: pkg.files({m}) for m in MODULE_STAGES}
    return out
