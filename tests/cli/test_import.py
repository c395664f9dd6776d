"""`pdtui import` through a real subprocess: runbook scripts become a cluster file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_import_reads_the_runbook_scripts_and_warns_about_their_slips(tmp_path: Path) -> None:
    scripts = sorted((ROOT / "tests" / "fixtures" / "scripts").glob("runbook-*.sh"))
    out = tmp_path / "imported.toml"
    r = pdtui("import", *map(str, scripts), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "line 28: '--kv-transfer-config' starts a new command" in r.stdout
    assert "disaggregate_prefill_v1" in r.stdout
    v = pdtui("validate", str(out))
    assert v.returncode == 0 and "prefill prefill-0    on prefill-0    port 8000" in v.stdout


@pytest.mark.slow
def test_only_the_prefill_script_says_the_decode_script_is_missing(tmp_path: Path) -> None:
    script = ROOT / "tests" / "fixtures" / "scripts" / "runbook-prefill.sh"
    out = tmp_path / "imported.toml"
    r = pdtui("import", str(script), "-o", str(out))
    assert r.returncode == 2 and not out.exists()
    assert r.stderr.splitlines()[0] == (
        "no decode script: runbook-prefill.sh starts only prefill instances; add the decode "
        "script too (its --kv-transfer-config has kv_role kv_consumer)"
    )
