"""The live model's transitions from poll results, with an injected clock (no sleeps)."""

from __future__ import annotations

from pdtui.launch.control import ProcessStatus, State
from pdtui.launch.logs import Finding
from pdtui.launch.run import RunState, Status
from pdtui.live import LiveModel, step_views
from pdtui.live.model import Backend, sha256
from pdtui.npu.model import DeviceHealth, NodeHealth, PingResult, Raw
from pdtui.ranktable.sync import NodeCopy


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def proc(
    name: str,
    state: State,
    *,
    role: str = "decode",
    stage: str | None = None,
    pid: int | None = None,
    run: RunState = "running",
    started: float | None = 990.0,
    rc: int | None = None,
    finding: Finding | None = None,
) -> ProcessStatus:
    status = Status("decode-0", name, "/run", run, pid, "rid", started, rc)
    return ProcessStatus(
        name, role, "decode-0", "http://x", state, stage, pid, status, [finding] if finding else []
    )


def node(name: str, taken_at: float, *states: str, reachable: bool = True) -> NodeHealth:
    devices = [
        DeviceHealth(i, state=s, reasons=[] if s == "ok" else [f"link {s}"])  # type: ignore[arg-type]
        for i, s in enumerate(states)
    ]
    return NodeHealth(
        name,
        "A3",
        reachable,
        None if reachable else "timed out",
        devices,
        taken_at=taken_at,
        state="ok",
    )


def ping() -> PingResult:
    return PingResult(
        "a", 0, "b", 0, "10.0.0.2", 3, 3, 0.0, 0.1, True, None, Raw("ping", 0, "", "")
    )


def passing_run(model: LiveModel, clock: Clock, *keys: str) -> None:
    model.apply_run_started((k, k.title()) for k in keys)
    for k in keys:
        model.apply_step(k, k.title(), "running")
        clock.now += 1
        model.apply_step(k, k.title(), "passed", seconds=1.0)
    model.apply_run_finished()


def test_a_stopped_process_has_no_stage_age_or_pid() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.apply_processes([proc("decode-0", "ready", stage="ready", pid=42)])
    view = model.processes["decode-0"]
    assert (view.state, view.stage, view.pid, view.since) == ("ready", "ready", 42, 990.0)
    model.apply_processes([proc("decode-0", "stopped", stage="ready", pid=42, run="stopped")])
    view = model.processes["decode-0"]
    assert (view.state, view.stage, view.pid, view.since) == ("stopped", None, None, None)


def test_decode_stopped_after_a_passing_run_shows_stopped_not_passed() -> None:
    clock = Clock()
    model = LiveModel(clock)
    passing_run(model, clock, "prefill", "decode")
    model.apply_processes(
        [
            proc("decode-0", "ready", stage="ready", pid=7),
            proc("prefill-0", "ready", role="prefill", stage="ready", pid=8),
        ]
    )
    assert [(s.key, s.state, s.label) for s in step_views(model)] == [
        ("prefill", "passed", "ready"),
        ("decode", "passed", "ready"),
    ]
    clock.now += 30
    model.apply_processes([proc("decode-0", "stopped", run="stopped")])
    decode = step_views(model)[1]
    assert (decode.state, decode.label, decode.symbol) == ("failed", "stopped", "✗")
    assert decode.reason is not None and decode.reason.startswith("decode-0 stopped")


def test_a_step_known_only_from_the_run_carries_as_of() -> None:
    clock = Clock()
    model = LiveModel(clock)
    passing_run(model, clock, "doctor", "decode")
    finished = model.run_finished
    clock.now += 100
    doctor, decode = step_views(model)
    assert (doctor.state, doctor.as_of) == ("passed", finished)
    assert decode.as_of == finished  # no live poll of decode since the run
    model.apply_processes([proc("decode-0", "ready", stage="ready")])
    assert step_views(model)[1].as_of is None


def test_every_failure_has_a_reason() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.apply_run_started([("verify", "Verify")])
    model.apply_step("verify", "Verify", "failed")
    view = step_views(model)[0]
    assert view.state == "failed" and view.reason


def test_a_restart_never_shows_failed_on_the_way() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.apply_processes([proc("decode-0", "ready", stage="ready", pid=7, started=900.0)])
    model.expect_restart(["decode-0"])
    assert model.processes["decode-0"].state == "starting"
    # The old run, killed by the stop, exits with 143 and looks failed: not shown.
    clock.now += 2
    model.apply_processes([proc("decode-0", "failed", run="exited", rc=143, started=900.0)])
    assert (model.processes["decode-0"].state, model.processes["decode-0"].stage) == (
        "starting",
        "restarting",
    )
    # The new run appears: shown as it is.
    clock.now += 2
    model.apply_processes(
        [proc("decode-0", "starting", stage="loading weights", pid=9, started=1001.0)]
    )
    view = model.processes["decode-0"]
    assert (view.state, view.stage, view.pid) == ("starting", "loading weights", 9)


