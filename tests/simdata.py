"""Live health data from the simulator without SSH: the probe's own jobs, answered in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdtui.npu.model import NodeHealth, Raw
from pdtui.npu.parse import node_from_raw
from pdtui.npu.probe import ProbeSpec, device_jobs
from pdtui.sim.faults import is_unreachable, tool_missing
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.sim.state import SimState, render_hccn_conf
from pdtui.sim.tools import run


def collect(state: SimState, name: str) -> NodeHealth:
    """What the health probe would gather on one simulated node, parsed (not classified)."""
    node = state.node(name)
    if is_unreachable(node):
        return NodeHealth(
            name=name, soc=node.soc, reachable=False, error="ssh: connection timed out"
        )
    spec = ProbeSpec(
        node.soc, tuple(d.id for d in node.devices), "hccn_tool", "npu-smi", "/etc/hccn.conf"
    )
    node_raw: dict[str, Raw] = {}
    dev_raw: dict[int, dict[str, Raw]] = {d.id: {} for d in node.devices}
    for key, argv in device_jobs(spec):
        tool, args = argv[0], argv[1:]
        cmd = " ".join(argv)
        if tool == "cat":
            raw = Raw(cmd, 0, render_hccn_conf(node), "")
        elif tool_missing(node, tool):
            raw = Raw(cmd, 127, "", f"{tool}: command not found\n")
        else:
            o = run(tool, list(args), state, node)
            raw = Raw(cmd, o.rc, "".join(o.out), "".join(o.err))
        scope, _, check = key.partition(".")
        if scope == "n":
            node_raw[check] = raw
        else:
            dev_raw[int(scope[1:])][check] = raw
    tools = {t: not tool_missing(node, t) for t in ("hccn_tool", "npu-smi")}
    return node_from_raw(name, node.soc, node_raw, dev_raw, tools=tools, taken_at=1.0)


def runbook_sim(tmp_path: Path, prefix: str, *faults: str, **options: Any) -> Simulator:
    """The runbook's 1P1D on fake nodes at ``prefix``.1, .2 (each test file has its own
    prefix), no tool latency; ``async with`` it."""
    return Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        faults=list(faults),
        address_prefix=prefix,
        port=0,
        **options,
    )
