"""The architecture is enforced: layers, complexity, types, lint and self-contained comments.

Each check runs the real tool on the real tree, so a change that breaks a rule fails here.
"""

from __future__ import annotations

import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pdtui

ROOT = Path(__file__).resolve().parent.parent
FRONTS = ("pdtui.tui", "pdtui.cli", "pdtui.sim")
# Rich is checked statically (import contracts) only: httpx imports it for its own command line
# when it is installed (httpx/__init__.py tries ``from ._main import main``).
FORBIDDEN_IN_CORE = ("textual", *FRONTS)


def _modules(prefix_ok: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
    names = ["pdtui"]
    for info in pkgutil.walk_packages(pdtui.__path__, "pdtui."):
        name = info.name
        if name.endswith("__main__"):
            continue
        if exclude and name.startswith(exclude):
            continue
        if prefix_ok and not name.startswith(prefix_ok):
            continue
        names.append(name)
    return names


def _loaded_after_importing(modules: list[str]) -> set[str]:
    """Import ``modules`` in a fresh interpreter and return every module name it then holds."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return set(json.loads(out))


def _hits(loaded: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden))


@pytest.mark.slow
def test_core_modules_load_no_front_no_simulator_and_no_textual() -> None:
    core = _modules(exclude=FRONTS)
    assert "pdtui.cluster" in core and "pdtui.ssh" in core and len(core) > 20
    hits = _hits(_loaded_after_importing(core), FORBIDDEN_IN_CORE)
    assert hits == [], f"the core loaded {hits}"


@pytest.mark.slow
def test_app_modules_never_load_the_simulator() -> None:
    app = _modules(prefix_ok=("pdtui.tui",))
    hits = _hits(_loaded_after_importing(app), ("pdtui.sim",))
    assert hits == [], f"the app loaded {hits}"


@pytest.mark.slow
def test_fake_proxy_is_standalone() -> None:
    """The fake proxy mirrors vllm-ascend's example script and runs without pdtui installed."""
    path = str(ROOT / "pdtui/sim/proxy.py")
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('proxy', {path!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['proxy'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "print(json.dumps([m for m in sys.modules if m == 'pdtui' or m.startswith('pdtui.')]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout
    assert json.loads(out) == []


def test_import_contracts_hold_for_every_import_statement() -> None:
    """import-linter reads every import statement, including those inside functions."""
    r = subprocess.run(
        [sys.executable, "-m", "importlinter.cli", "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if "No module named" in r.stderr:
        r = subprocess.run(["lint-imports", "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_no_function_is_more_complex_than_25() -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "C901",
            "--output-format",
            "concise",
            "pdtui",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout[-3000:]


def test_ruff_is_clean() -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--output-format",
            "concise",
            "pdtui",
            "tests",
            "benchmarks",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout[-3000:]


def test_ruff_format_is_applied() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "pdtui", "tests", "benchmarks"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout[-3000:]


@pytest.mark.slow
def test_mypy_strict_over_the_package_and_the_tests() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "pdtui", "tests"], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stdout[-4000:]


_OUTSIDE_DOC = re.compile(r"reference(?:/|\.md| §| section)|shared/|design\.md|§")


def test_comments_cite_nothing_outside_the_repository() -> None:
    offenders = []
    for path in sorted((ROOT / "pdtui").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _OUTSIDE_DOC.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
