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
        # HCCL writes the cause of these three only to the plog (see plog_lines); stdout
        # has torch_npu's generic HCCL error
        "port": [_HCCL_INIT.format(fn="HcclCommInitClusterInfoConfig", code=7)],
        "device-ip": [_HCCL_INIT.format(fn="HcclCommInitClusterInfoConfig", code=1)],
        "link-timeout": [_HCCL_INIT.format(fn="HcclCommInitRootInfoConfig", code=9)],
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
        "zmq-thread": [  # the form vLLM-Ascend's Mooncake connector prints (2026)
            f"Mooncake KVCacheSendingThread exception: Address already in use "
            f"(addr='tcp://{ip}:{cfg.kv_listen_port}')",
        ],
        "store-port": [
            "RuntimeError: The server socket has failed to listen on any local network "
            "address. port: 29500, useIpv6: 0, code: -98, name: EADDRINUSE, message: address "
            "already in use",
        ],
        "ascend-transport": [
            "ImportError: ascend_transport.so: cannot open shared object file: No such file "
            "or directory",
        ],
        "npu-oom": [
            "halMemAlloc failed, size=2097152, desc=[driver error:out of memory]",
            "EL0004: [PID: {pid}] 2025-10-15-16:32:16.417.528 Failed to allocate memory.",
            "RuntimeError: NPU out of memory. Tried to allocate 2.00 MiB (NPU 0; 61.27 GiB "
            "total capacity; 58.91 GiB already allocated; 0 bytes free)",
        ],
    }
    if kind == "api-died":
        return "api", [f"RuntimeError: Process ApiServer_0 (PID: {cfg.pid}) died with exit code 1"]
    if kind == "engine":
        return "engine", ["EngineCore encountered a fatal error."]
    lines = fingerprints.get(kind, [f"RuntimeError: {kind}"])
    if kind == "oom":
        return "engine-oom", lines
    return w, [ln.replace("{pid}", str(cfg.pid + 9)) for ln in lines]


CRASHES = (
    "hccl-timeout",
    "oom",
    "port",
    "device-ip",
    "api-died",
    "link-timeout",
    "transport",
    "ranktable-dup",
    "sdid",
    "zmq",
    "zmq-thread",
    "store-port",
    "ascend-transport",
    "npu-oom",
    "engine",
)

_HCCL_INIT = (
    "RuntimeError: InitHcclComm:build/CMakeFiles/torch_npu.dir/compiler_depend.ts: "
    "HCCL function error: {fn}(...), error code is {code}"
)


def plog_lines(kind: str, cfg: Config) -> list[tuple[str, str]]:
    """(``file.cc:N``, message) of the HCCL plog records a crash writes (CANN reports these
    faults only in its plog): port 16666 taken, ``device ip`` not set, socket timeout."""
    ip = cfg.ip
    records: dict[str, list[tuple[str, str]]] = {
        "port": [
            (
                "hccl_socket.cc:106",
                f"[HcclSocket][Listen] socket type[0], listen on ip[{ip}] "
                "and specific port[16666] fail. Please check the port status and whether the "
                "port is being used by other process.",
            ),
            ("hccl_socket_manager.cc:54", "[ServerInit]call trace: hcclRet -> 7"),
            (
                "hccl_comm.cc:115",
                "[HcclComm][Init]errNo[0x0000000005000007] hccl initialize failed",
            ),
        ],
        "device-ip": [
            (
                "topoinfo_ranktableParser.cc:190",
                "[RanktablCheck] 'device ip' is not set "
                "correctly, must be set when multi Server or HCCL INTRA ROCE ENABLE enabled",
            ),
        ],
        "link-timeout": [
            (
                "hccl_socket_manager.cc:796",
                "[Wait][LinkEstablish]wait socket establish "
                "timeout, role[0] rank[0] timeout[120 s]",
            ),
            (
                "hccl_socket_manager.cc:622",
                "  _________________________LINK_ERROR_INFO___________________________",
            ),
            (
                "hccl_socket_manager.cc:625",
                "  |  dest_ip(user_rank)  |   dest_port   |  "
                "src_ip(user_rank)   |   src_port   |   MyRole   |   Status   |    TlsStatus   |",
            ),
            (
                "hccl_socket_manager.cc:582",
                f"  |  192.26.2.199(12)   |  16666  |   {ip}(0)   |  "
                "0  |  server  | time out |   DISABLE  | LinkInfo",
            ),
        ],
    }
    return records.get(kind, [])


# --------------------------------------------------------------------------- config
