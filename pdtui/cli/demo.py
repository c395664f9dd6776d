"""``pdtui demo``: start a simulated 1P1D cluster and open the app on it."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import threading
from pathlib import Path
from typing import TextIO

from pdtui.cli.common import EXIT_CONFIG, err, run_app


def demo_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pdtui" / "demo"


class FolderBusy(Exception):
    """Another ``pdtui demo`` holds the folder."""


def claim(folder: Path) -> TextIO:
    """Lock ``folder`` for this run (the lock goes when the process ends, however it ends);
    FolderBusy names the run that holds it."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "a+")  # noqa: SIM115 (held for the whole run)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise FolderBusy(f"{folder} is in use by another pdtui demo ({holder})") from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def claim_free(base: Path, tries: int = 20) -> tuple[Path, TextIO]:
    """``base`` if no other demo uses it, else ``base-2``, ``base-3`` ...: two demos never
    share a folder (and never stop each other's nodes)."""
    for i in range(1, tries + 1):
        folder = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            return folder, claim(folder)
        except FolderBusy:
            continue
    raise FolderBusy(f"{base} and {tries - 1} folders beside it are in use by other demos")


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", default=None, help=f"where to keep the demo files (default {demo_dir()})"
    )
    p.add_argument("--latency-ms", type=int, default=100, help="fake tool latency (default 100)")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="start with a fault, e.g. decode-0:3:link-down (repeatable)",
    )
    p.add_argument(
        "--containers",
        action="store_true",
        help="each fake node's serving side in a real podman container "
        "(apt-get install podman runc)",
    )


class _SimThread(threading.Thread):
    """The simulator on its own event loop, beside the app's."""

    def __init__(self, sim: object) -> None:
        super().__init__(name="pdtui-sim", daemon=True)
        self.sim = sim
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        from pdtui.sim.rig import Simulator

        assert isinstance(self.sim, Simulator)
        self._stop_event = asyncio.Event()
        try:
            await self.sim.start()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        await self._stop_event.wait()
        await self.sim.stop()

    def shutdown(self) -> None:
        if self._stop_event is not None and self.is_alive():
            self.loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout=10)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(ns: argparse.Namespace) -> int:
    from pdtui.cluster import load
    from pdtui.sim.rig import SimError, Simulator, runbook_spec

    try:
        if ns.dir:
            folder, lock = Path(ns.dir), claim(Path(ns.dir))
        else:
            folder, lock = claim_free(demo_dir())
    except FolderBusy as exc:
        err(f"pdtui demo: {exc}; stop it, or pass --dir with another folder")
        return EXIT_CONFIG
    if folder != demo_dir() and not ns.dir:
        print(f"another demo uses {demo_dir()}; this one runs in {folder}")
    cluster_file = folder / "demo-1p1d.toml"
    sim = Simulator(
        runbook_spec(),
        cluster_file,
        latency_ms=ns.latency_ms,
        faults=ns.fault,
        containers=ns.containers,
    )
    thread = _SimThread(sim)
    thread.start()
    thread.ready.wait(timeout=60)
    if thread.error is not None:
        msg = thread.error if isinstance(thread.error, SimError) else repr(thread.error)
        err(f"pdtui demo: {msg}")
        return EXIT_CONFIG
    try:
        load(cluster_file)
        print(
            f"demo files in {folder}; while it runs, from another terminal:\n"
            f"  pdtui sim fault {cluster_file} {sim.nodes[-1].name}:3:link-down\n"
            f"  ssh -F {sim.ssh_config_path} {sim.nodes[0].name}",
            flush=True,
        )
        note = (
            f"Simulated 1P1D cluster ({len(sim.nodes)} fake nodes). R runs the runbook; "
            f"F1 help. Faults: pdtui sim fault {cluster_file} --help"
        )
        # A closed terminal (SIGHUP) or a kill (SIGTERM) still stops the simulated nodes and
        # whatever was started on them.
        for sig in (signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, _exit_on_signal)
        return run_app(str(cluster_file), notes=[note])
    finally:
        thread.shutdown()
        lock.close()
