"""`pdtui diagnose` through a real subprocess: text and --json reports of saved logs, stdin,
gzip, the size cap, control characters, exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "logs" / "real"


def pdtui(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", "diagnose", *args],
        capture_output=True,
        input=stdin,
        timeout=60,
    )


@pytest.mark.slow
def test_json_is_exactly_the_documented_shape_and_a_fatal_finding_exits_1() -> None:
    r = pdtui(
        str(REAL / "port-in-use-api-restart-7514.log"),
        str(REAL / "plog-port16666-listen-fail-4725.log"),
        str(REAL / "proxy-attempt1-400-14087.log"),
        "--json",
    )
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == ["files"]
    first, plog, proxy = doc["files"]
    assert list(first) == ["path", "kind", "stage", "stages", "findings"]
    assert (first["kind"], first["stage"]) == ("vllm", "started")
    assert first["stages"] == [{"name": "started", "line": 14, "at": "10-10 10:23:00"}]
    f = first["findings"][0]
    assert list(f) == ["id", "severity", "line", "text", "hint"]
    assert (f["id"], f["severity"], f["line"]) == ("port-in-use", "fatal", 11)
    assert f["text"] == "OSError: [Errno 98] Address already in use" and f["hint"]
    assert plog["kind"] == "plog" and plog["stage"] is None and plog["stages"] == []
    assert [x["id"] for x in plog["findings"]] == ["port-16666", "hccl-init"]
    assert proxy["kind"] == "proxy" and proxy["findings"][0]["id"] == "proxy-400"


@pytest.mark.slow
def test_a_clean_start_exits_0_with_its_timeline_capture_and_ranks() -> None:
    r = pdtui(str(REAL / "dp4-aclgraph-moe-2125.log"))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "stage: graphs (graphs captured)" in out
    assert "graphs    line 18     08-13 02:24:44" in out
    assert "    loading   line 3      by 08-13 02:23:37" in out  # before any stamped line
    assert "graph capture: finished line 18 (its start is not in the log)" in out
    assert (
        "4 DP ranks: weights on 2 (DP1, DP3), lines 9-10; kv_cache on DP0 (line 17); "
        "graphs on DP2 (line 18)\n"
    ) in out and "findings: none" in out
    assert "processes:" not in out  # the engine cores are the DP ranks: not said twice
    r = pdtui(str(REAL / "dp-workers-weights-7384.log"))
    assert (
        "    processes: weights on 8 (Worker_DP1_TP0 … Worker_DP1_TP7), lines 3-10"
        in r.stdout.decode()
    )


@pytest.mark.slow
def test_stdin_and_gzip_are_read_and_stats_shown(tmp_path: Path) -> None:
    text = (REAL / "sync-batch-timeout-7846.log").read_bytes()
    gz = tmp_path / "out.log.gz"
    gz.write_bytes(gzip.compress(text))
    by_file = pdtui(str(gz), "--json")
    by_stdin = pdtui("-", "--json", stdin=gzip.compress(text))
    assert by_file.returncode == by_stdin.returncode == 1
    one, two = (json.loads(x.stdout)["files"][0] for x in (by_file, by_stdin))
    assert one["findings"] == two["findings"]
    assert [x["id"] for x in one["findings"]] == ["transfer-timeout", "mooncake-transfer"]
    out = pdtui("-", stdin=text).stdout.decode()
    assert "engine stats (1 line), last:" in out and "waiting 1" in out


def test_control_characters_are_escaped_and_the_cap_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    evil = "ERROR 01-01 00:00:00 [core.py:1] \x1b]0;owned\x07EngineCore failed to start.\n"
    log.write_text(evil + "INFO 01-01 00:00:01 [x.py:1] padding\n" * 40000)
    r = pdtui(str(log), "--max-mb", "0.5")
    assert r.returncode == 1
    out = r.stdout.decode()
    assert "\x1b" not in out and "\\x1b]0;owned\\x07" in out
    assert b"read the first 0.5 MiB of 1.4 MiB on disk" in r.stderr


@pytest.mark.slow
def test_usage_errors_exit_2() -> None:
    assert pdtui().returncode == 2
    r = pdtui("/nonexistent/out.log")
    assert r.returncode == 2 and b"/nonexistent/out.log: cannot read it" in r.stderr
    assert pdtui("-", "-").returncode == 2
    assert pdtui(str(REAL / "v0-npu-blocks-1305.log"), "--max-mb", "0").returncode == 2


# --------------------------------------------------------------- every file of the real corpus

#: Finding ids that are warnings (a start can go on): a file with only these exits 0.
WARNINGS = {"waiting-remote-kv", "engine-waiting", "npu-memory-zero"}
_STAGE_NAMES = {"started", "loading", "weights", "kv_cache", "graphs", "api", "ready"}


def _schema_problems(doc: object) -> list[str]:
    """Where ``doc`` departs from issue 16's --json shape (exact keys, types, enums)."""
    if not isinstance(doc, dict) or list(doc) != ["files"] or not isinstance(doc["files"], list):
        return ['top level: want exactly {"files": [...]}']
    out: list[str] = []
    for i, f in enumerate(doc["files"]):
        if not isinstance(f, dict) or list(f) != ["path", "kind", "stage", "stages", "findings"]:
            out.append(f"files[{i}]: keys {list(f) if isinstance(f, dict) else f!r}")
            continue
        if not isinstance(f["path"], str):
            out.append(f"files[{i}].path: {f['path']!r}")
        if f["kind"] not in ("vllm", "plog", "proxy", "unknown"):
            out.append(f"files[{i}].kind: {f['kind']!r}")
        if f["stage"] is not None and f["stage"] not in _STAGE_NAMES:
            out.append(f"files[{i}].stage: {f['stage']!r}")
        for j, s in enumerate(f["stages"] if isinstance(f["stages"], list) else [None]):
            if (
                not isinstance(s, dict)
                or list(s) != ["name", "line", "at"]
                or s["name"] not in _STAGE_NAMES
                or type(s["line"]) is not int
                or not (s["at"] is None or isinstance(s["at"], str))
            ):
                out.append(f"files[{i}].stages[{j}]: {s!r}")
        for j, x in enumerate(f["findings"] if isinstance(f["findings"], list) else [None]):
            if (
                not isinstance(x, dict)
                or list(x) != ["id", "severity", "line", "text", "hint"]
                or x["severity"] not in ("fatal", "warning")
                or type(x["line"]) is not int
                or not all(isinstance(x[k], str) and x[k] for k in ("id", "text", "hint"))
            ):
                out.append(f"files[{i}].findings[{j}]: {x!r}")
    return out


