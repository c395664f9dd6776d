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
    groups: list[Group] = []
    by_key: dict[str, list[Proc]] = {}
    order: list[str] = []
    for p in procs:
        if p.dp is None:
            key = f"single:{p.order}"
        else:
            env = {k: v for k, v in p.env.items() if k != VISIBLE_DEVICES}
            key = json.dumps(
                [p.ip, p.role, p.dp[0], p.dp[2], p.dp[3], env, p.flags, p.kv, p.model,
                 p.served, p.vllm]
            )
        if key not in by_key:
            by_key[key] = []
            order.append(key)
        by_key[key].append(p)
    for key in order:
        members = sorted(by_key[key], key=lambda p: (p.dp[1] if p.dp else 0, p.port))
        run: list[Proc] = []
        for p in members:
            if run and p.dp and run[-1].dp and (
                p.dp[1] != run[-1].dp[1] + 1 or p.port != run[-1].port + 1
            ):
                groups.append(Group(run))
                run = []
            run.append(p)
        groups.append(Group(run))
    groups.sort(key=lambda g: (g.head.role != "prefill", min(p.order for p in g.procs)))
    return groups
