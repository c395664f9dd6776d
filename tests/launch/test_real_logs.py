"""The recogniser on real logs: 45 verbatim excerpts quoted in public issues (each file's
first line names its source), with what each must give: kind, final stage, the stages in the
order reached (of the last start in the file), the findings (ids, in report order).

The fake vLLM's own output does not count here; this is the ground truth it imitates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pdtui.launch.logs import GREP_KEYS, STAGES, matches
from pdtui.launch.logs.diagnose import FileReport, diagnose_file

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "real"

# name: (kind, final stage, stages in order, finding ids)
EXPECTED: dict[str, tuple[str, str | None, list[str], list[str]]] = {
    # clean starts: V0 and V1, eager and graph mode, TP-only and DP
    "a3-dp2-graph-capture-9071": ("vllm", "graphs", ["graphs"], []),
    "api-server-start-routes-2630": ("vllm", "api", ["api"], []),
    "ascend-api-routes-lmcache-3968": ("vllm", "api", ["api"], []),
    "dp-workers-weights-7384": ("vllm", "weights", ["weights"], []),
    "dp4-aclgraph-moe-2125": ("vllm", "graphs", ["loading", "weights", "kv_cache", "graphs"], []),
    "pd-eager-init-engine-api-5044": ("vllm", "api", ["started", "kv_cache", "api"], []),
    "pd-eager-weights-kv-5044": ("vllm", "kv_cache", ["loading", "weights", "kv_cache"], []),
    "v0-cuda-graph-capture-11349": ("vllm", "graphs", ["graphs"], []),
    "v0-npu-blocks-1305": ("vllm", "kv_cache", ["weights", "kv_cache"], []),
    "v1-graph-capture-to-engine-glmv-204": ("vllm", "graphs", ["kv_cache", "graphs"], []),
    "v1-vllmworker-weights-kv-21443": ("vllm", "kv_cache", ["loading", "weights", "kv_cache"], []),
    # a restart inside one log: the port clash belongs to the first start
    "port-in-use-api-restart-7514": ("vllm", "started", ["started"], ["port-in-use"]),
    # field-failures rows with a log form
    "ascend-transport-importerror-6949": ("vllm", None, [], ["ascend-transport"]),
    "mooncake-corrupted-size-5609": ("vllm", None, [], ["mooncake-jemalloc"]),
    "zmq-kv-port-in-use-8938": ("vllm", None, [], ["kv-port"]),
    "mooncake-103900-5635": ("vllm", None, [], ["mooncake-connect", "mooncake-transfer"]),
    "connect-timeout-103902-7401": ("vllm", None, [], ["connect-timeout", "mooncake-transfer"]),
    "sync-batch-timeout-7846": ("vllm", None, [], ["transfer-timeout", "mooncake-transfer"]),
    "waiting-for-remote-kvs-5660": ("vllm", None, [], ["waiting-remote-kv"]),
    "create-dest-error-2643": ("vllm", None, [], ["create-link"]),
    "remote-rank-indexerror-16723": ("vllm", None, [], ["kv-topology"]),
    "waiting-core-engine-hami-261": ("vllm", None, [], ["engine-waiting"]),
    # CANN error codes in both shapes
    "cann-EI0006-classic-shape-486": ("vllm", None, [], ["hccl-timeout", "cann-error"]),
    "cann-EI0006-getsocket-shape-5461": ("vllm", None, [], ["hccl-timeout"]),
    "cann-EL0004-enginecore-3479": ("vllm", None, [], ["npu-oom"]),
    # plog excerpts
    "plog-device-ip-not-set-7711": ("plog", None, [], ["device-ip"]),
    "plog-socket-establish-timeout-9447": ("plog", None, [], ["hccl-timeout"]),
    "plog-port16666-listen-fail-4725": ("plog", None, [], ["port-16666", "hccl-init"]),
    "plog-port16666-and-socket-timeout-1955": ("plog", None, [], ["port-16666", "hccl-timeout"]),
    "plog-ranktable-devid-mismatch-2618": ("plog", None, [], ["ranktable-devid"]),
    # every form of "port already in use"
    "port-in-use-open-port-and-tcpstore-11617": ("vllm", None, [], ["port-in-use", "store-port"]),
    "torch-store-port-in-use-vlmr1-289": ("vllm", None, [], ["store-port"]),
    # memory: KV cache and device, old and new wordings
    "v0-no-cache-blocks-10439": ("vllm", None, [], ["kv-oom"]),
    "v1-no-cache-blocks-dp-27508": ("vllm", None, [], ["kv-oom"]),
    "ascend-negative-kv-memory-9372": ("vllm", "weights", ["weights"], ["kv-oom"]),
    "ascend-available-memory-zero-4404": ("vllm", None, [], ["npu-memory-zero"]),
    "v0-npu-oom-mqllmengine-19": ("vllm", None, [], ["npu-oom", "engine-init"]),
    "npu-oom-tp2-1987": ("vllm", None, [], ["npu-oom"]),
    # engine start failures, V1 and V0 (generic when nothing more specific is there)
    "v1-enginecore-failed-nokvmem-17431": ("vllm", None, [], ["engine-init"]),
    "v1-engine-core-init-failed-23176": ("vllm", None, [], ["engine-init"]),
    "v1-enginecore-failed-err00100-2258": ("vllm", None, [], ["cann-error", "engine-init"]),
    "v0-mqllmengine-err00100-1047": ("vllm", None, [], ["cann-error", "engine-init"]),
    "engine-core-init-failed-npu-gpustack-2723": ("vllm", None, [], ["engine-init", "cann-error"]),
    # proxy logs
    "proxy-attempt1-400-14087": ("proxy", None, [], ["proxy-400"]),
    "proxy-attempt1-400-prose-2649": ("proxy", None, [], ["proxy-400"]),
}


def _result(name: str) -> tuple[FileReport, tuple[str, str | None, list[str], list[str]]]:
    report = diagnose_file(str(CORPUS / f"{name}.log"))
    tl = report.watcher.timeline
    got = (
        report.kind,
        tl.stage,
        [k for k, _m in tl.order()],
        [f.key for f in report.watcher.all_findings],
    )
    return report, got


def test_the_corpus_is_the_expected_set_of_sourced_files() -> None:
    files = sorted(p.stem for p in CORPUS.glob("*.log"))
    assert files == sorted(EXPECTED)
    for name in files:
        head = (CORPUS / f"{name}.log").read_text(encoding="utf-8").splitlines()[:2]
        assert head[0].startswith("# source: https://"), name
        assert head[1].startswith("# what: "), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_real_log_gives_its_expected_stage_and_findings(name: str) -> None:
    _report, got = _result(name)
    assert got == EXPECTED[name]


def test_config_time_acl_graph_lines_are_not_capture_and_capture_has_its_times() -> None:
    report, _ = _result("dp4-aclgraph-moe-2125")
    tl = report.watcher.timeline
    assert tl.stages["graphs"].line == 18  # "Graph capturing finished", not lines 20-24
    report, _ = _result("a3-dp2-graph-capture-9071")
    cap = report.watcher.timeline.capture
    assert (cap["started"].line, cap["finished"].line) == (3, 8)
    assert round(cap["finished"].at - cap["started"].at) == 78  # 11:38:06 -> 11:39:24
    report, _ = _result("v0-cuda-graph-capture-11349")
    cap = report.watcher.timeline.capture
    assert round(cap["finished"].at - cap["started"].at) == 14


def test_dp_ranks_are_reported_each_and_overall() -> None:
    report, _ = _result("dp4-aclgraph-moe-2125")
    ranks = report.watcher.timeline.ranks
    assert ranks["EngineCore_2"]["graphs"].line == 18
    assert {r for r in ranks if "weights" in ranks[r]} == {
        "EngineCore_0",
        "EngineCore_1",
        "EngineCore_2",
        "EngineCore_3",
    }
    assert report.watcher.timeline.stages["weights"].stamp == "08-13 02:23:37"
    report, _ = _result("dp-workers-weights-7384")
    assert len(report.watcher.timeline.ranks) == 8
    report, _ = _result("a3-dp2-graph-capture-9071")
    assert "EngineCore_DP1" not in report.watcher.timeline.ranks["Worker_DP0_TP0_EP0"]
    assert report.watcher.timeline.ranks["Worker_DP0_TP0_EP0"]["graphs"].line == 8


@pytest.mark.parametrize(
    ("name", "line", "stamp"),
    [
        ("zmq-kv-port-in-use-8938", 3, "2026-04-25 10:01:17.340"),
        ("plog-port16666-listen-fail-4725", 3, "2025-12-04 14:46:07.911"),
        ("plog-ranktable-devid-mismatch-2618", 3, "2025-08-27 20:10:17.012"),
        ("cann-EI0006-getsocket-shape-5461", 3, "2025-12-29 03:16:15.787"),
        ("connect-timeout-103902-7401", 3, "2026-06-08 14:45:44.404"),
        ("sync-batch-timeout-7846", 6, "03-31 02:49:30.617"),
        ("v0-npu-oom-mqllmengine-19", 3, "03-05 07:15:39"),
        ("v1-enginecore-failed-err00100-2258", 5, "08-04 03:13:46"),
    ],
)
def test_findings_carry_their_line_and_the_logs_own_time_stamp(
    name: str, line: int, stamp: str
) -> None:
    from pdtui.launch.logs import stamp_of

    report, _ = _result(name)
    first = report.watcher.all_findings[0]
    assert first.lineno == line
    got = stamp_of(first.line)
    assert got is not None and got.text == stamp


def test_every_recognised_corpus_line_survives_the_status_grep() -> None:
    """``pdtui status`` reads a long log through ``grep -F GREP_KEYS``: a line the
    recogniser uses must hold one of them."""
    missed = []
    for path in CORPUS.glob("*.log"):
        for line in path.read_text(encoding="utf-8").splitlines()[2:]:
            used = matches(line) or any(p.search(line) for _k, _t, p in STAGES)
            if used and not any(k in line for k in GREP_KEYS):
                missed.append(f"{path.stem}: {line[:80]}")
    assert missed == []


def test_real_corpus_summary(summary_line: Callable[[str], None]) -> None:
    good = sum(1 for name, want in EXPECTED.items() if _result(name)[1] == want)
    summary_line(f"real corpus: {good}/{len(EXPECTED)} files as expected")
    assert good == len(EXPECTED)
