"""CANN plog records, names and where a process's plogs are found (real files, real find)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from pdtui.launch.logs.plog import is_plog_name, list_command, parse, plog_dir

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "real"


def test_records_of_real_plogs_parse_with_module_pid_time_and_message() -> None:
    line = (REAL / "plog-port16666-listen-fail-4725.log").read_text().splitlines()[2]
    rec = parse(line)
    assert rec is not None
    assert (rec.level, rec.module, rec.pid, rec.when, rec.where) == (
        "ERROR",
        "HCCL",
        60570,
        "2025-12-04-14:46:07.911.312",
        "hccl_socket.cc:106",
    )
    assert rec.message.startswith("[HcclSocket][Listen] socket type[0], listen on ip[")
    pasted = (REAL / "plog-ranktable-devid-mismatch-2618.log").read_text().splitlines()[2]
    rec = parse(pasted)  # ms after ':' and no space before [tid], as pasted in the issue
    assert rec is not None and rec.message.startswith("[Parse][ClusterInfo]ranktable config")
    assert parse("INFO 09-08 02:54:59 [api_server.py:1] Starting vLLM API server") is None


def test_names_and_the_folder_follow_cann_and_the_cluster_file() -> None:
    assert is_plog_name("plog-60570-1733294767.log") and is_plog_name("device-3_17.log")
    assert not is_plog_name("out.log")
    assert plog_dir("/run/c/p", {}) == "/run/c/p"
    assert plog_dir("/run/c/p", {"ASCEND_PROCESS_LOG_PATH": "/logs"}) == "/logs"


def test_only_this_runs_files_are_listed(tmp_path: Path) -> None:
    plogs = tmp_path / "debug" / "plog"
    plogs.mkdir(parents=True)
    old = plogs / "plog-1-100.log"
    old.write_text("old run\n")
    os.utime(old, (time.time() - 100, time.time() - 100))
    run_id = tmp_path / "run_id"
    run_id.write_text("x\n")
    os.utime(run_id, (time.time() - 50, time.time() - 50))
    new = plogs / "plog-2-200.log"
    new.write_text("this run\n")
    device = tmp_path / "debug" / "device-0"
    device.mkdir()
    (device / "device-2_200.log").write_text("device side\n")
    out = subprocess.run(
        ["sh", "-c", list_command(str(tmp_path), str(run_id))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(device / "device-2_200.log"), str(new)]
