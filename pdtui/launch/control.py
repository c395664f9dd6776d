"""Launch, watch and stop a cluster's processes: plans + run control + log reading.

A process's state, as the CLI and the app show it:
``stopped`` (not started, or stopped by pdtui), ``starting`` (running, not yet ready),
``ready`` ("Application startup complete." seen), ``failed`` (exited, or a fatal fingerprint
seen in its log).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from pdtui.cluster import Cluster
from pdtui.launch.logs import (
    GREP_KEYS,
    STAGE_ORDER,
    STATS_KEY,
    EngineStats,
    Finding,
    LogWatcher,
    plog,
)
from pdtui.launch.logs.lines import dp_ranks, natural
from pdtui.launch.plan import plan_cluster, plan_proxy
from pdtui.launch.run import Started, Status, run_dir, shell_path, start, status, stop
from pdtui.place import where, wrap
from pdtui.ssh import SshError, SshPool
from pdtui.ssh.remote import target

State = Literal["stopped", "starting", "ready", "failed"]
PROXY = "proxy"


@dataclass(frozen=True)
class Launchable:
    """Anything pdtui starts: a vLLM process or the proxy."""

    name: str
    role: str  # prefill | decode | proxy
    node: str
    url: str
    env: dict[str, str]
    argv: list[str]
    instance: str = ""  # the cluster file's instance (a DP rank's group); "" for the proxy


def launchables(cluster: Cluster, only: Iterable[str] | None = None) -> list[Launchable]:
    """Every process of the cluster (DP ranks separately) and the proxy, filtered by name.

    ``only`` may name a process (``decode-0.dp3``), an instance (all its ranks), a role
    (``prefill``, ``decode``) or ``proxy``.
    """
    plans = plan_cluster(cluster)
    items = [Launchable(p.name, p.role, p.node, p.url, p.env, p.argv, p.instance) for p in plans]
    proxy = plan_proxy(cluster)
    if proxy is not None:
        items.append(Launchable(PROXY, PROXY, proxy.node, proxy.url, proxy.env, proxy.argv))
    if only is None:
        return items
    wanted = set(only)
    instances = {p.name: p.instance for p in plans}
    return [
        i for i in items if i.name in wanted or i.role in wanted or instances.get(i.name) in wanted
    ]


def unknown_names(cluster: Cluster, only: Iterable[str]) -> list[str]:
    known = {i.name for i in launchables(cluster)} | {"prefill", "decode", PROXY}
    known |= {i.name for i in cluster.instances}
    return [n for n in only if n not in known]


@dataclass
class ProcessStatus:
    name: str
    role: str
    node: str
    url: str
    state: State
    stage: str | None
    pid: int | None
    run: Status
    findings: list[Finding] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stats: EngineStats | None = None
    plogs: list[str] = field(default_factory=list)  # this run's CANN log files read
    where: str = "host"  # or "container NAME" (pdtui.place.where)
    instance: str = ""
    #: per DP rank when one log holds several (``DP0``, ``DP1``): stage -> seconds
    ranks: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role,
            "node": self.node,
            "url": self.url,
            "state": self.state,
            "stage": self.stage,
            "pid": self.pid,
            "host_pid": self.run.host_pid,
            "where": self.where,
            "exit_status": self.run.exit_status,
            "error": self.run.error,
            "fingerprints": [
                {
                    "key": f.key,
                    "meaning": f.meaning,
                    "hint": f.hint,
                    "line": f.line,
                    "lineno": f.lineno,
                    "severity": f.severity,
                    "source": f.source,
                }
                for f in self.findings
            ],
            "stages": {k: round(v, 1) for k, v in self.stage_seconds.items()},
            "stats": None if self.stats is None else dict(self.stats.__dict__),
            "instance": self.instance or self.name,
            "ranks": [
                {
                    "name": r,
                    "stage": last_stage(st),
                    "stages": {k: round(v, 1) for k, v in st.items()},
                }
                for r, st in sorted(self.ranks.items(), key=lambda kv: natural(kv[0]))
            ],
        }


def last_stage(stages: Iterable[str]) -> str | None:
    """The furthest of ``stages`` in start-up order."""
    known = [s for s in stages if s in STAGE_ORDER]
    return max(known, key=STAGE_ORDER.index) if known else None


def _rank_stages(watcher: LogWatcher) -> dict[str, dict[str, float]]:
    """Per data-parallel rank of a log holding two or more (one ``vllm serve`` with several
    engine cores, their prefixes interleaved): seconds from the start to each stage, the
    first of that rank's processes (engine core, workers) to reach it."""
    t0 = watcher.started_at
    ranks = dp_ranks(watcher.timeline.ranks)
    if len(ranks) < 2 or t0 is None:
        return {}
    return {
        r: {k: m.at - t0 for k, m in sorted(st.items(), key=lambda kv: kv[1].line)}
        for r, st in ranks.items()
    }