def test_the_schema_check_catches_departures() -> None:
    good: dict[str, object] = {
        "files": [{"path": "a", "kind": "vllm", "stage": None, "stages": [], "findings": []}]
    }
    assert _schema_problems(good) == []
    bad: dict[str, object] = {
        "files": [
            {
                "path": "a",
                "kind": "text",
                "stage": "graph",
                "stages": [{"name": "graphs", "line": "3", "at": None}],
                "findings": [{"id": "x", "severity": "error", "line": 1, "text": "t", "hint": ""}],
            }
        ]
    }
    assert len(_schema_problems(bad)) == 4
    assert _schema_problems({"files": [], "extra": 1}) != []


def test_every_real_log_exits_as_its_findings_say_and_its_json_fits_the_schema(
    capsys: pytest.CaptureFixture[str],
    summary_line: Callable[[str], None],
) -> None:
    from launch.test_real_logs import EXPECTED

    from pdtui.cli import main

    good: list[str] = []
    for name, (_kind, stage, _order, ids) in sorted(EXPECTED.items()):
        path = str(REAL / f"{name}.log")
        want = 1 if set(ids) - WARNINGS else 0
        rc = main(["diagnose", path, "--json"])
        doc = json.loads(capsys.readouterr().out)
        problems = _schema_problems(doc)
        got = [x["id"] for x in doc["files"][0]["findings"]]
        text_rc = main(["diagnose", path])
        capsys.readouterr()
        if (
            (rc, text_rc) == (want, want)
            and not problems
            and got == ids
            and doc["files"][0]["stage"] == stage
        ):
            good.append(name)
        else:
            print(f"{name}: exit {rc}/{text_rc} (want {want}), ids {got}, {problems}")
    summary_line(
        f"diagnose CLI on the real corpus: {len(good)}/{len(EXPECTED)} files exit as "
        "expected with --json in the documented shape"
    )
    assert len(good) == len(EXPECTED)


def test_a_stage_without_any_time_and_a_generic_finding_say_so_and_what_to_do() -> None:
    r = pdtui(str(REAL / "ascend-negative-kv-memory-9372.log"))
    assert "    weights   line 3      no time in the log" in r.stdout.decode()
    r = pdtui(str(REAL / "v1-enginecore-failed-nokvmem-17431.log"))
    out = r.stdout.decode()
    assert "stage: none (no start-up stage line in this file)\n  findings: 1\n" in out
    assert "read the log above this line (pdtui logs NAME) for the first ERROR" in out
