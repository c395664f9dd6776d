"""Reading vLLM and proxy logs: startup stages, known fatal errors, engine stats.

The patterns match lines as vLLM and vLLM-Ascend print them: startup progress, known fatal
errors and the periodic "Avg prompt throughput" engine-stats line. A line goes through
``LogWatcher.feed``; the watcher keeps the stage reached (with the time each was first seen),
every fatal fingerprint matched (with a plain-language hint) and the last engine stats.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

#: Startup stages in order; each is reached when its pattern first matches.
STAGES: list[tuple[str, str, re.Pattern[str]]] = [
    ("started", "process started",
     re.compile(r"is assigned as DP rank|Using model weights format|vLLM API server version|"
                r"non-default args|Initializing a V1 LLM engine")),
    ("loading", "loading weights",
     re.compile(r"Loading safetensors checkpoint shards|Using model weights format")),
    ("weights", "weights loaded",
     re.compile(r"Loading (?:model )?weights took")),
    ("kv_cache", "KV cache sized",
     re.compile(r"GPU KV cache size: [\d,]+ tokens|Available KV cache memory")),
    ("graphs", "graphs captured",
     re.compile(r"Graph capturing finished|init engine \(profile, create kv cache, warmup model\)"
                r" took|aclgraph|ACL graph")),
    ("api", "API server up",
     re.compile(r"Starting vLLM API server \d+ on|Available routes are:|Uvicorn running on")),
    ("ready", "ready",
     re.compile(r"Application startup complete\.")),
]
STAGE_ORDER = [s[0] for s in STAGES]
STAGE_TITLES = {s[0]: s[1] for s in STAGES}

_SHARDS = re.compile(r"Loading safetensors checkpoint shards:\s+(\d+)% Completed \| (\d+)/(\d+)")


@dataclass(frozen=True)
class Fingerprint:
    key: str
    pattern: re.Pattern[str]
    meaning: str
    hint: str


FINGERPRINTS: list[Fingerprint] = [
    Fingerprint("hccl-timeout",
                re.compile(r"Get_Socket_Timeout\(EI0006\)|Communication_Error_Get_Socket\(EI0006\)"
                           r"|wait socket establish timeout"),
                "HCCL rendezvous timed out",
                "a peer did not start within HCCL_CONNECT_TIMEOUT (120 s), or the link is down, "
                "on another subnet or has a different TLS switch: run the NPU check (F3) and "
                "start prefill and decode within a minute of each other"),
    Fingerprint("port-16666",
                re.compile(r"listen on ip\[[^\]]*\] and specific port\[16666\] fail"),
                "device port 16666 is in use",
                "another process holds this NPU: look at npu-smi info's process table and stop it"),
    Fingerprint("create-link",
                re.compile(r"Transport init error|Create Dest error"),
                "HCCL could not build a cross-rank link",
                "check the devices' link and net health and the ranks per die (NPU grid)"),
    Fingerprint("device-ip",
                re.compile(r"'device_ip' is not set correctly"),
                "device_ip is not set",
                "/etc/hccn.conf is missing or not mounted into the container "
                "(-v /etc/hccn.conf:/etc/hccn.conf)"),
    Fingerprint("ranktable-dup",
                re.compile(r"Ranktable_Check_Failed\(EI0014\)|device_ip .* is already exist"),
                "the same NPU is used twice",
                "two processes share a device: give each its own devices or listen_port"),
    Fingerprint("ranktable-env",
                re.compile(r"Please set path of rank_table to env variable "
                           r"DISAGGREGATED_PREFILL_RANK_TABLE_PATH"),
                "DISAGGREGATED_PREFILL_RANK_TABLE_PATH is not set",
                "set it in [env] to the ranktable path and push the ranktable (F4)"),
    Fingerprint("ranktable-missing",
                re.compile(r"No such file or directory: '[^']*rank_?table[^']*'"),
                "the ranktable file is missing on this node",
                "generate and push it: pdtui ranktable generate/push, or g then p in the "
                "Ranktable view (F4)"),
    Fingerprint("ranktable-server-id",
                re.compile(r"Can't read the target server_id"),
                "this node's devices are not in the ranktable",
                "the ranktable's server_id must be the IP vLLM picks (VLLM_HOST_IP) and its "
                "device_ids the visible devices: lint it (pdtui ranktable lint --cluster)"),
    Fingerprint("vnic-sdid",
                re.compile(r"invalid host device id 65535|devdrv_get_vnic_ip_by_sdid fail"),
                "an A3 link was built without super_device_id",
                "regenerate the ranktable: A3 entries need super_pod_id and super_device_id"),
    Fingerprint("kv-port",
                re.compile(r"ZMQError: Address already in use"),
                "a kv_port is already in use",
                "give each instance its own kv_port, >= 36000 on 16-NPU nodes (above "
                "AscendDirectTransport's random range)"),
    Fingerprint("mooncake-connect",
                re.compile(r"Connect timeout to:|status: 10390[02]|Failed to connect to target"),
                "Mooncake could not connect to the peer",
                "check remote_host (VLLM_HOST_IP), CANN >= 8.3.RC1, use_ascend_direct, and "
                "ASCEND_CONNECT_TIMEOUT"),
    Fingerprint("mooncake-transfer",
                re.compile(r"Mooncake transfer failed|Sync batch data transfer timeout|"
                           r"Transfer slice failed"),
                "a KV transfer failed",
                "the KV link between prefill and decode is broken or slow: check the NPU ping "
                "matrix and ASCEND_TRANSFER_TIMEOUT"),
    Fingerprint("llmdd-link",
                re.compile(r"Linking failed, comm id"),
                "LLMDataDist could not link prefill and decode",
                "check the ranktable (server_id, device_ip) and the NPU ping matrix"),
    Fingerprint("waiting-remote-kv",
                re.compile(r"still in WAITING_FOR_REMOTE_KVS"),
                "decode is waiting for KV that does not arrive",
                "the prefiller's KV never reached decode: check kv_port reachability, "
                "remote_host and the connector logs on the prefiller"),
    Fingerprint("kv-oom",
                re.compile(r"No available memory for the cache blocks|"
                           r"Available KV cache memory: -"),
                "no memory left for the KV cache",
                "raise --gpu-memory-utilization or lower --max-model-len / --max-num-seqs"),
    Fingerprint("npu-oom",
                re.compile(r"NPU out of memory|halMemAlloc failed"),
                "NPU out of memory",
                "lower --gpu-memory-utilization; linking needs ~2 MB HBM per link on prefill"),
    Fingerprint("api-died",
                re.compile(r"Process ApiServer_\d+ \(PID: \d+\) died with exit code"),
                "the API server process died during startup",
                "read the lines above it for the first error"),
    Fingerprint("engine-fatal",
                re.compile(r"EngineCore encountered a fatal error"),
                "the engine crashed",
                "read the traceback above it; restart the instance"),
    Fingerprint("engine-init",
                re.compile(r"Engine core initialization failed|EngineCore failed to start"),
                "the engine failed to start",
                "the first error above it is the cause"),
    Fingerprint("port-in-use",
                re.compile(r"\[Errno 98\]"),
                "the HTTP port is already in use",
                "stop whatever listens on the port (ss -ltnp) or choose another port"),
]

#: Literal pieces of every stage and fingerprint line, for ``grep -F`` on the node: reading a
#: long-running server's status needs these lines from the whole log, not its last megabytes.
GREP_KEYS: tuple[str, ...] = (
    # stages
    "is assigned as DP rank", "Using model weights format", "vLLM API server version",
    "non-default args", "Initializing a V1 LLM engine", "Loading safetensors checkpoint shards",
    "weights took", "GPU KV cache size", "Available KV cache memory",
    "Graph capturing finished", "init engine (profile", "aclgraph", "ACL graph",
    "Starting vLLM API server", "Available routes are", "Uvicorn running on",
    "Application startup complete",
    # fingerprints
    "EI0006", "wait socket establish timeout", "port[16666]", "Transport init error",
    "Create Dest error", "'device_ip' is not set correctly", "Ranktable_Check_Failed",
    "is already exist", "Please set path of rank_table", "No such file or directory",
    "Can't read the target server_id", "invalid host device id 65535",
    "devdrv_get_vnic_ip_by_sdid", "ZMQError: Address already in use", "Connect timeout to:",
    "status: 10390", "Failed to connect to target", "Mooncake transfer failed",
    "Sync batch data transfer timeout", "Transfer slice failed", "Linking failed, comm id",
    "WAITING_FOR_REMOTE_KVS", "No available memory for the cache blocks", "NPU out of memory",
    "halMemAlloc failed", "died with exit code", "EngineCore encountered a fatal error",
    "Engine core initialization failed", "EngineCore failed to start", "[Errno 98]",
)
STATS_KEY = "Avg prompt throughput"

#: Fingerprints that only say that something failed; the cause is another one.
GENERIC = {"engine-init", "engine-fatal", "api-died"}

_STATS = re.compile(
    r"Avg prompt throughput: ([\d.]+) tokens/s, Avg generation throughput: ([\d.]+) tokens/s, "
    r"Running: (\d+) reqs, (?:Swapped: \d+ reqs, )?Waiting: (\d+) reqs"
    r"(?:, Deferred: (\d+) reqs)?, (?:GPU )?KV cache usage: ([\d.]+)%"
)


_STAMP = re.compile(r"\b(?:INFO|WARNING|ERROR|DEBUG|CRITICAL) (\d\d)-(\d\d) "
                    r"(\d\d):(\d\d):(\d\d)\b")


def line_time(line: str, default: float) -> float:
    """The time a vLLM log line carries (``INFO 09-08 02:54:59``), else ``default``.

    The year is not in the line: the one that puts the stamp nearest ``default`` is used.
    """
    m = _STAMP.search(line)
    if m is None:
        return default
    import datetime as dt
    import time

    month, day, hh, mm, ss = (int(x) for x in m.groups())
    base = dt.datetime.fromtimestamp(default if default >= 0 else time.time())
    ref = base.timestamp()
    best: float | None = None
    for year in (base.year - 1, base.year, base.year + 1):
        try:
            t = dt.datetime(year, month, day, hh, mm, ss).timestamp()
        except ValueError:
            continue
        if best is None or abs(t - ref) < abs(best - ref):
            best = t
    return default if best is None else best


@dataclass
class EngineStats:
    prompt_tps: float
    generation_tps: float
    running: int
    waiting: int
    kv_cache_pct: float


def parse_stats(line: str) -> EngineStats | None:
    m = _STATS.search(line)
    if m is None:
        return None
    return EngineStats(float(m.group(1)), float(m.group(2)), int(m.group(3)), int(m.group(4)),
                       float(m.group(6)))


@dataclass
class Finding:
    """A fatal fingerprint seen in the log."""

    key: str
    meaning: str
    hint: str
    line: str
    at: float


@dataclass
class LogWatcher:
    """Follows one instance's log: stages, fingerprints, engine stats."""

    clock: Callable[[], float]
    started_at: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    stats: EngineStats | None = None
    shards: tuple[int, int] | None = None
    stuck_intervals: int = 0
    _last_stamp: float | None = None

    @property
    def stage(self) -> str | None:
        reached = [s for s in STAGE_ORDER if s in self.stages]
        return reached[-1] if reached else None

    @property
    def ready(self) -> bool:
        return "ready" in self.stages

    def feed(self, line: str) -> None:
        now = self._time_of(line)
        if self.started_at is None:
            self.started_at = now
        for key, _title, pattern in STAGES:
            if key not in self.stages and pattern.search(line):
                self.stages[key] = now
        m = _SHARDS.search(line)
        if m:
            self.shards = (int(m.group(2)), int(m.group(3)))
        self._note_fingerprints(line, now)
        stats = parse_stats(line)
        if stats is not None:
            self._note_stats(stats, line, now)

    def _time_of(self, line: str) -> float:
        """The line's stamp; lines without one (uvicorn's) count from the last stamped line
        before them, or from the clock."""
        stamped = line_time(line, -1.0)
        if stamped >= 0:
            self._last_stamp = stamped
            return stamped
        return self._last_stamp or self.clock()

    def _note_fingerprints(self, line: str, now: float) -> None:
        for fp in FINGERPRINTS:
            if fp.pattern.search(line) and not any(f.key == fp.key for f in self.findings):
                found = Finding(fp.key, fp.meaning, fp.hint, line.strip()[:300], now)
                if fp.key in GENERIC:
                    self.findings.append(found)
                else:  # a specific cause goes before the generic "it failed" lines
                    at = next((i for i, f in enumerate(self.findings) if f.key in GENERIC),
                              len(self.findings))
                    self.findings.insert(at, found)

    def _note_stats(self, stats: EngineStats, line: str, now: float) -> None:
        """Keeps the last stats; three intervals in a row with requests waiting and nothing
        running or generated add the "stuck" finding."""
        self.stats = stats
        stuck = stats.waiting > 0 and stats.running == 0 and stats.generation_tps == 0
        self.stuck_intervals = self.stuck_intervals + 1 if stuck else 0
        if self.stuck_intervals >= 3 and not any(f.key == "stuck" for f in self.findings):
            self.findings.append(Finding(
                "stuck", "requests wait and nothing runs",
                "decode is probably waiting for remote KV (WAITING_FOR_REMOTE_KVS): check "
                "the KV link and the prefiller's log", line.strip()[:300], now))

    def elapsed(self, stage: str) -> float | None:
        """Seconds from the first line to ``stage``."""
        if stage not in self.stages or self.started_at is None:
            return None
        return self.stages[stage] - self.started_at
