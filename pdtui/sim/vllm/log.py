"""Log lines of the fake vLLM: vLLM's own format, and glog's for the transfer engine."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


class Log:
    """vLLM-style lines: ``(APIServer pid=N) INFO MM-DD HH:MM:SS [file.py:line] msg``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._plog: Path | None = None

    @staticmethod
    def _write(text: str, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        try:
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def line(self, who: str, level: str, where: str, msg: str, err: bool = False) -> None:
        ts = time.strftime("%m-%d %H:%M:%S")
        self._write(f"({who}) {level} {ts} [{where}] {msg}\n", err)

    def raw(self, who: str, text: str, err: bool = False) -> None:
        self._write("".join(f"({who}) {ln}\n" for ln in text.splitlines()), err)

    def glog(self, who: str, level: str, where: str, msg: str) -> None:
        now = time.time()
        stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now))
        self._write(
            f"({who}) {level[0]}{stamp}.{int(now % 1 * 1e6):06d} {self.pid + 11} {where}] {msg}\n"
        )

    def plog(self, module: str, level: str, where: str, msg: str) -> None:
        """A CANN plog record, in ``$ASCEND_PROCESS_LOG_PATH/debug/plog/plog-{pid}-{time}.log``
        as CANN writes it: ``[ERROR] HCCL(pid,python):2025-12-04-14:46:07.911.312
        [hccl_socket.cc:106] [pid]msg``. Nothing is written when the variable is unset (the
        fake writes no file outside the folders it is given)."""
        base = os.environ.get("ASCEND_PROCESS_LOG_PATH")
        if not base:
            return
        now = time.time()
        if self._plog is None:
            folder = Path(base) / "debug" / "plog"
            folder.mkdir(parents=True, exist_ok=True)
            self._plog = folder / f"plog-{self.pid}-{int(now)}.log"
        micro = int(now % 1 * 1e6)
        stamp = time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(now))
        with self._plog.open("a", encoding="utf-8") as f:
            f.write(
                f"[{level}] {module}({self.pid},python):{stamp}.{micro // 1000:03d}."
                f"{micro % 1000:03d} [{where}] [{self.pid}]{msg}\n"
            )
