"""Data-parallel ranks started as separate ``vllm serve`` commands, grouped per instance."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pdtui.launch.importer.serve import Proc
from pdtui.launch.plan import VISIBLE_DEVICES


@dataclass
class Group:
    procs: list[Proc]

    @property
    def head(self) -> Proc:
        return self.procs[0]


def group_ranks(procs: list[Proc]) -> list[Group]:
    """Data-parallel ranks of one instance (same node, settings, consecutive rank and port)."""
    by_key: dict[str, list[Proc]] = {}
    for p in procs:
        by_key.setdefault(_settings_key(p), []).append(p)
    groups = [g for members in by_key.values() for g in _consecutive(members)]
    groups.sort(key=lambda g: (g.head.role != "prefill", min(p.order for p in g.procs)))
    return groups


def _settings_key(p: Proc) -> str:
    """Equal for ranks of one instance; a process without data-parallel flags is alone."""
    if p.dp is None:
        return f"single:{p.order}"
    env = {k: v for k, v in p.env.items() if k != VISIBLE_DEVICES}
    return json.dumps(
        [p.ip, p.role, p.dp[0], p.dp[2], p.dp[3], env, p.flags, p.kv, p.model, p.served, p.vllm]
    )


def _consecutive(members: list[Proc]) -> list[Group]:
    """Ranks with the same settings, split where the rank or the port is not the next one."""
    groups: list[Group] = []
    run: list[Proc] = []
    for p in sorted(members, key=lambda p: (p.dp[1] if p.dp else 0, p.port)):
        last = run[-1] if run else None
        if (
            last is not None
            and p.dp
            and last.dp
            and (p.dp[1] != last.dp[1] + 1 or p.port != last.port + 1)
        ):
            groups.append(Group(run))
            run = []
        run.append(p)
    groups.append(Group(run))
    return groups
