"""Known failures: one row per failure, with a stable id, what it means, its fix and a source.

A row matches by pattern and, for CANN, by error code in either shape CANN prints it
(``EI0006: [PID: 1] 2025-...`` on older CANN, ``Get_Socket_Timeout(EI0006): ...`` on newer;
the plog's own records too). Ids are stable: tests, ``--json`` output and the README use
them. ``GENERIC`` rows only say that something failed; a specific row says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Severity = Literal["fatal", "warning"]
_VA = "https://github.com/vllm-project/vllm-ascend/"
_V = "https://github.com/vllm-project/vllm/"


@dataclass(frozen=True)
class Fingerprint:
    key: str
    pattern: re.Pattern[str]
    meaning: str
    hint: str
    codes: tuple[str, ...] = ()  # CANN error codes (EI0006, ...) that mean this failure
    severity: Severity = "fatal"
    url: str = ""  # a public report of it
    min_count: int = 1  # lines needed before it counts (messages that repeat while waiting)


def _fp(
    key: str,
    pattern: str,
    meaning: str,
    hint: str,
    url: str,
    *,
    codes: tuple[str, ...] = (),
    severity: Severity = "fatal",
    min_count: int = 1,
) -> Fingerprint:
    return Fingerprint(key, re.compile(pattern), meaning, hint, codes, severity, url, min_count)


FINGERPRINTS: list[Fingerprint] = [
    _fp(
        "hccl-timeout",
        r"Get_Socket_Timeout\(EI0006\)|Communication_Error_Get_Socket\(EI0006\)"
        r"|wait socket establish timeout",
        "HCCL rendezvous timed out",
        "a peer did not start within HCCL_CONNECT_TIMEOUT (120 s), or the link is down, on "
        "another subnet or has a different TLS switch: run the NPU check (F3), start prefill "
        "and decode within a minute of each other, or raise HCCL_CONNECT_TIMEOUT",
        _VA + "issues/9447",
        codes=("EI0006",),
    ),
    _fp(
        "port-16666",
        r"listen on ip\[[^\]]*\] and specific port\[\d+\] fail",
        "device port 16666 is in use",
        "another process holds this NPU (HCCL listens on 16666): look at npu-smi info's "
        "process table and stop it, or give each instance its own devices",
        _VA + "issues/4725",
    ),
    _fp(
        "create-link",
        r"Transport init error|Create Dest error|hrtRaAiQpCreate|please change new package",
        "HCCL could not build a cross-rank link",
        "check the devices' link and net health and the ranks per die (NPU grid); "
        "'hrtRaAiQpCreate ... change new package' means the driver and firmware are too old "
        "for this CANN: upgrade them",
        _VA + "issues/2643",
    ),
    _fp(
        "device-ip",
        r"'device[ _]ip' is not set correctly",
        "device_ip is not set",
        "/etc/hccn.conf is missing or not mounted into the container "
        "(-v /etc/hccn.conf:/etc/hccn.conf)",
        _VA + "issues/7711",
    ),
    _fp(
        "ranktable-dup",
        r"Ranktable_Check_Failed\(EI0014\)|device_ip .* is already exist",
        "the same NPU is used twice",
        "two processes share a device: give each its own devices or listen_port",
        _VA + "pull/2080",
        codes=("EI0014",),
    ),
    _fp(
        "ranktable-env",
        r"Please set path of rank_table to env variable DISAGGREGATED_PREFILL_RANK_TABLE_PATH",
        "DISAGGREGATED_PREFILL_RANK_TABLE_PATH is not set",
        "set it in [env] to the ranktable path and push the ranktable (F4)",
        _VA + "issues/2618",
    ),
    _fp(
        "ranktable-missing",
        r"No such file or directory: '[^']*rank_?table[^']*'",
        "the ranktable file is missing on this node",
        "generate and push it: pdtui ranktable generate/push, or g then p in the Ranktable "
        "view (F4)",
        _VA + "issues/2618",
    ),
    _fp(
        "ranktable-server-id",
        r"Can't read the target server_id",
        "this node's devices are not in the ranktable",
        "the ranktable's server_id must be the IP vLLM picks (VLLM_HOST_IP) and its "
        "device_ids the visible devices: lint it (pdtui ranktable lint --cluster)",
        _VA + "issues/2618",
    ),
    _fp(
        "ranktable-devid",
        r"ranktable config devId\[\d+\], but local devId\[\d+\]",
        "the ranktable names a device id this process does not have",
        "inside a container the ids are the mounted cards' logical ids: regenerate the "
        "ranktable for the devices this process sees (ASCEND_RT_VISIBLE_DEVICES)",
        _VA + "issues/2618",
    ),
    _fp(
        "vnic-sdid",
        r"invalid host device id 65535|devdrv_get_vnic_ip_by_sdid fail",
        "an A3 link was built without super_device_id",
        "regenerate the ranktable: A3 entries need super_pod_id and super_device_id",
        _VA + "pull/2939",
    ),
    _fp(
        "kv-port",
        r"ZMQError: Address already in use|Address already in use \(addr='tcp://"
        r"|failed to bind ZMQ|KV Cache sending/receiving thread failed to start",
        "a kv_port is already in use",
        "give each instance its own kv_port, >= 36000 on 16-NPU nodes (above "
        "AscendDirectTransport's random range), and stagger launches on one node",
        _VA + "issues/8938",
    ),
    _fp(
        "store-port",
        r"server socket has failed to listen on any local network address",
        "torch.distributed's store port is in use",
        "another run holds MASTER_PORT / --data-parallel-rpc-port (29500 by default): stop it "
        "(ss -ltnp) or choose another port",
        _V + "issues/11617",
    ),
    _fp(
        "port-in-use",
        r"\[Errno 98\]|error while attempting to bind on address",
        "the HTTP port is already in use",
        "stop whatever listens on the port (ss -ltnp) or choose another port",
        _V + "issues/7514",
    ),
    _fp(
        "ascend-transport",
        r"ascend_transport\.so: cannot open shared object file",
        "Mooncake's ascend_transport.so is not found",
        "put the folder holding it (/usr/local/lib) on LD_LIBRARY_PATH",
        _VA + "issues/6949",
    ),
    _fp(
        "mooncake-jemalloc",
        r"corrupted size vs\. prev_size",
        "Mooncake aborted at import (allocator clash)",
        "preload jemalloc: LD_PRELOAD=/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2 "
        "(apt install libjemalloc2)",
        _VA + "issues/5609",
    ),
    _fp(
        "mooncake-connect",
        r"status: 103900|Failed to connect to target|ErrorNo: 103900",
        "Mooncake could not connect to the peer",
        'check remote_host (VLLM_HOST_IP), CANN >= 8.3.RC1, and "use_ascend_direct": true '
        "on 0.11-era releases",
        _VA + "issues/5635",
    ),
    _fp(
        "connect-timeout",
        r"Connect timeout to:|status: 103902",
        "Mooncake's connection to the peer timed out",
        "raise ASCEND_CONNECT_TIMEOUT (ms, default 10000) and check the NPU ping matrix",
        _VA + "issues/7401",
    ),
    _fp(
        "transfer-timeout",
        r"Sync batch data transfer timeout|Transfer timeout to:",
        "a KV transfer timed out",
        "MC_TRANSFER_TIMEOUT (s) must exceed ASCEND_TRANSFER_TIMEOUT (ms, default 10000), "
        "which must cover HCCL_RDMA_TIMEOUT x retries; check the KV link",
        _VA + "issues/7846",
    ),
    _fp(
        "mooncake-transfer",
        r"Mooncake transfer failed|Transfer slice failed|Failed to transfer KV cache",
        "a KV transfer failed",
        "the KV link between prefill and decode is broken or slow: check the NPU ping "
        "matrix and ASCEND_TRANSFER_TIMEOUT",
        _VA + "issues/5635",
    ),
    _fp(
        "llmdd-link",
        r"Linking failed, comm id",
        "LLMDataDist could not link prefill and decode",
        "check the ranktable (server_id, device_ip) and the NPU ping matrix",
        _VA + "issues/2618",
    ),
    _fp(
        "kv-topology",
        r"_get_remote_rank|prefill_tp_size .* must be greater than or equal to the "
        r"decode_tp_size",
        "the connector's prefill/decode layout does not match the instances",
        "make kv_connector_extra_config's prefill and decode dp_size/tp_size match the "
        "instances (prefill TP >= decode TP)",
        _VA + "issues/16723",
    ),
    _fp(
        "nixl-engine-id",
        r"Remote NIXL agent engine ID mismatch",
        "NIXL reached another engine than the one it expected",
        "set VLLM_NIXL_SIDE_CHANNEL_HOST to this node's address, one port per instance",
        _V + "issues/27083",
    ),
    _fp(
        "proxy-400",
        r"Attempt \d+ failed for.*400 Bad Request",
        "the decoder rejected a request the proxy forwarded",
        "give prefill and decode the same --max-model-len (the client got nothing)",
        _VA + "issues/14087",
    ),
    _fp(
        "proxy-all-failed",
        r"All \d+ attempts failed for",
        "the proxy gave up on a request",
        "every retry failed: read the prefill and decode logs for the cause",
        _VA + "issues/9571",
    ),
    _fp(
        "waiting-remote-kv",
        r"still in WAITING_FOR_REMOTE_KVS",
        "decode is waiting for KV that does not arrive",
        "the prefiller's KV never reached decode: check kv_port reachability, remote_host "
        "and the connector logs on the prefiller",
        _VA + "issues/5660",
        severity="warning",
    ),
    _fp(
        "engine-waiting",
        r"Waiting for \d+ local, \d+ remote core engine proc",
        "the API server has waited a minute or more for the engine cores",
        "an engine core is slow or stuck (read its lines and the plog); big models need "
        "VLLM_ENGINE_READY_TIMEOUT_S, HCCL_CONNECT_TIMEOUT and VLLM_RPC_TIMEOUT raised",
        _VA + "issues/2416",
        severity="warning",
        min_count=6,
    ),
    _fp(
        "kv-oom",
        r"No available memory for the cache blocks|Available KV cache memory: -",
        "no memory left for the KV cache",
        "raise --gpu-memory-utilization or lower --max-model-len / --max-num-seqs",
        _VA + "issues/9372",
    ),
    _fp(
        "npu-memory-zero",
        r"Available memory: 0, total memory",
        "the NPU had no free memory when the worker measured it",
        "another process holds this NPU's memory (npu-smi info): stop it or use other devices",
        _VA + "issues/4404",
        severity="warning",
    ),
    _fp(
        "npu-oom",
        r"NPU out of memory|CUDA out of memory|halMemAlloc failed|alloc device memory failed",
        "NPU out of memory",
        "stop what else holds this NPU's memory (npu-smi info lists its processes); else "
        "lower --gpu-memory-utilization, --max-num-seqs or --max-num-batched-tokens (prefill "
        "also needs ~2 MB HBM per KV link)",
        _VA + "issues/19",
        codes=("EL0004",),
    ),
    _fp(
        "api-died",
        r"Process ApiServer_\d+ \(PID: \d+\) died with exit code",
        "the API server process died during startup",
        "read the lines above it for the first error",
        _VA + "issues/6847",
    ),
    _fp(
        "engine-fatal",
        r"EngineCore encountered a fatal error",
        "the engine crashed",
        "read the traceback above it; restart the instance",
        _VA + "issues/6190",
    ),
    _fp(
        "hccl-init",
        r"HCCL function error|hcclComm init error|hccl initialize failed",
        "HCCL failed to initialise",
        "read the CANN plog of the same process (pdtui logs NAME --plog, or diagnose it): "
        "it names the cause (port 16666 busy, a peer not reached, a ranktable mismatch)",
        _VA + "issues/4725",
    ),
    _fp(
        "cann-error",
        r"\bERR\d{5} [A-Z]+ \w",
        "CANN or torch_npu reported an error code",
        "a more specific finding listed before it is the cause; without one, read the CANN "
        "plog around the same time (pdtui logs NAME --plog, or diagnose it)",
        _VA + "issues/2258",
    ),
    _fp(
        "engine-init",
        r"Engine core initialization failed|EngineCore failed to start"
        r"|Engine core proc \S+ died unexpectedly|WorkerProc initialization failed"
        r"|in run_mp_engine\b|Error executing method initialize_cache",
        "the engine failed to start",
        "a more specific finding listed before it is the cause; without one, read the log "
        "above this line (pdtui logs NAME) for the first ERROR or Traceback, then the CANN "
        "plog (pdtui logs NAME --plog)",
        _V + "issues/23176",
    ),
]

BY_KEY = {f.key: f for f in FINGERPRINTS}

#: Rows that only say that something failed; the cause is another one.
GENERIC = {"engine-init", "engine-fatal", "api-died", "cann-error", "hccl-init"}

#: A CANN error code in the older (``EI0006: [PID: 1] 2025-...``) and the newer
#: (``Get_Socket_Timeout(EI0006):``) shape.
_CANN_OLD = re.compile(r"(?:^|[\s:\]|])(E[A-Z0-9]\d{4}): (?:\[PID: ?\d+\] )?\d{4}-\d\d-\d\d-")
_CANN_NEW = re.compile(r"\b[A-Z][A-Za-z_]+\((E[A-Z0-9]\d{4})\)")
_CODES = {c: f for f in FINGERPRINTS for c in f.codes}


def cann_codes(line: str) -> list[str]:
    """The CANN error codes ``line`` reports, in either shape."""
    return [m.group(1) for rx in (_CANN_OLD, _CANN_NEW) for m in rx.finditer(line)]


def matches(line: str) -> list[Fingerprint]:
    """The rows ``line`` matches (a CANN code without a row of its own is ``cann-error``)."""
    found = [f for f in FINGERPRINTS if f.pattern.search(line)]
    for code in cann_codes(line):
        fp = _CODES.get(code, BY_KEY["cann-error"])
        if fp not in found:
            found.append(fp)
    return found


#: Literal pieces of every stage and fingerprint line, for ``grep -F`` on the node: reading a
#: long-running server's status needs these lines from the whole log, not its last megabytes.
#: (tests/launch/test_real_logs.py checks that every recognised corpus line has one.)
FINGERPRINT_KEYS: tuple[str, ...] = (
    "EI0006",
    "wait socket establish timeout",
    "and specific port[",
    "Transport init error",
    "Create Dest error",
    "hrtRaAiQpCreate",
    "please change new package",
    "is not set correctly",
    "Ranktable_Check_Failed",
    "EI0014",
    "is already exist",
    "Please set path of rank_table",
    "No such file or directory",
    "Can't read the target server_id",
    "devId[",
    "invalid host device id 65535",
    "devdrv_get_vnic_ip_by_sdid",
    "Address already in use",
    "failed to bind ZMQ",
    "thread failed to start",
    "failed to listen on any local network",
    "[Errno 98]",
    "error while attempting to bind",
    "ascend_transport.so",
    "corrupted size vs. prev_size",
    "103900",
    "Failed to connect to target",
    "Connect timeout to:",
    "103902",
    "Sync batch data transfer timeout",
    "Transfer timeout to:",
    "Mooncake transfer failed",
    "Transfer slice failed",
    "Failed to transfer KV cache",
    "Linking failed, comm id",
    "_get_remote_rank",
    "must be greater than or equal to the decode",
    "NIXL agent engine ID mismatch",
    "400 Bad Request",
    "attempts failed for",
    "WAITING_FOR_REMOTE_KVS",
    "remote core engine proc",
    "No available memory for the cache",
    "Available KV cache memory: -",
    "Available memory: 0,",
    "out of memory",
    "halMemAlloc failed",
    "alloc device memory failed",
    "EL0004",
    "died with exit code",
    "EngineCore encountered",
    "Engine core initialization failed",
    "EngineCore failed to start",
    "died unexpectedly",
    "WorkerProc initialization failed",
    "run_mp_engine",
    "initialize_cache",
    "HCCL function error",
    "hcclComm init error",
    "hccl initialize failed",
    "[PID: ",
    " ERR0",
    " ERR9",
    # the newer CANN shape, ``Name(EI0006)``: "(E" and an upper-case letter ("(EngineCore" has
    # a lower-case one)
    *(f"(E{chr(c)}" for c in range(ord("A"), ord("Z") + 1)),
)