_STATE_RANK: dict[State, int] = {"failed": 0, "stopped": 1, "starting": 2, "ready": 3}


def instance_summaries(rows: Iterable[ProcessStatus]) -> list[dict[str, object]]:
    """Overall of every instance run as several processes (DP ranks): its state (the worst
    rank's), how many are ready, the slowest rank's stage and which ranks are there."""
    groups: dict[str, list[ProcessStatus]] = {}
    for r in rows:
        if r.instance:
            groups.setdefault(r.instance, []).append(r)
    out: list[dict[str, object]] = []
    for name, members in groups.items():
        if len(members) < 2:
            continue
        state = min((m.state for m in members), key=_STATE_RANK.__getitem__)
        order = {m.name: STAGE_ORDER.index(m.stage) if m.stage else -1 for m in members}
        low = min(order.values())
        behind = [m.name for m in members if order[m.name] == low]
        out.append(
            {
                "name": name,
                "processes": len(members),
                "state": state,
                "ready": sum(m.state == "ready" for m in members),
                "failed": [m.name for m in members if m.state == "failed"],
                "stage": STAGE_ORDER[low] if low >= 0 else None,
                "behind": behind if len(behind) < len(members) else [],
            }
        )
    return out


async def launch(
    pool: SshPool, cluster: Cluster, only: Iterable[str] | None = None
) -> list[Started]:
    """Start every selected process on its node, all at once (detached)."""
    items = launchables(cluster, only)

    async def one(item: Launchable) -> Started:
        return await start(
            pool, cluster.node(item.node), cluster.name, item.name, item.env, item.argv
        )

    return list(await asyncio.gather(*(one(i) for i in items)))


def _state(run: Status, watcher: LogWatcher, role: str) -> State:
    if run.state in ("not-started", "stopped", "unknown"):
        return "stopped" if run.state != "unknown" else "failed"
    fatal = any(f.fatal for f in watcher.findings)
    if run.state == "exited":
        return "failed" if run.exit_status not in (0,) or fatal else "stopped"
    if fatal and not watcher.ready:
        return "failed"
    return "ready" if watcher.ready else "starting"


def log_digest_command(
    path: str, tail_lines: int = 20, plog_base: str | None = None, since: str | None = None
) -> str:
    """One command printing what a status needs from a log of any length: the first line,
    every stage and fingerprint line (``grep -n -F``, at most 500), the last engine-stats
    lines, the last ``tail_lines`` lines; with ``plog_base``, then this run's CANN log files
    (written after ``since``), each as ``@@pdtui-plog@@ PATH`` and its matching lines."""
    q = shell_path(path)
    keys = " ".join(f"-e {shlex.quote(k)}" for k in GREP_KEYS)
    cut = f"cut -b 1-{MAX_LINE + 1}"  # every line, on the node: see cap_line
    cmd = (
        f"head -n 1 -- {q} | {cut}; echo {_SEP}; "
        f"grep -a -n -F {keys} -- {q} | {cut} | grep -v -F {shlex.quote(STATS_KEY)} | "
        f"head -n 500; grep -a -n -F {shlex.quote(STATS_KEY)} -- {q} | tail -n 5 | {cut}; "
        f"echo {_SEP}; tail -n {int(tail_lines)} -- {q} | {cut}"
    )
    if plog_base is not None and since is not None:
        cmd += (
            f"; echo {_SEP}; {plog.list_command(plog_base, since)} | "
            f'while IFS= read -r f; do echo "{_PLOG} $f"; '
            f'grep -a -n -F {keys} -- "$f" | {cut} | head -n 200; done'
        )
    return cmd


#: Log lines longer than this many bytes are cut (a 300 MB line is one bug, not 300 MB to read).
MAX_LINE = 4096


def cap_line(line: str) -> str:
    """``line`` as the digest gives it, saying so when the node cut it."""
    return line if len(line) <= MAX_LINE else f"{line[:MAX_LINE]} … [line cut at {MAX_LINE} bytes]"


_SEP = "@@pdtui-log-part@@"
_PLOG = "@@pdtui-plog@@"
_NUMBERED = re.compile(r"^(\d+):(.*)$", re.DOTALL)


def _feed_numbered(watcher: LogWatcher, lines: list[str], source: str | None = None) -> None:
    """Feeds ``grep -n`` output (``N:text``) with its line numbers."""
    for line in lines:
        m = _NUMBERED.match(line)
        if m is None:
            watcher.feed(line, source=source)
        else:
            watcher.feed(m.group(2), int(m.group(1)), source)


def _feed_plogs(watcher: LogWatcher, text: str) -> list[str]:
    """Feeds the plog part of a digest; returns the plog files seen."""
    files: list[str] = []
    for line in text.splitlines():
        if line.startswith(_PLOG + " "):
            files.append(line[len(_PLOG) + 1 :])
        elif files:
            _feed_numbered(watcher, [line], files[-1].rsplit("/", 1)[-1])
    return files


