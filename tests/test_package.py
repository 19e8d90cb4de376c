"""The package as a whole: its layers, imports, old paths, lint, types and docs."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import re
import subprocess
import sys
import warnings

import pytest
from conftest import ROOT
from first_import import first_import_failures

import ald_tune
import ald_tune.integrations
from ald_tune._compat import MOVED

#: The layers in data-flow order; a module may import its own layer and those before it.
LAYERS = [
    "errors",
    "interrupts",
    "_version",
    "_compat",
    "config",
    "data",
    "engine",
    "tracking",
    "sweeps",
    "report",
    "integrations",
    "cli",
    "run",
    "testing",
]
BASE = {"errors", "interrupts", "_version", "_compat"}  # imported by every layer
#: Own-package imports allowed inside functions: the ``ray submit`` file's start-up, and the
#: console command's lazy wrapper (``ald-tune --help`` must not import torch).
LAZY_OK = {"ald_tune.run", "ald_tune.cli"}


def modules() -> list[str]:
    names = ["ald_tune"]
    for info in pkgutil.walk_packages(ald_tune.__path__, "ald_tune."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def source(module: str) -> tuple[str, ast.Module]:
    spec = importlib.util.find_spec(module)
    path = spec.origin
    with open(path, encoding="utf-8") as fh:
        return path, ast.parse(fh.read(), path)


def layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "_compat"
    return LAYERS.index(part)


def own_imports(tree: ast.Module, module: str):
    """(imported ald_tune module, top level?) for every import in the file, outside
    ``if TYPE_CHECKING`` blocks."""
    top = set(id(n) for n in tree.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ald_tune"):
            for alias in node.names:  # `from ald_tune.x import y` may import module x.y
                sub = f"{node.module}.{alias.name}"
                target = (
                    sub
                    if importlib.util.find_spec(node.module) and _is_module(sub)
                    else node.module
                )
                yield target, id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ald_tune"):
                    yield alias.name, id(node) in top


def string_imports(tree: ast.Module) -> set[str]:
    """The own modules a file names in a string to import later: ``"ald_tune.x.y"`` or
    ``"ald_tune.x.y:function"`` (importlib.import_module, the CLI's command table, trainer
    and callback paths)."""
    imported = set()  # the strings passed to importlib.import_module
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
            imported.update(id(a) for a in node.args)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            name, colon, _ = node.value.partition(":")
            named = colon or id(node) in imported
            if named and re.fullmatch(r"ald_tune(\.[a-z_]+)+", name) and _is_module(name):
                found.add(name)
    return found


def test_the_cycle_check_sees_imports_by_name():
    tree = ast.parse(
        'import importlib\nCOMMANDS = {"t": "ald_tune.cli.train:run"}\n'
        'importlib.import_module("ald_tune.cli.compare")\nX = "ald_tune.not_a_module:f"\n'
        'TAG = "ald_tune.engine.model"  # a plain string (a tag key, a docstring) is no import'
    )
    assert string_imports(tree) == {"ald_tune.cli.train", "ald_tune.cli.compare"}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):
        return False


def test_every_module_imports_only_its_own_layer_and_those_below():
    bad = []
    for module in modules():
        if module == "ald_tune":
            continue
        _, tree = source(module)
        for target, _top in own_imports(tree, module):
            if target == "ald_tune" or target.split(".")[1] in BASE:
                continue
            if module.startswith("ald_tune.testing"):
                continue  # test doubles may use every layer
            if target.startswith("ald_tune.testing"):
                bad.append(f"{module} imports the test doubles {target}")
            elif layer(target) > layer(module):
                bad.append(
                    f"{module} (layer {LAYERS[layer(module)]}) imports {target} "
                    f"(layer {LAYERS[layer(target)]})"
                )
    assert not bad, "\n".join(bad)


def test_imports_between_own_modules_sit_at_the_top_and_form_no_cycle():
    graph: dict[str, set[str]] = {}
    inside = []
    for module in modules():
        _, tree = source(module)
        for target, top in own_imports(tree, module):
            if top:
                graph.setdefault(module, set()).add(target)
            elif module not in LAZY_OK:
                inside.append(f"{module} imports {target} inside a function")
    assert not inside, "\n".join(inside)
    # A module's package __init__ runs first when it is imported: count it as an import.
    for module in modules():
        parent = module.rpartition(".")[0]
        if parent.startswith("ald_tune") and parent != module:
            graph.setdefault(module, set()).add(parent)
        # Imports by name (importlib, "module:function" tables) count too: a cycle hidden
        # behind importlib.import_module is still a cycle. The root's lazy-name table and
        # the old-paths hook name every module by design.
        if module not in ("ald_tune", "ald_tune._compat"):
            graph.setdefault(module, set()).update(string_imports(source(module)[1]))
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if t == m or t.startswith(m + "."):
                continue  # a package importing its own submodules
            if seen.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in seen:
                visit(t)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)


def third_party_imports(module: str) -> set[str]:
    """The import statements of third-party packages that a module runs unconditionally
    (those of its body, not inside functions, ``if`` or ``try``), as written; outside the
    standard library and ald_tune."""
    _, tree = source(module)
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            tops = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops = {node.module.split(".")[0]}
        else:
            continue
        if not tops & ({"ald_tune", "__future__"} | set(sys.stdlib_module_names)):
            found.add(ast.unparse(node))
    return found


def imported_anyway(module: str, seen: set[str] | None = None) -> set[str]:
    """The third-party imports ``import module`` runs in any case: those of its own body
    and of every ald_tune module (and parent package) it imports at its top."""
    seen = set() if seen is None else seen
    if module in seen:
        return set()
    seen.add(module)
    _, tree = source(module)
    below = {t for t, top in own_imports(tree, module) if top}
    below.add(module.rpartition(".")[0] or module)
    names = third_party_imports(module)
    for target in below - {module}:
        names |= imported_anyway(target, seen)
    return names


@pytest.mark.integration
def test_each_module_imports_first_in_a_fresh_interpreter():
    """Each module imported first, in a process where no other ald_tune module is loaded
    (:func:`first_import_failures`): no import cycle or missing import that another
    module's import would hide."""
    failures = first_import_failures({m: imported_anyway(m) for m in modules()}, ROOT)
    assert set(failures) <= set(modules()), failures
    assert not failures, "\n".join(f"{m}: {e}" for m, e in failures.items())


