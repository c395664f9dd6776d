"""Key-to-screen latency of the app under log load: the Launch view following logs that grow
by 10,000 lines/s each, keys sent every 50 ms.

The real app runs in a 160x45 pseudo-terminal on the simulated 1P1D (``pdtui sim up``, real
SSH). Two processes (the prefill and the decode instance) each get an ``out.log`` that a
writer here appends 10,000 lines/s to; the Launch view (F5) follows the selected one live over
SSH. Keys alternate down/up every 50 ms, which moves the selection between the two and so
switches the followed log (the old tail is closed, a new one opened); the time from writing a
key to the arrival of that key's own change (the log pane's new title, ``NAME on NODE``) is
one sample. Keys are measured twice in the same run: first with the logs idle (the baseline
on this machine at this load), then with the writers on. Prints p50/p95/p99 of each with the
load average and the app's CPU use (CPU seconds per second while the keys ran: the work done,
which the machine's load changes far less), and the app's peak RSS (VmHWM). Targets: p95 < 50
ms under load, peak < 300 MB; printed, not asserted.

    python benchmarks/key_latency.py [--keys 200] [--rate 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from check_sweep import simulator
from startup import _quit, _read_until, pdtui_argv

KEYS = {"down": b"\x1b[B", "up": b"\x1b[A"}
LINE = (
    "(EngineCore_DP0 pid=4242) INFO 06-11 12:33:59 [core.py:90] writer {n}: decode step "
    "took 12.3 ms, Running: 3 reqs, Waiting: 0 reqs, KV cache usage: 40.0%\n"
)


def log_writer(path: Path, rate: int, stop: threading.Event) -> threading.Thread:
    """Appends ``rate`` lines/s to ``path`` (in 100 batches a second) until ``stop``."""

    def run() -> None:
        n = 0
        batch = max(1, rate // 100)
        with path.open("a", buffering=1 << 20) as f:
            next_at = time.monotonic()
            while not stop.is_set():
                f.write("".join(LINE.format(n=n + i) for i in range(batch)))
                f.flush()
                n += batch
                next_at += 0.01
                time.sleep(max(0.0, next_at - time.monotonic()))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def plant(cluster_file: Path) -> list[tuple[str, str, Path]]:
    """Run folders for the first two processes with an ``out.log``: (name, node, log path)."""
    from pdtui.cluster import load
    from pdtui.launch.control import launchables
    from pdtui.launch.run import run_dir

    cluster = load(cluster_file)
    out = []
    for item in launchables(cluster)[:2]:
        d = Path(run_dir(cluster.node(item.node), cluster.name, item.name))
        d.mkdir(parents=True, mode=0o700, exist_ok=True)
        d.parent.chmod(0o700)
        (d / "out.log").write_text("")
        out.append((item.name, item.node, d / "out.log"))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def drain(fd: int, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if select.select([fd], [], [], min(left, 0.1))[0]:
            with contextlib.suppress(OSError):
                os.read(fd, 1 << 20)


def key_round(fd: int, key: bytes, needle: bytes, timeout: float = 10.0) -> float | None:
    """Seconds from writing ``key`` to ``needle`` arriving (None: it never came)."""
    t0 = time.perf_counter()
    os.write(fd, key)
    seen = b""
    while needle not in seen[-(len(needle) + (1 << 20)) :]:
        left = t0 + timeout - time.perf_counter()
        if left <= 0:
            return None
        if select.select([fd], [], [], left)[0]:
            try:
                seen += os.read(fd, 1 << 20)
            except OSError:
                return None
    return time.perf_counter() - t0


@contextlib.contextmanager
def app_in_pty(
    cluster: Path, env: dict[str, str], profile: str | None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
    argv = (
        [sys.executable, "-m", "cProfile", "-o", profile, "-m", "pdtui"]
        if profile
        else pdtui_argv()
    )
    proc = subprocess.Popen(
        [*argv, str(cluster)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    try:
        yield proc, master
    finally:
        if proc.poll() is None:
            _quit(proc, master)
        os.close(master)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"


def measure(fd: int, keys: int, needles: tuple[bytes, bytes]) -> tuple[list[float], int]:
    """``keys`` down/up rounds: (milliseconds per key, keys whose change never came)."""
    samples: list[float] = []
    missed = 0
    for i in range(keys):
        key, needle = (KEYS["down"], needles[1]) if i % 2 == 0 else (KEYS["up"], needles[0])
        t = key_round(fd, key, needle)
        if t is None:
            missed += 1
        else:
            samples.append(t * 1000)
        if t is None or t < 0.05:
            drain(fd, 0.05 - (t or 0.05))
    return samples, missed


def measured(
    fd: int,
    pid: int,
    keys: int,
    needles: tuple[bytes, bytes],
) -> tuple[list[float], int, float]:
    """:func:`measure`, and the app's CPU use meanwhile (CPU seconds per second: a number
    the machine's load changes far less than latencies)."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    ms, missed = measure(fd, keys, needles)
    return ms, missed, (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def report(label: str, ms: list[float], missed: int, cpu: float) -> None:
    head = f"{label:>22}: app CPU {cpu:.0%}; {len(ms)} keys ({missed} missed)"
    if not ms:
        print(f"{head}; {load()}")
        return
    print(
        f"{head}  p50 {statistics.median(ms):.1f}  p95 {percentile(ms, 0.95):.1f}  "
        f"p99 {percentile(ms, 0.99):.1f}  max {max(ms):.1f} ms; {load()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=200, help="keys per phase (default 200)")
    ap.add_argument("--rate", type=int, default=10_000, help="log lines/s per log")
    ap.add_argument("--profile", metavar="FILE", help="run the app under cProfile into FILE")
    ns = ap.parse_args()
    stop = threading.Event()
    writers: list[threading.Thread] = []
    print(f"start: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, simulator(2, 0, False, Path(tmp)) as cluster:
        procs = plant(cluster)
        env = {**os.environ, "TERM": "xterm-256color", "PDTUI_CONFIG_DIR": str(Path(tmp) / "c")}
        env.pop("NO_COLOR", None)
        try:
            with app_in_pty(cluster, env, ns.profile) as (proc, fd):
                if not _read_until(fd, b"Runbook", 60):
                    raise SystemExit("the app showed no first frame")
                first, second = (f"{n} on {node}".encode() for n, node, _ in procs)
                os.write(fd, b"\x1b[15~")  # F5: Launch
                if not _read_until(fd, first, 60):
                    raise SystemExit("the Launch view did not follow the first log")
                drain(fd, 3.0)
                # same-run baseline: the same app and machine, the logs idle
                idle = measured(fd, proc.pid, ns.keys, (first, second))
                report("logs idle", *idle)
                writers = [log_writer(path, ns.rate, stop) for _, _, path in procs]
                drain(fd, 3.0)  # the follow is streaming
                busy = measured(fd, proc.pid, ns.keys, (first, second))
                report(f"logs at {ns.rate} lines/s", *busy)
                rss = peak_rss_mb(proc.pid)
        finally:
            stop.set()
            for w in writers:
                w.join(5)
    print("target p95 < 50 ms under load")
    print(f"app peak RSS {rss:.0f} MB (target < 300 MB); {load()}")


if __name__ == "__main__":
    main()
