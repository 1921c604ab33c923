"""The layer boundary (ARCHITECTURE.md): ``backend/`` and ``core/`` never import
QtWidgets, QtGui or matplotlib; QtCore only where the design card puts it."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rave_gui"
LAYERS = ("backend", "core")
FORBIDDEN = ("PyQt6.QtWidgets", "PyQt6.QtGui", "matplotlib", "rave_gui.ui")
# QThread/QObject wrappers: the ProcessThread family, AppSignals and the RunController
# (it owns the threads). Everything else below backend/ and core/ (TrainingManager,
# the state machine, parsers, database) is plain Python.
QT_CORE_ALLOWED = {"core/process.py", "core/signals.py", "backend/export.py", "backend/runs.py",
                  "backend/remote_process.py"}


def qt_core_allowed(rel: str) -> bool:
    return rel in QT_CORE_ALLOWED or (rel.startswith("backend/") and rel.endswith("_process.py"))


def imported_modules(source: str, module: str = "rave_gui.x") -> set[str]:
    """Every module a source file imports, in any form: ``import a.b``, ``from a import b``
    (as ``a`` and ``a.b``), relative imports, ``importlib.import_module('a')``, ``__import__('a')``."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.add(node.args[0].value)
    return found


def matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_files() -> list[tuple[str, Path]]:
    files = [(f"{layer}/{p.relative_to(PACKAGE / layer).as_posix()}", p)
             for layer in LAYERS for p in sorted((PACKAGE / layer).rglob("*.py"))]
    assert len(files) >= 10, "the walk found too few files: wrong folder?"
    return files


def module_name(rel: str) -> str:
    return "rave_gui." + rel[:-3].replace("/", ".")


# -- the checker itself must be able to fail ------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ("import PyQt6.QtWidgets", "PyQt6.QtWidgets"),
    ("import PyQt6.QtGui as gui", "PyQt6.QtGui"),
    ("from PyQt6 import QtWidgets", "PyQt6.QtWidgets"),
    ("from PyQt6.QtWidgets import QWidget", "PyQt6.QtWidgets"),
    ("def f():\n    from PyQt6.QtGui import QColor", "PyQt6.QtGui"),
    ("import matplotlib.pyplot as plt", "matplotlib"),
    ("from matplotlib.figure import Figure", "matplotlib"),
    ("import importlib\nimportlib.import_module('matplotlib.pyplot')", "matplotlib"),
    ("__import__('PyQt6.QtWidgets')", "PyQt6.QtWidgets"),
    ("from ..ui.widgets import metrics_plot", "rave_gui.ui"),
    ("if TYPE_CHECKING:\n    from rave_gui.ui.pages import datasets", "rave_gui.ui"),
])
def test_checker_sees_every_import_form(source, expected):
    modules = imported_modules(source, "rave_gui.backend.x")
    assert any(matches(m, expected) for m in modules), modules


def test_checker_does_not_flag_allowed_imports():
    modules = imported_modules("from PyQt6.QtCore import QThread\nimport matplotlibx\nimport json",
                               "rave_gui.core.x")
    assert not [m for m in modules for f in FORBIDDEN if matches(m, f)]


# -- the real code ---------------------------------------------------------------------

def test_backend_and_core_never_import_widgets_gui_or_matplotlib():
    offenders = []
    for rel, path in layer_files():
        for module in imported_modules(path.read_text(encoding="utf-8"), module_name(rel)):
            if any(matches(module, f) for f in FORBIDDEN):
                offenders.append(f"{rel} imports {module}")
    assert offenders == []


def test_qt_core_only_in_the_thread_and_signal_modules():
    offenders = []
    for rel, path in layer_files():
        modules = imported_modules(path.read_text(encoding="utf-8"), module_name(rel))
        if any(matches(m, "PyQt6") for m in modules) and not qt_core_allowed(rel):
            offenders.append(rel)
    assert offenders == [], "plain-Python modules import PyQt6: " + ", ".join(offenders)


def run_imports(modules: list[str]) -> set[str]:
    script = ("import json, sys\n" + "".join(f"import {m}\n" for m in modules)
              + "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_importing_the_backend_loads_no_gui_and_no_torch():
    loaded = run_imports(["rave_gui.backend.training", "rave_gui.backend.datasets",
                          "rave_gui.core.database"])
    assert "rave_gui.backend.training" in loaded  # the import really happened
    heavy = sorted(m for m in loaded
                   if any(matches(m, f) for f in ("PyQt6.QtWidgets", "PyQt6.QtGui", "matplotlib", "torch")))
    assert heavy == []


def test_training_manager_loads_no_pyqt_at_all():
    """TrainingManager, the state machine and run paths are plain Python; importing
    ``TrainingProcess`` from ``training`` stays possible, lazily."""
    loaded = run_imports(["rave_gui.backend.training", "rave_gui.backend.run_state",
                          "rave_gui.backend.run_paths"])
    assert "rave_gui.backend.training" in loaded
    assert sorted(m for m in loaded if matches(m, "PyQt6")) == []
    late = run_imports(["rave_gui.backend.training as t; t.TrainingProcess"])
    assert "rave_gui.backend.training_process" in late and "PyQt6.QtCore" in late


def test_the_ui_handles_no_process():
    """Pages render and call the RunController: none builds, attaches or kills a process."""
    offenders = []
    for path in (PACKAGE / "ui").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("end_group", "kill_group", "TrainingProcess(", "ExportProcess(", "os.kill"):
            if needle in text:
                offenders.append(f"{path.relative_to(PACKAGE)}: {needle}")
    assert offenders == []


def test_parsers_and_database_load_no_qt_at_all():
    loaded = run_imports(["rave_gui.backend.log_parsing", "rave_gui.backend.events",
                          "rave_gui.backend.rave_cli", "rave_gui.backend.datasets",
                          "rave_gui.core.database", "rave_gui.core.paths"])
    assert "rave_gui.backend.log_parsing" in loaded
    assert sorted(m for m in loaded if matches(m, "PyQt6")) == []
