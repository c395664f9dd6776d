"""Startup stages, fatal fingerprints and engine stats, on log lines as vLLM-Ascend prints them."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdtui.launch.logs import FINGERPRINTS, STAGE_ORDER, LogWatcher, parse_stats

STARTUP = [
    "(EngineCore_DP0 pid=311) INFO 09-08 02:52:10 [parallel_state.py:1165] rank 0 in world size "
    "16 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0",
    "(Worker_DP0_TP0_EP0 pid=400) INFO 09-08 02:52:20 [weight_utils.py:296] Using model weights "
    "format ['*.safetensors']",
    "Loading safetensors checkpoint shards:  40% Completed | 2/5 [00:03<00:04,  1.52s/it]",
    "(Worker_DP0_TP0_EP0 pid=400) INFO 09-08 02:53:20 [default_loader.py:267] Loading weights "
    "took 2.03 seconds",
    "(Worker_DP0_TP0_EP0 pid=400) INFO 09-08 02:53:21 [model_runner_v1.py:2705] Loading model "
    "weights took 15.2684 GB",
    "(EngineCore_DP0 pid=311) INFO 09-08 02:54:00 [kv_cache_utils.py:1087] GPU KV cache size: "
    "72,448 tokens",
    "(EngineCore_DP0 pid=311) INFO 09-08 02:54:10 [acl_graph.py:1] Calculated maximum supported "
    "batch sizes for ACL graph: 39",
    "Capturing CUDA graphs (decode, FULL): 100%|#####| 25/25 [00:09<00:00, 2.6it/s]",
    "(EngineCore_DP0 pid=311) INFO 09-08 02:54:29 [model_runner_v1.py:2417] Graph capturing "
    "finished in 19 secs, took 0.45 GiB",
    "(EngineCore_DP0 pid=311) INFO 09-08 02:54:30 [core.py:210] init engine (profile, create kv "
    "cache, warmup model) took 25.99 seconds",
    "(APIServer pid=1) INFO 09-08 02:54:59 [api_server.py:1880] Starting vLLM API server 0 on "
    "http://0.0.0.0:8000",
    "(APIServer pid=1) INFO:     Started server process [1]",
    "(APIServer pid=1) INFO:     Waiting for application startup.",
    "(APIServer pid=1) INFO:     Application startup complete.",
]

FATAL = {
    "hccl-timeout": "EI0006: Get_Socket_Timeout(EI0006): Getting socket times out.",
    "port-16666": "[hccl_socket.cc:100] listen on ip[192.168.20.160] and specific "
    "port[16666] fail. Please check the port status",
    "create-link": "Transport init error. Reason: [Create][DestLink]Create Dest error! "
    "creakLink para:rank[1]",
    "device-ip": "'device_ip' is not set correctly,must be set when multi Server or "
    "HCCL_INTRA_ROCE_ENABLE enabled",
    "ranktable-server-id": "AssertionError: Can't read the target server_id 10.0.0.9 and "
    "device_rank 0 from rank table",
    "vnic-sdid": "invalid host device id 65535",
    "kv-port": "zmq.error.ZMQError: Address already in use (addr='tcp://10.235.53.16:20012')",
    "mooncake-transfer": "Mooncake transfer failed for request chatcmpl-1",
    "waiting-remote-kv": "Request chatcmpl-1 is still in WAITING_FOR_REMOTE_KVS state.",
    "kv-oom": "ValueError: No available memory for the cache blocks. Try increasing "
    "gpu_memory_utilization",
    "api-died": "RuntimeError: Process ApiServer_0 (PID: 359) died with exit code 1",
    "port-in-use": "ERROR:    [Errno 98] error while attempting to bind on address "
    "('0.0.0.0', 8000): address already in use",
}


def watcher() -> LogWatcher:
    tick = itertools.count()
    return LogWatcher(clock=lambda: float(next(tick)))


def test_startup_lines_reach_every_stage_in_order_with_elapsed_times() -> None:
    w = watcher()
    seen: list[str] = []
    for line in STARTUP:
        w.feed(line)
        if w.stage and (not seen or seen[-1] != w.stage):
            seen.append(w.stage)
    assert seen == STAGE_ORDER
    assert w.ready and w.shards == (2, 5)
    # Elapsed times come from the lines' own stamps (02:52:10 .. 02:54:59); uvicorn's lines
    # have none and count from the stamped line before them.
    assert w.elapsed("weights") == 70 and w.elapsed("ready") == 169
    assert w.findings == []
    assert w.elapsed("graphs") == 139  # capture finished, not the config-time ACL graph line


def test_an_eager_start_skips_the_graphs_stage() -> None:
    w = watcher()
    for line in STARTUP:
        if "graph" not in line.lower():
            w.feed(line)
    assert [s for s in STAGE_ORDER if s in w.stages] == [
        "started",
        "loading",
        "weights",
        "kv_cache",
        "api",
        "ready",
    ]


@pytest.mark.parametrize(("key", "line"), FATAL.items(), ids=list(FATAL))
def test_each_fatal_fingerprint_is_recognised_with_a_hint(key: str, line: str) -> None:
    w = watcher()
    w.feed(line)
    assert [f.key for f in w.findings] == [key]
    assert w.findings[0].hint


OTHERS = {  # rows without a line in the real corpus (tests/fixtures/logs/real)
    "ranktable-dup": "Ranktable_Check_Failed(EI0014): The ranktable is invalid. Reason: [The IP "
    "is used repeatedly] device_ip 192.25.2.199 is already exist",
    "ranktable-env": "Please set path of rank_table to env variable "
    "DISAGGREGATED_PREFILL_RANK_TABLE_PATH",
    "ranktable-missing": "FileNotFoundError: [Errno 2] No such file or directory: "
    "'/etc/pdtui/ranktable.json'",
    "llmdd-link": "RuntimeError: Linking failed, comm id: 3",
    "engine-fatal": "EngineCore encountered a fatal error.",
    "nixl-engine-id": "RuntimeError: Remote NIXL agent engine ID mismatch. Expected x, got y",
    "proxy-all-failed": "All 3 attempts failed for /v1/completions.",
}


@pytest.mark.parametrize(("key", "line"), OTHERS.items(), ids=list(OTHERS))
def test_rows_without_a_real_sample_match_their_line(key: str, line: str) -> None:
    w = watcher()
    w.feed(line)
    assert [f.key for f in w.findings] == [key]


def test_every_fingerprint_has_a_sample() -> None:
    from pathlib import Path

    from pdtui.launch.logs import matches

    corpus = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "real"
    real = {
        f.key
        for p in corpus.glob("*.log")
        for ln in p.read_text().splitlines()
        for f in matches(ln)
    }
    assert {f.key for f in FINGERPRINTS} - real - set(FATAL) - set(OTHERS) == set()


def test_a_cann_code_is_matched_in_both_shapes_and_an_unknown_one_is_generic() -> None:
    from pdtui.launch.logs import cann_codes, matches

    old = "EL0004: [PID: 3132] 2025-10-15-16:32:16.417.528 Failed to allocate memory."
    new = "[PID: 749] 2025-12-29-03:16:15.787.356 Out_Of_Memory(EL0004): Failed to allocate"
    assert cann_codes(old) == cann_codes(new) == ["EL0004"]
    assert [f.key for f in matches(old)] == [f.key for f in matches(new)] == ["npu-oom"]
    assert [
        f.key for f in matches("EE1002: 2024-09-03-16:50:00.041.231 Stream synchronize timeout.")
    ] == ["cann-error"]


def test_engine_stats_lines_parse_and_a_stuck_decode_is_flagged() -> None:
    line = (
        "(APIServer pid=1) INFO 06-11 12:33:59 [loggers.py:259] Engine 000: Avg prompt "
        "throughput: 430.1 tokens/s, Avg generation throughput: 45.4 tokens/s, Running: 3 "
        "reqs, Waiting: 0 reqs, GPU KV cache usage: 40.0%, Prefix cache hit rate: 10.8%, "
        "External prefix cache hit rate: 6.3%"
    )
    s = parse_stats(line)
    assert s is not None and (s.running, s.waiting, s.kv_cache_pct) == (3, 0, 40.0)
    stuck = (
        "Engine 000: Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 0.0 "
        "tokens/s, Running: 0 reqs, Waiting: 1 reqs, Deferred: 0 reqs, GPU KV cache "
        "usage: 0.0%, Prefix cache hit rate: 0.0%"
    )
    w = watcher()
    for _ in range(3):
        w.feed(stuck)
    assert [f.key for f in w.findings] == ["stuck"]


@given(st.text(max_size=400))
def test_any_line_is_accepted(line: str) -> None:
    watcher().feed(line)


def test_the_readme_table_lists_every_finding_with_its_source() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Diagnosing a failed start", 1)[1].split("\n## ", 1)[0]
    for fp in FINGERPRINTS:
        row = next((ln for ln in section.splitlines() if ln.startswith(f"| `{fp.key}`")), "")
        assert fp.url and fp.url in row, fp.key


@given(
    st.lists(st.sampled_from(["EI0006", "weights took", "(EZ", "x", " ", "Avg"]), max_size=6),
    st.text(max_size=30),
)
@pytest.mark.slow
def test_the_literal_trie_matches_exactly_when_a_word_is_in_the_line(
    parts: list[str], noise: str
) -> None:
    from pdtui.launch.logs.lines import literal_regex

    words = ("EI0006", "EI0014", "weights took", "(EZ", "(EA", "Avg prompt throughput")
    line = noise.join(parts)
    assert bool(literal_regex(words).search(line)) == any(w in line for w in words)
