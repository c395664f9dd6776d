"""How long pdtui takes to start: ``--version``, a cold ``pdtui check``, the app's first frame.

Every figure is a fresh process, run several times (minimum and median), beside
``python -c pass`` measured in the same run as the floor no Python program goes below:

* ``pdtui --version`` (the installed entry point, else ``python -m pdtui``);
* ``pdtui check CLUSTER`` on the simulated 1P1D (``pdtui sim up --inproc-probe``, each fake
  tool call taking --latency-ms, the nodes in their own process), with the ratio to the
  runbook's own ``hccn_tool`` loops over ssh (--runbook-seconds, as measured by
  ``benchmarks/check_sweep.py``; --measure-runbook runs them here);
* the app opened on that simulated cluster's file in a real pseudo-terminal: the time until
  the first screen bytes with its mode bar ("Runbook") arrive (the first frame, which says the
  file is being read), and until the cluster's first node is on screen (the file validated
  and the Runbook view drawn); then ctrl+q quits it.

The commands that run to their end (all but the app) also print their CPU time (user +
system), which a loaded machine stretches less than wall time.

Two more floors, measured in the same run, say what pdtui's own code costs on top of its
libraries: ``floor_ssh.py`` (asyncssh alone: connect to every node and send each the same probe
script, no validation, no parsing) under ``pdtui check``, and ``floor_textual.py`` (a Textual
app showing one word) under the app's first frame.

Python's compiled bytecode is kept between runs (in a temporary ``PYTHONPYCACHEPREFIX``), as
after ``pip install``, which compiles every module: where ``PYTHONDONTWRITEBYTECODE`` is set
(on this workplace's machines it is), every start would otherwise compile pdtui from source
again. ``--no-bytecode`` measures that case instead.

    python benchmarks/startup.py
    python benchmarks/startup.py --runs 11 --measure-runbook
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import resource
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from check_sweep import runbook_time, simulator

ROOT = Path(__file__).resolve().parent.parent
FIRST_FRAME = b"Runbook"
#: The simulated 1P1D's first node: in the Runbook view once the cluster file is validated.
FIRST_NODE = b"prefill-0"


def pdtui_argv() -> list[str]:
    """The installed ``pdtui`` script run by this interpreter, else ``python -m pdtui``."""
    script = Path(sys.executable).with_name("pdtui")
    if script.exists():
        return [sys.executable, str(script)]
    found = shutil.which("pdtui")
    return (
        [sys.executable, found]
        if found and not found.endswith("/shims/pdtui")
        else [sys.executable, "-m", "pdtui"]
    )


#: CPU seconds (user + system) of each ``timed`` run since the last ``show``: a shared,
#: loaded machine stretches wall time far more than CPU time.
CPU: list[float] = []


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


#: The children's environment (see ``bytecode_env``).
ENV: dict[str, str] = dict(os.environ)
HERE = Path(__file__).resolve().parent


def bytecode_env(workdir: Path, keep: bool) -> dict[str, str]:
    """The environment of every timed child: bytecode kept in ``workdir`` unless not ``keep``."""
    env = dict(os.environ)
    if keep:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def timed(argv: list[str], expect: int = 0) -> float:
    t, cpu = time.perf_counter(), _children_cpu()
    r = subprocess.run(
        argv,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    took = time.perf_counter() - t
    CPU.append(_children_cpu() - cpu)
    if r.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {r.returncode}: {r.stderr[-2000:]}")
    return took


def runs(n: int, once: Callable[[], float]) -> list[float]:
    return [once() for _ in range(n)]


def _read_until(fd: int, needle: bytes, timeout: float) -> bool:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                return False
            if not chunk:
                return False
            seen += chunk
    return True


def _quit(proc: subprocess.Popen[bytes], fd: int) -> None:
    os.write(fd, b"\x11")  # ctrl+q
    deadline = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            with contextlib.suppress(OSError):
                os.read(fd, 65536)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def first_frame(argv: list[str], env: dict[str, str], needle: bytes = FIRST_FRAME) -> float:
    """Seconds from the start of ``argv`` in a 120x40 pty until ``needle`` is on the screen
    (by default the mode bar: its first frame)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    t = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    try:
        if not _read_until(master, needle, timeout=60):
            raise SystemExit(f"no {needle.decode()!r} from {' '.join(argv)}")
        took = time.perf_counter() - t
        _quit(proc, master)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return took


