"""CANN's own logs (the "plog"): where a process's are, and what a record looks like.

CANN writes application logs under ``$ASCEND_PROCESS_LOG_PATH`` (else ``$ASCEND_WORK_PATH``,
else ``$HOME/ascend/log``): host side ``debug/plog/plog-{pid}-{unixtime}.log``, device side
``debug/device-{N}/device-{pid}-{unixtime}.log``. Some HCCL failures are written only there
(``'device ip' is not set correctly``, port 16666 in use, ``wait socket establish timeout``):
see https://www.hiascend.com/document (CANN "Log Reference") and the reports linked from the
fingerprint table. pdtui's launch points ``ASCEND_PROCESS_LOG_PATH`` at the process's run
folder unless the cluster file sets it, so each process's plogs sit beside its ``out.log``.

A record: ``[ERROR] HCCL(60570,python):2025-12-04-14:46:07.911.312 [hccl_socket.cc:106]
[60570]msg`` (the procname may be empty; pasted copies sometimes have ``:012.780``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENV = "ASCEND_PROCESS_LOG_PATH"

RECORD = re.compile(
    r"^\[(?P<level>ERROR|WARNING|WARN|INFO|DEBUG|EVENT|TRACE)\] (?P<module>[A-Z][A-Z0-9_]*)"
    r"\((?P<pid>\d+),(?P<proc>[^)]*)\):(?P<when>\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d[.:]\d{3}\.\d{3})"
    r" \[(?P<where>[^\]]+)\]\s*(?:\[(?P<tid>\d+)\])?(?P<msg>.*)$"
)

_NAME = re.compile(r"^(?:plog|device)-\d+[-_]\d+\.log(?:\.gz)?$")


@dataclass(frozen=True)
class PlogRecord:
    level: str
    module: str
    pid: int
    when: str
    where: str
    message: str


def parse(line: str) -> PlogRecord | None:
    m = RECORD.match(line.strip())
    if m is None:
        return None
    return PlogRecord(
        m["level"], m["module"], int(m["pid"]), m["when"], m["where"], m["msg"].strip()
    )


def is_plog_name(name: str) -> bool:
    """A CANN log file's name (``plog-123-1700000000.log``, ``device-123_1700000000.log``)."""
    return bool(_NAME.match(name))


def plog_dir(run_dir: str, env: dict[str, str]) -> str:
    """Where a process's CANN logs go: the cluster file's ``ASCEND_PROCESS_LOG_PATH``, else
    its run folder (what pdtui's launch sets)."""
    return env.get(ENV) or run_dir


def list_command(base: str, newer_than: str, limit: int = 20) -> str:
    """Shell: the newest ``limit`` plog and device-log files under ``base`` written since
    ``newer_than`` was (this run's files, not an earlier run's), one path a line."""
    from pdtui.launch.run import shell_path

    b = shell_path(base.rstrip("/") + "/debug")
    return (
        f"find {b} -maxdepth 2 -type f \\( -name 'plog-*.log' -o -name 'device-*.log' \\)"
        f" -newer {shell_path(newer_than)} 2>/dev/null | sort | tail -n {int(limit)}"
    )
