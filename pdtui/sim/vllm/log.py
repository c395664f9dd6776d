"""Log lines of the fake vLLM: vLLM's own format, and glog's for the transfer engine."""

from __future__ import annotations

import sys
import time


class Log:
    """vLLM-style lines: ``(APIServer pid=N) INFO MM-DD HH:MM:SS [file.py:line] msg``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

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
        self._write(f"({who}) {level[0]}{stamp}.{int(now % 1 * 1e6):06d} "
                    f"{self.pid + 11} {where}] {msg}\n")