def plog_base(cluster: Cluster, item: Launchable) -> str:
    """Where ``item``'s CANN logs go (its run folder, or the cluster file's setting)."""
    return plog.plog_dir(run_dir(cluster.node(item.node), cluster.name, item.name), item.env)


async def process_status(pool: SshPool, cluster: Cluster, item: Launchable) -> ProcessStatus:
    node = cluster.node(item.node)
    run = await status(pool, node, cluster.name, item.name)
    watcher = LogWatcher(clock=time.time, source="out.log")
    last: list[str] = []
    plogs: list[str] = []
    if run.state not in ("not-started", "unknown"):
        folder = run_dir(node, cluster.name, item.name)
        base = None if item.role == PROXY else plog_base(cluster, item)
        cmd = log_digest_command(folder + "/out.log", plog_base=base, since=folder + "/run_id")
        try:
            res = await pool.run(
                target(node),
                wrap(node, cmd, sh="bash"),
                timeout=30,
                label=f"log digest of {item.name}",
            )
            parts = "\n".join(map(cap_line, res.stdout.split("\n"))).split(_SEP + "\n")
        except SshError:
            parts = []
        if len(parts) >= 3:
            first, matched, tail_text = (p.splitlines() for p in parts[:3])
            watcher.feed(first[0] if first else "", 1)
            _feed_numbered(watcher, matched)
            last = tail_text
        if len(parts) == 4:
            plogs = _feed_plogs(watcher, parts[3])
    if (
        item.role == PROXY
        and run.state == "running"
        and "ready" not in watcher.stages
        and any("Uvicorn running on" in x or "Application startup complete" in x for x in last)
    ):
        watcher.stages.setdefault("ready", time.time())
    stages = {k: t for k in watcher.stages if (t := watcher.elapsed(k)) is not None}
    return ProcessStatus(
        item.name,
        item.role,
        item.node,
        item.url,
        _state(run, watcher, item.role),
        watcher.stage,
        run.pid,
        run,
        watcher.findings,
        last,
        stages,
        watcher.stats,
        plogs,
        where(node),
        item.instance,
        _rank_stages(watcher),
    )


async def read_plogs(
    pool: SshPool, cluster: Cluster, item: Launchable, lines: int = 200
) -> list[tuple[str, list[str]]]:
    """This run's CANN log files of ``item``: (path, its last ``lines`` lines) each."""
    node = cluster.node(item.node)
    since = run_dir(node, cluster.name, item.name) + "/run_id"
    cmd = (
        f"{plog.list_command(plog_base(cluster, item), since)} | while IFS= read -r f; do "
        f'echo "{_PLOG} $f"; tail -n {int(lines)} -- "$f"; done'
    )
    res = await pool.run(
        target(node), wrap(node, cmd, sh="bash"), timeout=30, label=f"plog of {item.name}"
    )
    out: list[tuple[str, list[str]]] = []
    for line in res.stdout.splitlines():
        if line.startswith(_PLOG + " "):
            out.append((line[len(_PLOG) + 1 :], []))
        elif out:
            out[-1][1].append(line)
    return out


async def statuses(
    pool: SshPool, cluster: Cluster, only: Iterable[str] | None = None
) -> list[ProcessStatus]:
    items = launchables(cluster, only)
    return list(await asyncio.gather(*(process_status(pool, cluster, i) for i in items)))


async def stop_all(
    pool: SshPool, cluster: Cluster, only: Iterable[str] | None = None, grace: int = 30
) -> dict[str, str]:
    """Stop what pdtui started (proxy first, then decode, then prefill)."""
    order = {PROXY: 0, "decode": 1, "prefill": 2}
    items = sorted(launchables(cluster, only), key=lambda i: order.get(i.role, 3))
    out: dict[str, str] = {}
    for rank in sorted({order.get(i.role, 3) for i in items}):
        group = [i for i in items if order.get(i.role, 3) == rank]
        results = await asyncio.gather(
            *(stop(pool, cluster.node(i.node), cluster.name, i.name, grace) for i in group)
        )
        out.update({i.name: r for i, r in zip(group, results, strict=True)})
    return out


async def wait_ready(
    pool: SshPool,
    cluster: Cluster,
    only: Iterable[str] | None = None,
    timeout: float = 1800,
    interval: float = 2.0,
    on_poll: Callable[[list[ProcessStatus]], None] | None = None,
) -> list[ProcessStatus]:
    """Poll until every selected process is ready, or one failed, or time runs out;
    ``on_poll`` sees every poll's statuses (the stage each process has reached)."""
    deadline = time.monotonic() + timeout
    while True:
        current = await statuses(pool, cluster, only)
        if on_poll is not None:
            on_poll(current)
        if all(s.state == "ready" for s in current) or any(s.state == "failed" for s in current):
            return current
        if time.monotonic() > deadline:
            return current
        await asyncio.sleep(interval)
