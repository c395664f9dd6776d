"""Fingerprints of the ``crash-on-start=TEXT`` fault: the lines a real start-up failure prints."""

from __future__ import annotations

from pdtui.sim.vllm.config import Config

# --------------------------------------------------------------------------- crash fingerprints


def crash_lines(kind: str, cfg: Config) -> tuple[str, list[str]]:
    """(who, lines) for a crash-on-start TEXT."""
    ip = cfg.ip
    w = cfg.worker_name(0)
    fingerprints: dict[str, list[str]] = {
        "hccl-timeout": [
            "RuntimeError: InitHcclComm:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:"
            "HCCL function error: HcclCommInitRootInfoConfig(...), error code is 7",
            "[ERROR] 2025-09-30-10:00:00 (PID:{pid}, Device:0, RankID:-1) ERR02200 DIST call "
            "hccl api failed.",
            "EI0006: [PID: {pid}] 2025-09-30-10:00:00.000.000 Getting socket times out. "
            "Reason: 1. The remote does not initiate a connect request. some NPUs in the "
            "cluster are abnormal. 2. The remote does not initiate a connect request "
            "because the collective communication operator is started too late or is not "
            "started by some NPU in the cluster. 3. The communication link is disconnected. "
            "(For example, the IP addresses are not on the same network segment or the TLS "
            "configurations are inconsistent.)",
            "        Solution: 1. Check the rank service processes with other errors or do not "
            "call the collective communication operator. 2. If this error is reported for "
            "all NPUs, check whether the time difference between the earliest and latest "
            "errors is greater than the connect timeout interval (120s by default). If so, "
            "adjust the timeout interval by using the HCCL_CONNECT_TIMEOUT environment "
            "variable. 3. Check the connectivity of the communication link between nodes.",
            "        TraceBack (most recent call last):",
            "        Get_Socket_Timeout(EI0006): Getting socket times out.",
            "        Communication_Error_Get_Socket(EI0006)",
        ],
        "oom": [
            "ValueError: No available memory for the cache blocks. Try increasing "
            "`gpu_memory_utilization` when initializing the engine.",
        ],
        "port": [
            f"[hccl_socket.cc:100] [{cfg.pid}][Listen][Socket]socket type[0] listen on "
            f"ip[{ip}] and specific port[16666] fail. Please check the port status and "
            "whether the port is being used by other process.",
            "RuntimeError: InitHcclComm: HCCL function error: HcclCommInitClusterInfoConfig,"
            " error code is 7",
        ],
        "device-ip": [
            "[hccl] 'device_ip' is not set correctly,must be set when multi Server or "
            "HCCL_INTRA_ROCE_ENABLE enabled",
            "RuntimeError: InitHcclComm: HCCL function error: HcclCommInitClusterInfoConfig,"
            " error code is 1",
        ],
        "link-timeout": [
            "wait socket establish timeout, role[1] rank[12] timeout[120]",
            "LINK_ERROR_INFO:",
            "| dest_ip(user_rank) | dest_port | src_ip(user_rank) | src_port | MyRole | Status "
            "| TlsStatus |",
            f"| 192.26.2.199(12) | 16666 | {ip}(0) | 0 | client | time out | DISABLE |",
        ],
        "transport": [
            "RuntimeError: Transport init error. Reason: [Create][DestLink]Create Dest error! "
            "creakLink para:rank[1]-localUserrank[1]-localIpAddr[192.25.2.199], "
            "dst_rank[0]-remoteUserrank[0]-remote_ip_addr[192.26.2.199]",
        ],
        "ranktable-dup": [
            "Ranktable_Check_Failed(EI0014): The ranktable is invalid. Reason: "
            "[The IP is used repeatedly] device_ip 192.25.2.199 is already exist",
        ],
        "sdid": [
            "invalid host device id 65535",
            "devdrv_get_vnic_ip_by_sdid fail! sdid:0xffffffff",
        ],
        "zmq": [
            f"zmq.error.ZMQError: Address already in use (addr='tcp://{ip}:{cfg.kv_listen_port}')",
        ],
        "npu-oom": [
            "halMemAlloc failed, size=2097152, desc=[driver error:out of memory]",
            "RuntimeError: NPU out of memory. Tried to allocate 2.00 MiB (NPU 0; 61.27 GiB "
            "total capacity; 58.91 GiB already allocated; 0 bytes free)",
        ],
    }
    if kind == "api-died":
        return "api", [f"RuntimeError: Process ApiServer_0 (PID: {cfg.pid}) died with "
                       "exit code 1"]
    if kind == "engine":
        return "engine", ["EngineCore encountered a fatal error."]
    lines = fingerprints.get(kind, [f"RuntimeError: {kind}"])
    if kind == "oom":
        return "engine-oom", lines
    return w, [ln.replace("{pid}", str(cfg.pid + 9)) for ln in lines]


CRASHES = ("hccl-timeout", "oom", "port", "device-ip", "api-died", "link-timeout", "transport",
           "ranktable-dup", "sdid", "zmq", "npu-oom", "engine")


# --------------------------------------------------------------------------- config
