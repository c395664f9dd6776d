"""The in-process probe answers are the bytes real bash prints for the same script."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdtui.cluster import load
from pdtui.npu.health import _spec, sweep
from pdtui.npu.probe import build_script, framed_script, parse_frames, ping_jobs
from pdtui.sim.inproc import InprocShell, parse_framed_script
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for, target

FAULTS = [
    "prefill-0:1:link-down",
    "prefill-0:2:no-ip",
    "prefill-0:3:tool-output=garbage",
    "prefill-0:4:tool-output=empty",
    "prefill-0:5:net-health=Init",
    "decode-0:tls-mismatch",
    "decode-0:tool-missing=hostname",
]


async def _both(pool: SshPool, node_target: object, script: str) -> tuple[bytes, bytes]:
    """The script's stdout answered in-process (``bash -s``) and by real bash."""
    fast = await pool.run(node_target, "bash -s", input=script, timeout=30)  # type: ignore[arg-type]
    real = await pool.run(node_target, "/bin/bash -s", input=script, timeout=30)  # type: ignore[arg-type]
    assert fast.exit_status == real.exit_status == 0, (fast.stderr, real.stderr)
    return fast.stdout.encode(), real.stdout.encode()


@pytest.mark.slow
async def test_probe_and_ping_answers_match_real_bash_byte_for_byte(tmp_path: Path) -> None:
    sim = Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        faults=FAULTS,
        address_prefix="127.0.26",
        port=0,
        inproc=True,
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            for node in cluster.nodes:
                spec = _spec(node, 16, 20)
                script = build_script(spec, "n0nce")
                fast, real = await _both(pool, target(node), script)
                assert fast == real
                assert len(parse_frames(real, "n0nce")) == 150 + 2
                pings = ping_jobs(
                    [(0, "hccs_ping", "192.26.3.198"), (1, "ping", "a'b $(x)")], node.hccn_tool
                )
                script = framed_script(pings, "p1ng", tools=[node.hccn_tool, "no-such-tool"], cap=1)
                fast, real = await _both(pool, target(node), script)
                assert fast == real
                assert b"tool.no-such-tool 127" in fast
                # commands that are not fake tools run as real processes, in any group mix
                jobs = [
                    ("a.x", ["echo", "hi there"]),
                    ("b.y", ["sh", "-c", "echo e >&2; exit 3"]),
                    ("a.z", [node.hccn_tool, "-i", "0", "-link", "-g"]),
                    ("n.c", ["cat", "/nonexistent/file"]),
                ]
                script = framed_script(jobs, "m1x", tools=["sh"], cap=1, free=("n",))
                fast, real = await _both(pool, target(node), script)
                assert fast == real
                assert b"\n@@m1x b.y 3 err\ne\n" in fast
        # each node answered its three scripts in-process, and the "/bin/bash -s" ones in bash
        shells = [getattr(s.server.script_handler, "__self__", None) for s in sim.nodes]
        assert [sh.answered for sh in shells if isinstance(sh, InprocShell)] == [3, 3]


@pytest.mark.slow
async def test_a_sweep_sees_the_same_faults_either_way(tmp_path: Path) -> None:
    results = []
    for i, inproc in enumerate((False, True)):
        sim = Simulator(
            runbook_spec(),
            tmp_path / f"c{i}.toml",
            latency_ms=0,
            faults=FAULTS,
            address_prefix=f"127.0.{27 + i}",
            port=0,
            inproc=inproc,
        )
        async with sim:
            cluster = load(sim.cluster_file)
            async with pool_for(cluster) as pool:
                nodes = await sweep(pool, cluster, clock=lambda: 0.0)
        results.append(
            [(n.name, n.state, [(d.id, d.state, d.reasons) for d in n.devices]) for n in nodes]
        )
    assert results[0] == results[1]
    prefill = dict((d[0], d) for d in results[1][0][2])
    assert prefill[1][1] == "fail" and "DOWN" in " ".join(prefill[1][2])
    assert prefill[3][1] == "fail" and "unparsable output" in " ".join(prefill[3][2])
    assert prefill[4][1] == "fail" and "printed nothing" in " ".join(prefill[4][2])
    assert prefill[0][1] == "fail" and all("TLS" in r for r in prefill[0][2])  # decode-0 flipped