def show(label: str, times: list[float], floor: float | None = None) -> float:
    low, mid = min(times), statistics.median(times)
    over = f"   (median - floor {mid - floor:.3f} s)" if floor is not None else ""
    cpu = f"   cpu median {statistics.median(CPU):.3f} s" if len(CPU) == len(times) else ""
    CPU.clear()
    print(f"{label:<34} min {low:.3f} s   median {mid:.3f} s{cpu}{over}", flush=True)
    return mid


def measure_runbook(latency: int, workdir: Path) -> float:
    from pdtui.cluster import load

    with simulator(2, latency, False, workdir) as f:
        return asyncio.run(runbook_time(load(f), f))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs of each measurement (default 7)")
    ap.add_argument(
        "--latency-ms", type=int, default=100, help="time each fake tool call takes (default 100)"
    )
    ap.add_argument(
        "--runbook-seconds",
        type=float,
        default=20.0,
        help="the runbook loops' time on the 1P1D (default 20, check_sweep's figure)",
    )
    ap.add_argument(
        "--measure-runbook",
        action="store_true",
        help="run the runbook loops over ssh here instead of --runbook-seconds",
    )
    ap.add_argument(
        "--no-bytecode",
        action="store_true",
        help="leave PYTHONDONTWRITEBYTECODE as it is (every start may compile pdtui again)",
    )
    ns = ap.parse_args()
    pdtui = pdtui_argv()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ENV.clear()
        ENV.update(bytecode_env(workdir, keep=not ns.no_bytecode))
        kept = "kept between runs" if not ns.no_bytecode else "as the environment says"
        print(f"{ns.runs} runs each; bytecode {kept}; pdtui = {' '.join(pdtui)}", flush=True)
        _measure(ns, pdtui, workdir)


def _warm(argv: list[str], expect: int = 0) -> Callable[[], float]:
    """``argv`` run once untimed (its bytecode written), then a timer of it."""
    timed(argv, expect)
    CPU.clear()
    return lambda: timed(argv, expect)


def _measure(ns: argparse.Namespace, pdtui: list[str], workdir: Path) -> None:
    py = sys.executable
    floor = show("python -c pass (floor)", runs(ns.runs, _warm([py, "-c", "pass"])))
    show("pdtui --version", runs(ns.runs, _warm([*pdtui, "--version"])), floor)
    with _check_cluster(ns.latency_ms, workdir) as cluster:
        ssh_floor = show(
            "asyncssh floor (connect + probe)",
            runs(ns.runs, _warm([py, str(HERE / "floor_ssh.py"), str(cluster)])),
            floor,
        )
        check = show(
            f"pdtui check (1P1D, {ns.latency_ms} ms/call)",
            runs(ns.runs, _warm([*pdtui, "check", str(cluster)])),
            floor,
        )
        print(f"{'':<34} pdtui's own share: median - asyncssh floor {check - ssh_floor:.3f} s")
        env = {**ENV, "TERM": "xterm-256color", "PDTUI_CONFIG_DIR": str(workdir / "cfg")}
        env.pop("NO_COLOR", None)
        textual_floor = _frames(
            "Textual floor (one word)", [py, str(HERE / "floor_textual.py")], env, ns.runs, floor
        )
        # The simulated cluster (loopback): the app connects to it after the first frame.
        app = _frames("app first frame (pty, 120x40)", [*pdtui, str(cluster)], env, ns.runs, floor)
        print(f"{'':<34} pdtui's own share: median - Textual floor {app - textual_floor:.3f} s")
        # The first frame says the file is being read; its validation follows, then the view.
        _frames(
            "app shows the cluster (node names)",
            [*pdtui, str(cluster)],
            env,
            ns.runs,
            floor,
            needle=FIRST_NODE,
        )
    runbook = measure_runbook(ns.latency_ms, workdir) if ns.measure_runbook else ns.runbook_seconds
    how = "measured" if ns.measure_runbook else "given"
    print(
        f"{'runbook loops (' + how + ')':<34} {runbook:.1f} s   runbook / pdtui check: "
        f"{runbook / check:.0f}x",
        flush=True,
    )


def _frames(
    label: str,
    argv: list[str],
    env: dict[str, str],
    n: int,
    floor: float,
    needle: bytes = FIRST_FRAME,
) -> float:
    first_frame(argv, env, needle)  # bytecode written
    return show(label, runs(n, lambda: first_frame(argv, env, needle)), floor)


@contextlib.contextmanager
def _check_cluster(latency: int, workdir: Path) -> Iterator[Path]:
    """The simulated 1P1D, nodes answering the probe in-process; warmed by one check."""
    with simulator(2, latency, True, workdir) as cluster:
        timed([*pdtui_argv(), "check", str(cluster)])  # the simulator's own first connects
        CPU.clear()
        yield cluster


if __name__ == "__main__":
    main()