def test_a_restart_that_never_comes_shows_the_truth_after_the_grace() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.expect_restart(["decode-0"])
    clock.now += 500
    model.apply_processes([proc("decode-0", "failed", run="exited", rc=1, started=900.0)])
    view = model.processes["decode-0"]
    assert view.state == "failed" and view.reason == "exited with status 1 at stage start"


def test_a_failure_is_said_with_its_finding() -> None:
    clock = Clock()
    model = LiveModel(clock)
    f = Finding("hccl", "HCCL timed out", "start both within a minute", "EI0006", 1.0)
    model.apply_processes([proc("decode-0", "failed", run="exited", rc=1, finding=f)])
    assert model.processes["decode-0"].reason == "HCCL timed out: start both within a minute"


def test_a_runs_snapshot_never_hides_a_live_poll() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.apply_processes([proc("decode-0", "stopped", run="stopped")])
    model.apply_processes([proc("decode-0", "ready", stage="ready")], live=False)
    assert model.processes["decode-0"].state == "stopped"


def test_npu_sample_age_and_the_runbook_check_at_once() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.apply_npu([node("p", 950.0, "ok", "ok")], live=False)
    assert model.npu["p"].at == 950.0 and not model.npu["p"].live
    model.apply_npu([node("p", 900.0, "fail", "ok")])  # older than what we have: ignored
    assert model.npu["p"].health.devices[0].state == "ok"


def test_pings_are_cleared_when_health_changes_under_them() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.apply_npu([node("p", 1000.0, "ok", "ok")], pings=[ping()])
    assert len(model.pings) == 1 and model.pings_at == 1000.0
    clock.now += 15
    model.apply_npu([node("p", 1015.0, "ok", "ok")])
    assert len(model.pings) == 1  # same health: the pings still describe it
    model.apply_npu([node("p", 1030.0, "ok", "fail")])
    assert model.pings == [] and model.pings_at is None


def test_a_failing_device_after_a_passing_check_fails_the_network_step() -> None:
    clock = Clock()
    model = LiveModel(clock)
    passing_run(model, clock, "network")
    clock.now += 20
    model.apply_npu([node("p", clock.now, "ok", "fail")])
    view = step_views(model)[0]
    assert (view.state, view.reason) == ("failed", "1 not ok now; first p:1: link fail")


def test_an_unreachable_node_is_backed_off_and_comes_back() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.apply_npu([node("p", 1000.0, "unknown", reachable=False)])
    link = model.nodes["p"]
    assert (link.connected, link.error, link.failures) == (False, "timed out", 1)
    assert not model.node_due("p") and model.node_due("p", 1001.0)
    model.apply_reach("p", "timed out")
    model.apply_reach("p", "timed out")
    assert model.nodes["p"].retry_at == 1000.0 + 4.0
    model.apply_reach("p", None)
    assert model.node_due("p") and model.nodes["p"].failures == 0


def test_ranktable_copies_are_compared_with_what_the_runbook_pushed() -> None:
    clock = Clock()
    model = LiveModel(clock)
    passing_run(model, clock, "ranktable")
    model.apply_generated('{"a": 1}', pushed_to=["p", "d"])
    clock.now += 5
    model.apply_copies(
        [NodeCopy("p", "/rt.json", '{"a": 1}', "same"), NodeCopy("d", "/rt.json", None, "missing")]
    )
    assert {n: c.state for n, c in model.ranktable.items()} == {"p": "same", "d": "missing"}
    assert model.ranktable["p"].sha256 == sha256('{"a": 1}')
    view = step_views(model)[0]
    assert (view.state, view.label, view.reason) == ("failed", "missing", "d: the copy is missing")
    model.apply_copies([NodeCopy("d", "/rt.json", '{"a": 2}', "same")])
    assert model.ranktable["d"].state == "different"


def test_subscribers_hear_which_topics_changed() -> None:
    model = LiveModel(Clock())
    heard: list[frozenset[str]] = []
    stop = model.subscribe(heard.append)
    model.apply_proxy([Backend("proxy", True, "answers /healthcheck")])
    model.apply_reach("p", None)
    stop()
    model.apply_reach("p", "gone")
    assert heard == [frozenset({"proxy"}), frozenset({"nodes"})]
    assert model.proxy.at == 1000.0 and model.proxy.backends[0].ok


def test_a_running_step_shows_its_sub_step_and_elapsed_time() -> None:
    clock = Clock()
    model = LiveModel(clock)
    model.apply_run_started([("decode", "Decode")])
    model.apply_step("decode", "Decode", "running")
    model.apply_progress("decode", "decode-0: loading weights")
    clock.now += 41
    view = step_views(model)[0]
    assert (view.state, view.label) == ("running", "decode-0: loading weights 0:41")
