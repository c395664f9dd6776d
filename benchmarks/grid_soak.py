"""Load held: the real app's NPU grid auto-refreshing a 64-node simulated cluster for minutes.

Starts ``pdtui sim up --nodes N --inproc-probe`` in a separate process (so the fake nodes'
work is not counted in this process), opens the app headless (Textual ``run_test``, a screen
big enough for every node and device), switches to the grid and lets its own auto-refresh
poll for the duration. The grid re-arms its timer only when a sweep has finished, so polls
never overlap; the time between two polls is the sweep plus ``--interval``.

Per poll it records: start, duration, whether it started before the previous one ended, how
many devices were ok; after each poll: tracemalloc's current size (after ``gc.collect()``) and
VmRSS from /proc/self/status. The baseline is this process with the app and grid up, before
the first poll. Hooks used (nothing is mocked): ``PdTui.set_health`` (every sweep's
``CheckReport``), the grid's ``Worker.StateChanged`` messages for the "NPU sweep" worker, and
``GridScreen._auto_tick`` wrapped to count timer ticks that found a sweep still running.
tracemalloc is on for the whole run, so poll durations and CPU include its overhead (about 3x
here); ``--no-tracemalloc`` gives those figures without it (and no traced column).

    python benchmarks/grid_soak.py                    # 64 nodes, every 2 s, 10 minutes
    python benchmarks/grid_soak.py --minutes 0.5      # quick run
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from textual.screen import Screen
from textual.worker import Worker, WorkerState

from pdtui.cluster import load
from pdtui.npu.health import CheckReport
from pdtui.settings import Settings
from pdtui.tui import app as app_module
from pdtui.tui.app import PdTui
from pdtui.tui.screens.grid import GridScreen

SWEEP_WORKER = "NPU sweep"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Sample:
    t: float  # seconds since polling started
    traced_mb: float
    rss_mb: float
    cpu_s: float


def sample(t0: float) -> Sample:
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] / 1e6 if tracemalloc.is_tracing() else math.nan
    return Sample(time.monotonic() - t0, traced, rss_mb(), time.process_time())


@dataclass
class Poll:
    start: float  # monotonic
    seconds: float
    ok: int
    devices: int
    overlapped: bool


@dataclass
class Recorder:
    polls: list[Poll] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ticks: int = 0
    skipped: int = 0
    started: int = 0
    finished: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)
    max_running: int = 0
    busy: list[float] = field(default_factory=list)  # worker RUNNING -> finished, seconds
    _running_since: dict[int, float] = field(default_factory=dict)

    def report(self, r: CheckReport) -> None:
        # started_at is wall-clock time; move it onto the monotonic clock.
        start = time.monotonic() - (time.time() - r.started_at)
        prev = self.polls[-1] if self.polls else None
        overlapped = prev is not None and start < prev.start + prev.seconds
        devices = [d for n in r.nodes for d in n.devices]
        self.polls.append(
            Poll(start, r.seconds, sum(d.state == "ok" for d in devices), len(devices), overlapped)
        )
        self.done.set()

    def worker(self, worker: Worker[object], state: WorkerState, running: int) -> None:
        now = time.monotonic()
        self.max_running = max(self.max_running, running)
        if state == WorkerState.RUNNING:
            self.started += 1
            self._running_since[id(worker)] = now
        elif state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.finished += 1
            self.cancelled += state == WorkerState.CANCELLED
            if state == WorkerState.ERROR:
                self.errors.append(str(worker.error))
            began = self._running_since.pop(id(worker), None)
            if began is not None:
                self.busy.append(now - began)


REC = Recorder()


class SoakGrid(GridScreen):
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        super().on_worker_state_changed(event)
        if event.worker.name != SWEEP_WORKER:
            return
        running = sum(
            1 for w in self.app.workers if w.name == SWEEP_WORKER and w.state == WorkerState.RUNNING
        )
        REC.worker(event.worker, event.state, running)

    def _auto_tick(self) -> None:
        REC.ticks += 1
        if self.busy:
            REC.skipped += 1
        super()._auto_tick()


class SoakApp(PdTui):
    CSS_PATH = str(Path(app_module.__file__).parent / "pdtui.tcss")
    MODES: ClassVar[dict[str, type[Screen[None]]]] = {  # type: ignore[assignment]
        **PdTui.MODES,
        "grid": SoakGrid,
    }

    def set_health(self, report: CheckReport) -> None:
        super().set_health(report)
        REC.report(report)


# --------------------------------------------------------------------------- simulator


def start_simulator(ns: argparse.Namespace, folder: Path) -> tuple[subprocess.Popen[str], Path]:
    cluster_file = folder / f"soak{ns.nodes}.toml"
    cmd = [
        sys.executable,
        "-m",
        "pdtui",
        "sim",
        "up",
        "--nodes",
        str(ns.nodes),
        "--inproc-probe",
        "--latency-ms",
        str(ns.latency_ms),
        "--address-prefix",
        ns.address_prefix,
        "--port",
        "0",
        "--write-cluster",
        str(cluster_file),
    ]
    err = open(folder / "sim.stderr", "w")  # noqa: SIM115 -- kept open for the child
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("running;"):
            return proc, cluster_file
    proc.kill()
    proc.wait()
    raise SystemExit("simulator did not start:\n" + (folder / "sim.stderr").read_text()[-2000:])


def stop_simulator(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# --------------------------------------------------------------------------- the soak


async def soak(
    cluster_file: Path, ns: argparse.Namespace
) -> tuple[Sample, list[tuple[int, Sample]]]:
    cluster = load(cluster_file)
    app = SoakApp(cluster, settings=Settings(), persist_settings=False, connect=False)
    samples: list[tuple[int, Sample]] = []
    async with app.run_test(size=(ns.width, ns.height)) as pilot:
        app.switch_mode("grid")
        await pilot.pause(0.5)
        grid = app.screen
        assert isinstance(grid, SoakGrid), grid
        assert not grid._is_compact(), "the screen is too small for the full grid"
        grid.interval = ns.interval
        t0 = time.monotonic()
        base = sample(t0)
        deadline = t0 + ns.minutes * 60
        last_note = t0
        grid.action_refresh_now()  # the first poll; the grid's auto-refresh does the rest
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(REC.done.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            REC.done.clear()
            samples.append((len(REC.polls), sample(t0)))
            if time.monotonic() - last_note >= 60:
                last_note = time.monotonic()
                s = samples[-1][1]
                print(
                    f"  {s.t / 60:4.1f} min: {len(REC.polls)} polls, traced "
                    f"{s.traced_mb:.1f} MB, RSS {s.rss_mb:.1f} MB",
                    file=sys.stderr,
                    flush=True,
                )
        grid.auto = False
        for _ in range(1200):  # let a poll in flight finish; it counts, and so does its memory
            if not grid.busy:
                break
            await pilot.pause(0.05)
        if REC.done.is_set():
            samples.append((len(REC.polls), sample(t0)))
    return base, samples


# --------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return float("nan")
    ts = [t for t, _ in points]
    vs = [v for _, v in points]
    mt, mv = statistics.fmean(ts), statistics.fmean(vs)
    den = sum((t - mt) ** 2 for t in ts)
    if den == 0:
        return float("nan")
    return sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / den * 3600


def show(
    ns: argparse.Namespace, base: Sample, samples: list[tuple[int, Sample]], sim_rc: int
) -> None:
    polls = REC.polls
    n_dev = polls[0].devices if polls else 0
    durations = [p.seconds for p in polls]
    periods = [b.start - a.start for a, b in itertools.pairwise(polls)]
    oks = [p.ok for p in polls]
    first = samples[0][1] if samples else base
    end = samples[-1][1] if samples else base
    # the sample nearest to 60 s (a 1-minute run ends just before or after it)
    near = [s for _, s in samples if s.t >= 50]
    one_min = min(near, key=lambda s: abs(s.t - 60)) if near else None
    fit_from = 60.0 if end.t >= 120 else 0.0
    window = [s for _, s in samples if s.t >= fit_from]
    cpu = (end.cpu_s - base.cpu_s) / len(polls) if polls else float("nan")

    def row(label: str, value: str) -> None:
        print(f"{label:<44} {value}")

    def stats(values: list[float]) -> str:
        return (
            f"p50 {pct(values, 0.5):6.2f}   p90 {pct(values, 0.9):6.2f}   "
            f"max {max(values, default=float('nan')):6.2f}"
        )

    print(
        f"grid soak: {ns.nodes} A3 nodes x 16 devices ({n_dev} devices), grid auto-refresh "
        f"interval {ns.interval:g} s, {ns.minutes:g} min, tool latency {ns.latency_ms} ms, "
        f"screen {ns.width}x{ns.height}, tracemalloc "
        f"{'on' if tracemalloc.is_tracing() else 'off'}"
    )
    row("polls done", str(len(polls)))
    row("polls skipped (previous still running)", str(REC.skipped))
    row("polls overlapping the previous one", str(sum(p.overlapped for p in polls)))
    row(
        "sweep workers started / finished / cancelled",
        f"{REC.started} / {REC.finished} / {REC.cancelled}"
        + (f"  errors: {REC.errors[:3]}" if REC.errors else ""),
    )
    row("most sweep workers running at once", str(REC.max_running))
    row("devices ok per poll (min / max)", f"{min(oks, default=0)} / {max(oks, default=0)}")
    row("poll duration, s (check: probe + classify)", stats(durations))
    row("grid busy per poll, s (worker start-finish)", stats(REC.busy))
    row("poll start to next poll start, s", stats(periods))
    row("app process CPU per poll, s", f"{cpu:.2f}")
    print(f"{'memory':<44} {'traced MB':>10} {'RSS MB':>10} {'at':>9}")

    def mem(label: str, s: Sample | None) -> None:
        if s is None:
            print(f"{label:<44} {'-':>10} {'-':>10} {'-':>9}")
        else:
            print(f"{label:<44} {s.traced_mb:>10.2f} {s.rss_mb:>10.1f} {s.t:>8.1f}s")

    mem("  baseline (app + grid up, before polling)", base)
    mem("  start (after poll 1)", first)
    mem("  after 1 minute", one_min)
    mem("  end", end)
    print(
        f"{'  growth per hour (least squares, t >= ' + f'{fit_from:.0f} s)':<44} "
        f"{slope_per_hour([(s.t, s.traced_mb) for s in window]):>+10.2f} "
        f"{slope_per_hour([(s.t, s.rss_mb) for s in window]):>+10.1f}"
    )
    print(
        f"{'  end / baseline':<44} {end.traced_mb / base.traced_mb:>9.2f}x "
        f"{end.rss_mb / base.rss_mb:>9.2f}x"
    )
    row(
        "tracemalloc's own overhead at end, MB", f"{tracemalloc.get_tracemalloc_memory() / 1e6:.1f}"
    )
    row("simulator exit status (SIGINT)", str(sim_rc))
    if ns.per_poll:
        print(f"\n{'poll':>5} {'start s':>9} {'seconds':>8} {'overlap':>8} {'ok':>6}")
        t0 = polls[0].start if polls else 0.0
        for i, p in enumerate(polls, 1):
            print(f"{i:>5} {p.start - t0:>9.2f} {p.seconds:>8.2f} {int(p.overlapped):>8} {p.ok:>6}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=64)
    ap.add_argument(
        "--interval",
        type=float,
        default=2.0,
        help="the grid's auto-refresh interval, seconds (default 2)",
    )
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to poll (default 10)")
    ap.add_argument("--latency-ms", type=int, default=100, help="each fake tool call's time")
    ap.add_argument("--address-prefix", default="127.0.46")
    ap.add_argument("--width", type=int, default=200)
    ap.add_argument("--height", type=int, default=90)
    ap.add_argument("--per-poll", action="store_true", help="also print one row per poll")
    ap.add_argument(
        "--no-tracemalloc",
        action="store_true",
        help="do not trace allocations (poll times without its overhead)",
    )
    ns = ap.parse_args()
    if not ns.no_tracemalloc:
        tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="grid-soak-") as tmp:
        os.environ.setdefault("PDTUI_CONFIG_DIR", str(Path(tmp) / "config"))
        print(f"starting {ns.nodes} simulated nodes ...", file=sys.stderr, flush=True)
        proc, cluster_file = start_simulator(ns, Path(tmp))
        try:
            print(f"polling for {ns.minutes:g} min ...", file=sys.stderr, flush=True)
            base, samples = asyncio.run(soak(cluster_file, ns))
        finally:
            sim_rc = stop_simulator(proc)
    show(ns, base, samples, sim_rc)


if __name__ == "__main__":
    main()