@pytest.mark.integration
def test_the_first_import_check_sees_cycles_missing_names_and_imports_by_others(tmp_path):
    """The same check on a package made to fail: a cycle that breaks only when its second
    module is imported first, a name its module never imported, a submodule it uses that
    only another module imports, and a process that ends without reporting; the sound
    modules pass, whatever was preloaded."""
    pkg = tmp_path / "brokenpkg"
    pkg.mkdir()
    files = {
        "__init__.py": "",
        "a.py": "import numpy\nfrom brokenpkg.b import B\nA = 1\n",
        "b.py": "import brokenpkg.a\nB = 2\n",  # b first: a asks b for B before b has it
        "c.py": "import numpy\nX = numpy.zeros(1)\n",
        "d.py": "X = numpy.zeros(1)\n",  # numpy is preloaded, but d never imported it
        "e.py": "import brokenpkg.g\nimport brokenpkg.f\n",
        "f.py": "import brokenpkg\nY = brokenpkg.g.G\n",  # e imports g for f; f alone not
        "g.py": "G = 3\n",
        "h.py": "import os\nos._exit(0)\n",  # its process ends without a report
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    numpy = {"import numpy"}
    plan = {"brokenpkg.a": numpy, "brokenpkg.b": numpy, "brokenpkg.c": numpy}
    plan |= {"brokenpkg.d": numpy, "brokenpkg.e": set(), "brokenpkg.f": set(), "brokenpkg.g": set()}
    plan["brokenpkg.h"] = set()
    failures = first_import_failures(plan, str(tmp_path))
    assert set(failures) == {"brokenpkg.b", "brokenpkg.d", "brokenpkg.f", "brokenpkg.h"}, failures
    assert "partially initialized module 'brokenpkg.b'" in failures["brokenpkg.b"]
    assert "NameError: name 'numpy' is not defined" in failures["brokenpkg.d"]
    assert "has no attribute 'g'" in failures["brokenpkg.f"]
    assert "died before reporting" in failures["brokenpkg.h"]


@pytest.mark.integration
def test_import_ald_tune_is_cheap():
    code = (
        "import sys, ald_tune, ald_tune.config, ald_tune.cli.main; "
        "heavy = {'torch', 'ray', 'mlflow', 'optuna', 'matplotlib'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_module_path_still_works_and_warns(old):
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(
        issubclass(w.category, DeprecationWarning) and MOVED[old][0] in str(w.message)
        for w in caught
    ), [str(w.message) for w in caught]
    for target in MOVED[old]:
        public = [n for n in vars(importlib.import_module(target)) if not n.startswith("_")]
        assert all(hasattr(module, n) for n in public), (old, target)


def test_the_public_names_of_ald_tune_resolve():
    for name in ald_tune.__all__:
        assert getattr(ald_tune, name) is not None, name


def test_every_module_is_imported_by_a_test():
    imported = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "tests")):
        for f in files:
            if f.endswith(".py"):
                with open(os.path.join(folder, f), encoding="utf-8") as fh:
                    tree = ast.parse(fh.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.ImportFrom) and node.module:
                        imported.add(node.module)
                        imported.update(f"{node.module}.{a.name}" for a in node.names)
                    elif isinstance(node, ast.Import):
                        imported.update(a.name for a in node.names)
    missing = [m for m in modules() if m not in imported and not m.endswith("__init__")]
    assert not missing, f"modules no test imports: {missing}"


@pytest.mark.integration
def test_lint_and_format_are_clean():
    for cmd in (
        ["check", "ald_tune", "tests", "benchmarks"],
        ["format", "--check", "ald_tune", "tests", "benchmarks"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "ruff", *cmd],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


@pytest.mark.slow
def test_package_type_checks():
    out = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
