"""The whole runbook on the simulator: passes when healthy, fails at the right step."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pdtui.cluster import Cluster, load
from pdtui.launch.control import stop_all
from pdtui.live import LiveModel, step_views
from pdtui.runbook import Step, run_all, steps_for, verification, write_report
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for

Rig = Callable[..., "AsyncIterator[tuple[Cluster, SshPool]]"]


@pytest.fixture
async def rig(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[..., object]]:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    opened: list[tuple[Simulator, SshPool, Cluster]] = []

    async def start(faults: tuple[str, ...] = ()) -> tuple[Cluster, SshPool]:
        sim = Simulator(
            runbook_spec(),
            tmp_path / "c.toml",
            latency_ms=0,
            faults=list(faults),
            address_prefix="127.0.21",
            port=0,
        )
        await sim.start()
        cluster = load(sim.cluster_file)
        pool = pool_for(cluster)
        await pool.__aenter__()
        opened.append((sim, pool, cluster))
        return cluster, pool

    yield start
    for sim, pool, cluster in opened:
        await stop_all(pool, cluster, grace=5)
        await pool.close()
        await sim.stop()


@pytest.mark.slow
async def test_a_healthy_cluster_passes_every_step_and_reports(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = await rig()
    assert [s.key for s in steps_for(cluster)] == [
        "network",
        "ranktable",
        "doctor",
        "prefill",
        "decode",
        "proxy",
        "verify",
        "answer",
    ]
    seen: list[tuple[str, str]] = []
    commands: list[str] = []
    pool.add_listener(lambda r: commands.append(r.command))
    decode_started_before_prefill_ready: list[bool] = []
    progress: list[str] = []

    def on_step(s: Step) -> None:
        seen.append((s.key, s.state))
        if s.progress:
            progress.append(s.progress)
        if (s.key, s.state) == ("prefill", "passed"):
            decode_started_before_prefill_ready.append(
                any("# start decode-0" in c for c in commands)
            )

    model = LiveModel()
    report = await run_all(
        pool,
        cluster,
        verification(pool, cluster),
        on_step=on_step,
        ready_timeout=60,
        ranktable_file=tmp_path / "report" / "ranktable.json",
        model=model,
    )
    assert report.passed, [(s.key, s.state, s.reason) for s in report.steps]
    # Prefill and decode start together; each step shows the stage its processes reached.
    assert decode_started_before_prefill_ready == [True]
    assert any(p.startswith("decode-0: ") for p in progress)
    # The network step counts the nodes that answered, then pings.
    assert progress[:3] == [
        "0 of 2 nodes answered",
        "1 of 2 nodes answered",
        "2 of 2 nodes answered; pinging peers",
    ]
    # The live model was fed: every step passed, known "as of" the run, and what they learned.
    views = step_views(model)
    assert [(v.key, v.state) for v in views] == [(s.key, s.state) for s in report.steps]
    assert all(v.as_of == model.run_finished for v in views)
    assert sorted(model.npu) == ["decode-0", "prefill-0"] and model.pings
    assert model.generated is not None and model.generated.pushed_to == ("prefill-0", "decode-0")
    assert {p.state for p in model.processes.values()} == {"ready"}
    assert ("verify", "running") in seen and ("verify", "passed") in seen
    assert seen[-1] == ("answer", "passed")
    assert report.direct is not None and report.direct["process"] == "prefill-0"
    assert report.verification is not None and report.verification["status"] == 200
    assert report.direct["text"].strip() == report.verification["text"].strip()
    assert report.verification["completion_tokens"] > 0
    md, js = write_report(report, tmp_path / "report")
    text = md.read_text()
    assert "Result: **passed**" in text and "prefill-0   +  +" in text
    data = json.loads(js.read_text())
    assert data["passed"] is True and "prefill-0" in data["grid"]
    assert json.loads((tmp_path / "report" / "ranktable.json").read_text())["server_count"] == "2"


@pytest.mark.slow
async def test_a_broken_kv_link_fails_at_verification_with_the_decode_waiting_reason(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = await rig(("decode-0:kv-link-broken",))
    report = await run_all(pool, cluster, verification(pool, cluster), ready_timeout=60)
    failed = report.failed_step
    assert failed is not None and failed.key == "verify"
    assert "decode is waiting for KV that does not arrive" in (failed.reason or "")


@pytest.mark.slow
async def test_a_link_down_fails_at_the_network_step_and_launches_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = await rig(("decode-0:3:link-down",))
    report = await run_all(pool, cluster, verification(pool, cluster), ready_timeout=60)
    failed = report.failed_step
    assert failed is not None and failed.key == "network"
    assert "decode-0:3" in (failed.reason or "") and "link DOWN" in (failed.reason or "")
    assert (failed.reason or "").startswith("1 device not ok; first decode-0:3")
    assert [s.state for s in report.steps[1:]] == ["skipped"] * 7
    assert report.steps[-1].reason == "not run: NPU network and pings failed"


@pytest.mark.slow
async def test_a_doctor_error_stops_the_runbook_before_launch(rig) -> None:  # type: ignore[no-untyped-def]
    import socket

    cluster, pool = await rig()
    decode = next(i for i in cluster.instances if i.role == "decode")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind((cluster.node(decode.node).host, decode.port))
        taken.listen()
        report = await run_all(pool, cluster, verification(pool, cluster), ready_timeout=60)
    failed = report.failed_step
    assert failed is not None and failed.key == "doctor", [(s.key, s.state) for s in report.steps]
    assert (failed.reason or "").startswith("port-in-use: node decode-0: port")
    assert "fix:" in (failed.reason or "")
    assert [s.state for s in report.steps if s.key in ("prefill", "decode")] == ["skipped"] * 2


@pytest.mark.slow
async def test_garbled_kv_fails_the_answer_step_with_both_texts(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = await rig(("decode-0:kv-garbled",))
    report = await run_all(pool, cluster, verification(pool, cluster), ready_timeout=60)
    assert [(s.key, s.state) for s in report.steps][-2:] == [
        ("verify", "passed"),
        ("answer", "failed"),
    ]
    failed = report.failed_step
    assert failed is not None and "differs from the prefill instance's own" in (failed.reason or "")
    assert report.verification is not None and report.direct is not None
    proxied, alone = report.verification["text"].strip(), report.direct["text"].strip()
    assert proxied and alone and proxied != alone
    assert failed.details == [f"through the proxy: {proxied!r}", f"prefill alone:     {alone!r}"]