@pytest.mark.slow
async def test_a_hung_tool_times_out_the_same_way(tmp_path: Path) -> None:
    sim = Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        faults=["decode-0:tool-hang=npu-smi"],
        address_prefix="127.0.26",
        port=0,
        inproc=True,
    )
    async with sim:
        cluster = load(sim.cluster_file)
        node = cluster.nodes[1]
        async with pool_for(cluster) as pool:
            jobs = [
                ("d0.link", [node.hccn_tool, "-i", "0", "-link", "-g"]),
                ("n.info", [node.npu_smi, "info"]),
            ]
            script = framed_script(jobs, "h4ng", tools=[node.npu_smi], timeout=1)
            t = time.monotonic()
            fast, real = await _both(pool, target(node), script)
            assert time.monotonic() - t < 8
    assert fast == real
    frames = {f.key: f for f in parse_frames(fast, "h4ng")}
    assert frames["n.info"].rc == 124 and frames["d0.link"].rc == 0


async def test_other_scripts_still_run_in_bash(tmp_path: Path) -> None:
    sim = Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        address_prefix="127.0.26",
        port=0,
        inproc=True,
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            script = framed_script([("a.x", ["echo", "hi"])], "z", tools=["echo"])
            tampered = script.replace("wait\n", "wait; touch marker\n", 1)
            res = await pool.run(
                target(cluster.nodes[0]), "bash -s", input="echo $((6 * 7))\n" + tampered
            )
            assert res.stdout.startswith("42\n")
            assert b"a.x 0 err" in res.stdout.encode()
            assert (Path(sim.nodes[0].server.cwd or ".") / "marker").exists()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["d0", "d1", "n", "p7"]),
            st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 32),
    st.integers(1, 99),
)
def test_parse_gives_back_what_framed_script_was_given(
    groups: list[tuple[str, list[str]]], cap: int, timeout: int
) -> None:
    jobs = [(f"{g}.k{i}", argv) for i, (g, argv) in enumerate(groups)]
    script = framed_script(
        jobs, "abc123", tools=["t o", "x"], cap=cap, timeout=timeout, free=("n",)
    )
    parsed = parse_framed_script(script)
    if any("\n" in a for _, argv in jobs for a in argv):
        # a quoted newline spans lines: not recognised, so it runs in bash, never misread
        assert parsed is None or parsed.jobs == jobs
        return
    assert parsed is not None
    assert parsed.jobs == jobs and parsed.cap == cap and parsed.timeout == timeout
    assert parsed.tools == ["t o", "x"]
    assert parsed.free == (("n",) if any(g == "n" for g, _ in groups) else ())
    assert parse_framed_script(script + "rm -rf /tmp/x\n") is None


async def test_remembered_answers_follow_faults_and_file_edits(tmp_path: Path) -> None:
    from pdtui.cli import main

    sim = Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        address_prefix="127.0.26",
        port=0,
        inproc=True,
    )
    async with sim:
        cluster = load(sim.cluster_file)
        node = cluster.nodes[1]
        script = build_script(_spec(node, 16, 20), "s1")
        async with pool_for(cluster) as pool:

            async def frames() -> dict[str, object]:
                res = await pool.run(target(node), "bash -s", input=script, timeout=30)
                return {f.key: f for f in parse_frames(res.stdout.encode(), "s1")}

            first = await frames()
            assert first["d3.link"].stdout == "link status: UP\n"  # type: ignore[attr-defined]
            assert await frames() == first  # answered again from memory
            # `pdtui sim fault` while it runs: the next answer shows it
            assert (
                main(
                    [
                        "sim",
                        "fault",
                        str(sim.cluster_file),
                        "decode-0:3:link-down",
                        "decode-0:tool-missing=hostname",
                    ]
                )
                == 0
            )
            time.sleep(0.05)  # past the state file's 20 ms re-check
            after = await frames()
            assert after["d3.link"].stdout == "link status: DOWN\n"  # type: ignore[attr-defined]
            # the fake hostname is gone: the machine's own one answers, as it would in bash
            assert after["n.hostname_i"] != first["n.hostname_i"]
            # an edited hccn.conf is read again
            conf = Path(node.hccn_conf)
            conf.write_text(conf.read_text() + "# edited\n")
            assert (await frames())["n.hccn_conf"].stdout.endswith("# edited\n")  # type: ignore[attr-defined]
