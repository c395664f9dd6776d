"""`pdtui status` through a subprocess against `pdtui sim up`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pdtui.cluster import ClusterSpec, load
from pdtui.launch.control import launch, stop_all, wait_ready
from pdtui.launch.run import run_dir
from pdtui.sim.rig import Simulator
from pdtui.ssh.remote import pool_for


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_an_unreachable_node_is_printed_with_its_reason_and_what_to_do(sim_up: Path) -> None:
    assert pdtui("sim", "fault", str(sim_up), "decode-0:unreachable").returncode == 0
    for _ in range(20):  # the fault reaches the running simulator on its next state read
        r = pdtui("status", str(sim_up))
        if "cannot tell its state" in r.stdout:
            break
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if " decode-0 " in line and "decode" in line)
    assert "cannot tell its state: " in lines[at + 1] and "refused" in lines[at + 1]
    assert "'pdtui nodes CLUSTER'" in lines[at + 2]
    prefill = next(line for line in lines if "prefill-0" in line)
    assert "stopped" in prefill
    decode = lines[at]
    assert decode.startswith("? decode-0") and " unknown " in decode


REAL = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "real"
MOONCAKE = Path(__file__).resolve().parents[2] / "sample_clusters" / "mooncake-a3-2p1d.toml"


def _dp_spec() -> ClusterSpec:
    """The Mooncake sample cut to two nodes: prefill DP2 x TP8, decode DP2 x TP1."""
    base = load(MOONCAKE).spec
    dec = base.instances[2]
    assert dec.dp is not None
    small = dec.model_copy(
        update={"devices": [0, 1], "dp": dec.dp.model_copy(update={"size": 2, "local": 2})}
    )
    return base.model_copy(
        update={"nodes": [base.nodes[0], base.nodes[2]], "instances": [base.instances[0], small]}
    )


async def _status(cluster: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pdtui",
        "status",
        str(cluster),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert not err, err.decode()
    return proc.returncode or 0, out.decode()


@pytest.mark.slow
async def test_dp_instances_are_reported_per_rank_and_overall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    sim = Simulator(
        _dp_spec(), tmp_path / "m.toml", latency_ms=0, address_prefix="127.0.110", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            await launch(pool, cluster, ["prefill-0", "decode-0.dp0", "proxy"])
            await wait_ready(pool, cluster, ["prefill-0", "decode-0.dp0"], timeout=60, interval=0.3)
            rc, out = await _status(sim.cluster_file, "--json")
            assert rc == 0
            doc = json.loads(out)
            by_name = {p["name"]: p for p in doc["processes"]}
            assert by_name["prefill-0.dp1"]["instance"] == "prefill-0"
            assert by_name["prefill-0.dp1"]["stage"] == "ready"
            assert doc["instances"] == [
                {
                    "name": "prefill-0",
                    "processes": 2,
                    "state": "ready",
                    "ready": 2,
                    "failed": [],
                    "stage": "ready",
                    "behind": [],
                },
                {
                    "name": "decode-0",
                    "processes": 2,
                    "state": "stopped",
                    "ready": 1,
                    "failed": [],
                    "stage": None,
                    "behind": ["decode-0.dp1"],
                },
            ]
            _rc, text = await _status(sim.cluster_file)
            assert "prefill-0: 2 DP processes, 2 ready, overall ready" in text
            assert (
                "decode-0: 2 DP processes, 1 ready, overall stopped; behind: decode-0.dp1" in text
            )
            await launch(pool, cluster, ["decode-0.dp1"])
            await wait_ready(pool, cluster, ["decode-0.dp1"], timeout=60, interval=0.3)
            _rc, text = await _status(sim.cluster_file)
            assert "decode-0: 2 DP processes, 2 ready, overall ready\n" in text
            # one `vllm serve` with four engine cores in one log (a real DP4 start, vllm-ascend
            # PR 2125) as decode-0.dp1's log: each DP rank with its stage and time
            await stop_all(pool, cluster, ["decode-0.dp1"], grace=5)
            folder = Path(run_dir(cluster.node("decode-0"), cluster.name, "decode-0.dp1"))
            (folder / "out.log").write_text((REAL / "dp4-aclgraph-moe-2125.log").read_text())
            rc, out = await _status(sim.cluster_file, "--only", "decode-0.dp1", "--json")
            row = json.loads(out)["processes"][0]
            assert row["stage"] == "graphs"
            assert [(r["name"], r["stage"]) for r in row["ranks"]] == [
                ("DP0", "kv_cache"),
                ("DP1", "weights"),
                ("DP2", "graphs"),
                ("DP3", "weights"),
            ]
            assert row["ranks"][2]["stages"] == {"weights": 1.0, "graphs": 67.0, "kv_cache": 67.0}
            _rc, text = await _status(sim.cluster_file, "--only", "decode-0.dp1")
            assert (
                "    4 DP ranks: weights on 2 (DP1, DP3) 0.0s; kv_cache 67.0s on DP0; "
                "graphs 67.0s on DP2"
            ) in text
            await stop_all(pool, cluster, grace=5)
