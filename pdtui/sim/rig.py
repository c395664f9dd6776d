"""A simulated cluster on one machine: fake NPU nodes behind real SSH servers on loopback.

Each node gets its own loopback address (127.0.1.1, 127.0.1.2, ...; distinct ports on
127.0.0.1 where the OS lacks them), an in-process asyncssh server that runs commands with
real bash, its fake ``hccn_tool``/``npu-smi``/``hostname`` first on PATH, its own HOME and
``hccn.conf``. The simulator writes a cluster file that reaches these nodes, an OpenSSH
``ssh_config`` (``ssh -F ssh_config NODE`` works), the keys and a known_hosts file, all in one
folder ``<cluster stem>.sim/`` beside the cluster file. Nothing is written to ``~/.ssh``.

Faults live in the folder's ``state.json``; ``pdtui sim fault`` rewrites it and the running
simulator (and every fake tool call) picks the change up.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from pdtui.cluster import (
    ClusterSpec,
    InstanceSpec,
    ModelSpec,
    NodeSpec,
    ProxySpec,
    SshSettings,
    ToolPaths,
    atomic_write,
    dump_spec,
    loads,
)
from pdtui.sim.boxes import BoxError, SimBoxes, is_container_fault
from pdtui.sim.faults import apply_fault, is_unreachable, parse_fault
from pdtui.sim.inproc import InprocShell
from pdtui.sim.sshd import SimNodeServer
from pdtui.sim.state import SimState, build_state, load_state, save_state
from pdtui.sim.tools import sync_tools
from pdtui.sim.toolserver import ToolServer
from pdtui.ssh import SshError

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
RUNBOOK_SAMPLE = "deepseek-v3.2-a3-1p1d.toml"
DEFAULT_PORT = 2222


class SimError(Exception):
    """The simulator could not start; the message says why."""


def sim_dir_for(cluster_file: Path) -> Path:
    """Where the simulator keeps keys, state and node folders for a cluster file."""
    return cluster_file.resolve().parent / f"{cluster_file.stem}.sim"


def runbook_spec() -> ClusterSpec:
    """The runbook's 1P1D A3 layout, from the shipped sample."""
    return loads((SAMPLES / RUNBOOK_SAMPLE).read_text(encoding="utf-8"), source=RUNBOOK_SAMPLE).spec


def generated_spec(nodes: int, soc: str, npus: int) -> ClusterSpec:
    """``nodes`` nodes, the first half prefill and the rest decode, one instance per node."""
    if nodes < 2:
        raise SimError("--nodes: a PD cluster needs at least 2 nodes")
    base = runbook_spec()
    n_pre = max(1, nodes // 2)
    specs: list[NodeSpec] = []
    instances: list[InstanceSpec] = []
    pre = next(i for i in base.instances if i.role == "prefill")
    dec = next(i for i in base.instances if i.role == "decode")
    for i in range(nodes):
        role = "prefill" if i < n_pre else "decode"
        idx = i if role == "prefill" else i - n_pre
        name = f"{role}-{idx}"
        specs.append(NodeSpec(name=name, host=f"172.22.{i // 250}.{10 + i % 250}"))
        tmpl = pre if role == "prefill" else dec
        instances.append(
            tmpl.model_copy(
                update={
                    "name": name,
                    "node": name,
                    "devices": list(range(npus)),
                    "kv_transfer": {**tmpl.kv_transfer, "engine_id": str(i)},
                }
            )
        )
    serve = dict(base.serve)
    serve["tensor-parallel-size"] = npus
    ranktable = base.ranktable
    if ranktable is not None:
        ranktable = ranktable.model_copy(
            update={
                "prefill_device_count": n_pre * npus,
                "decode_device_count": (nodes - n_pre) * npus,
            }
        )
    return base.model_copy(
        update={
            "cluster": base.cluster.model_copy(
                update={
                    "name": f"sim-{nodes}n-{soc.lower()}",
                    "description": (
                        f"Simulated {n_pre}P{nodes - n_pre}D, {nodes} x {soc} with {npus} NPUs"
                    ),
                }
            ),
            "defaults": base.defaults.model_copy(update={"soc": soc, "npus": npus}),
            "nodes": specs,
            "instances": instances,
            "serve": serve,
            "ranktable": ranktable,
            "proxy": ProxySpec(node=specs[0].name, host=specs[0].host, port=8080),
            "model": ModelSpec(path=base.model.path, served_name=base.model.served_name),
        }
    )


def _loopback_addresses(count: int, prefix: str) -> list[str] | None:
    """``count`` addresses ``prefix.N`` if the OS routes them to loopback, else None."""
    addrs = [f"{prefix}.{i + 1}" for i in range(count)]
    for a in addrs[:1] + addrs[-1:]:
        with socket.socket() as s:
            try:
                s.bind((a, 0))
            except OSError:
                return None
    return addrs


def _free(addr: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
        except OSError:
            return False
    return True


@dataclass
class SimNode:
    name: str
    listen_host: str
    port: int
    server: SimNodeServer
    reachable: bool = True


@dataclass
class Simulator:
    """Fake nodes for one cluster file. ``await start()``, then ``await stop()``."""

    base: ClusterSpec
    cluster_file: Path
    latency_ms: int = 100
    faults: list[str] = field(default_factory=list)
    address_prefix: str = "127.0.1"
    port: int = DEFAULT_PORT
    max_sessions: int | None = 10
    #: answer pdtui's probe scripts in-process instead of in bash (``pdtui.sim.inproc``)
    inproc: bool = False
    #: each node's serving side in a real podman container (``pdtui.sim.boxes``)
    containers: bool = False
    nodes: list[SimNode] = field(default_factory=list)
    _watcher: asyncio.Task[None] | None = None
    _tools: ToolServer | None = None
    _boxes: SimBoxes | None = None

    @property
    def dir(self) -> Path:
        return sim_dir_for(self.cluster_file)

    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    @property
    def ssh_config_path(self) -> Path:
        return self.dir / "ssh_config"

    def _build_state(self) -> SimState:
        resolved = loads(dump_spec(self.base), source="base cluster")
        try:
            # Server Index 25.. reproduces real A3 SDIDs (vllm-ascend PR #2939); larger
            # clusters start at 0 so that each super pod is filled (48 nodes in pod 0,
            # the next 48 in pod 1, ...; see pdtui.sim.state).
            base = 25 if len(resolved.nodes) <= 23 else 0
            state = build_state(
                [(n.name, n.ip, n.soc, n.npus) for n in resolved.nodes],
                latency_ms=self.latency_ms,
                server_index_base=base,
            )
        except ValueError as exc:
            raise SimError(f"cannot simulate this cluster: {exc}") from None
        for node in resolved.nodes:
            state.node(node.name).nic = node.nic or "eth0"
        for spec in self.faults:
            if is_container_fault(spec):
                continue
            try:
                apply_fault(state, parse_fault(spec, [n.name for n in state.nodes]))
            except ValueError as exc:
                raise SimError(f"--fault {spec}: {exc}") from None
        return state

    async def start(self) -> None:
        d = self.dir
        (d / "keys").mkdir(parents=True, exist_ok=True)
        state = self._build_state()
        if self.containers:
            try:
                self._boxes = SimBoxes.create(
                    d, self.faults, [n.name for n in state.nodes], max(n.npus for n in state.nodes)
                )
            except BoxError as exc:
                raise SimError(str(exc)) from None
        elif any(is_container_fault(f) for f in self.faults):
            raise SimError(
                "container faults (container-stopped, container-gone, "
                "container-missing-mount) need --containers"
            )
        save_state(state, self.state_path)
        sync_tools(state, self.state_path, d / "nodes")
        self._tools = ToolServer(self.state_path)
        await self._tools.start()
        client_key = _key(d / "keys" / "id_ed25519")
        names = [n.name for n in state.nodes]
        addrs = _loopback_addresses(len(names), self.address_prefix)
        listen = {name: (addrs[i] if addrs else "127.0.0.1") for i, name in enumerate(names)}
        # Fake vLLM and proxy: listen on the node's loopback address even when told 0.0.0.0,
        # and reach a peer's data-plane IP through its loopback address.
        addr_map = ",".join(f"{n.ip}={listen[n.name]}" for n in state.nodes)
        if self._boxes is not None:
            self._boxes.addr_map = addr_map
        self._install_proxy_scripts()
        known: list[str] = []
        for name in names:
            host = listen[name]
            port = self.port if addrs and _free(host, self.port) else 0
            node_dir = d / "nodes" / name
            home = node_dir / "home"
            home.mkdir(parents=True, exist_ok=True)
            (node_dir / "run").mkdir(exist_ok=True)
            host_key = _key(d / "keys" / f"ssh_host_{name}_ed25519_key")
            env = {
                "PATH": f"{node_dir / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "HOME": str(home),
                "PDTUI_SIM_STATE": str(self.state_path),
                "PDTUI_SIM_NODE": name,
                "PDTUI_SIM_LISTEN": host,
                "PDTUI_SIM_NODE_IP": state.node(name).ip,
                "PDTUI_SIM_ADDR_MAP": addr_map,
            }
            if self._boxes is not None:
                env["CONTAINERS_CONF"] = str(self._boxes.conf)
            server = SimNodeServer(
                name=name,
                listen_host=host,
                listen_port=port,
                host_key=host_key,
                authorized_keys=client_key.export_public_key().decode(),
                env=env,
                cwd=str(home),
                max_sessions=self.max_sessions,
                script_handler=(
                    InprocShell(name, self._tools, node_dir / "bin", env, str(home)).answer
                    if self.inproc
                    else None
                ),
            )
            try:
                await server.start()
            except OSError as exc:
                await self.stop()
                raise SimError(f"node {name}: cannot listen on {host}:{port}: {exc}") from None
            self.nodes.append(SimNode(name, host, server.port, server))
            pattern = host if server.port == 22 else f"[{host}]:{server.port}"
            known.append(f"{pattern} {host_key.export_public_key().decode().strip()}")
        atomic_write(d / "known_hosts", "\n".join(known) + "\n")
        self._write_cluster()
        self._write_ssh_config()
        await self._apply_reachability(state)
        self._watcher = asyncio.create_task(self._watch())
        if self._boxes is not None:
            try:
                await self._boxes.up(self.cluster_file)
            except (BoxError, SshError) as exc:
                await self.stop()
                raise SimError(f"--containers: {exc}") from None

    def _install_proxy_scripts(self) -> None:
        """The fake proxy at the configured script path, on the proxy's node."""
        proxy = self.base.proxy
        if proxy is None:
            return
        src = Path(__file__).resolve().parent / "proxy.py"
        script = Path(proxy.script)
        if script.is_absolute():
            dest = self.dir / "nodes" / proxy.node / "fs" / script.relative_to("/")
        else:  # relative paths resolve from the login directory
            dest = self.dir / "nodes" / proxy.node / "home" / script
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)

    def _write_cluster(self) -> None:
        d = self.dir
        user = getpass.getuser()
        by_name = {n.name: n for n in self.nodes}
        nodes = []
        for ns in self.base.nodes:
            sim = by_name[ns.name]
            node_dir = d / "nodes" / ns.name
            nodes.append(
                ns.model_copy(
                    update={
                        "host": sim.listen_host,
                        "ip": ns.ip or ns.host,
                        "ssh": SshSettings(port=sim.port),
                        "tools": ToolPaths(),
                        "hccn_conf": str(node_dir / "etc" / "hccn.conf"),
                        "run_dir": str(node_dir / "run"),
                        "container": self._boxes.node_table(ns.name) if self._boxes else None,
                    }
                )
            )
        rel = os.path.relpath(d, self.cluster_file.resolve().parent)
        defaults = self.base.defaults.model_copy(
            update={
                "ssh": SshSettings(
                    user=user,
                    identity_file=f"{rel}/keys/id_ed25519",
                    known_hosts=f"{rel}/known_hosts",
                    connect_timeout=5.0,
                ),
                "tools": ToolPaths(hccn_tool="hccn_tool", npu_smi="npu-smi"),
                "container": self._boxes.table() if self._boxes else None,
            }
        )
        desc = self.base.cluster.description
        update: dict[str, object] = {
            "cluster": self.base.cluster.model_copy(
                update={"description": f"[simulated] {desc}".strip()}
            ),
            "defaults": defaults,
            "nodes": nodes,
        }
        rt = self.base.ranktable
        if rt is not None:
            # The fake nodes share this machine's filesystem: give each its own root for
            # absolute remote paths, so a copy on one node is not a copy on all of them.
            update["ranktable"] = rt.model_copy(
                update={"path": f"{d / 'nodes'}/{{node.name}}/fs{rt.path}"}
            )
        model = self.base.model
        if Path(model.path).is_absolute():
            update["model"] = model.model_copy(
                update={"path": f"{d / 'nodes'}/{{node.name}}/fs{model.path}"}
            )
            for ns in self.base.nodes:  # the weights "exist" on every node
                weights = d / "nodes" / ns.name / "fs" / Path(model.path).relative_to("/")
                weights.mkdir(parents=True, exist_ok=True)
                (weights / "config.json").write_text(
                    '{"model_type": "deepseek_v32", "pdtui_simulated": true}\n'
                )
        proxy = self.base.proxy
        if proxy is not None and Path(proxy.script).is_absolute():
            update["proxy"] = proxy.model_copy(
                update={
                    "script": str(
                        d / "nodes" / proxy.node / "fs" / Path(proxy.script).relative_to("/")
                    )
                }
            )
        spec = self.base.model_copy(update=update)
        header = (
            f"# Written by `pdtui sim up` for a simulated cluster; its files are in {rel}/.\n"
            f"# Reach a node with: ssh -F {rel}/ssh_config {nodes[0].name}\n"
        )
        text = header + dump_spec(spec)
        loads(text, source=self.cluster_file.name, path=self.cluster_file)
        atomic_write(self.cluster_file, text)

    def _write_ssh_config(self) -> None:
        d = self.dir
        user = getpass.getuser()
        lines = [f"# OpenSSH client config for the simulated cluster {self.base.cluster.name}", ""]
        for n in self.nodes:
            lines += [
                f"Host {n.name}",
                f"    HostName {n.listen_host}",
                f"    Port {n.port}",
                f"    User {user}",
                f"    IdentityFile {d / 'keys' / 'id_ed25519'}",
                "    IdentitiesOnly yes",
                f"    UserKnownHostsFile {d / 'known_hosts'}",
                "    StrictHostKeyChecking yes",
                "",
            ]
        atomic_write(self.ssh_config_path, "\n".join(lines))

    async def _apply_reachability(self, state: SimState) -> None:
        for n in self.nodes:
            want = not is_unreachable(state.node(n.name))
            if want != n.reachable:
                await n.server.set_reachable(want)
                n.reachable = want

    async def _watch(self) -> None:
        """Pick up fault changes written by ``pdtui sim fault`` (node reachability)."""
        last = 0
        while True:
            await asyncio.sleep(0.3)
            try:
                mtime = self.state_path.stat().st_mtime_ns
                if mtime != last:
                    last = mtime
                    await self._apply_reachability(load_state(self.state_path))
            except (OSError, ValueError) as exc:
                print(f"pdtui sim: cannot read {self.state_path}: {exc}", file=sys.stderr)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for n in self.nodes:
            with contextlib.suppress(Exception):
                await n.server.stop()
            with contextlib.suppress(Exception):
                await n.server.kill_all()
        self.nodes.clear()
        self._kill_started()
        if self._boxes is not None:
            self._boxes.remove()
        if self._tools is not None:
            await self._tools.stop()
            self._tools = None

    def _kill_started(self) -> None:
        """Processes started on the fake nodes (fake vLLM, proxy) end with the simulator.

        They were started detached in their own process groups, with a pid file in the node's
        run folder inside this simulator's folder: only those groups are signalled.
        """
        for pid_file in (self.dir / "nodes").glob("*/run/**/pid"):
            try:
                pid = int(pid_file.read_text().strip())
                run_id = (pid_file.parent / "run_id").read_text().strip()
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                if f"PDTUI_RUN_ID={run_id}".encode() in environ:  # not a reused pid
                    os.killpg(pid, signal.SIGTERM)
            except (ValueError, OSError):
                continue

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def describe(self) -> list[str]:
        lines = [f"simulated cluster {self.base.cluster.name}: {len(self.nodes)} nodes"]
        for n in self.nodes:
            lines.append(f"  {n.name:<12} ssh {n.listen_host}:{n.port}")
        lines += [
            f"cluster file: {self.cluster_file}",
            f"ssh config:   {self.ssh_config_path}",
            "",
            f"  pdtui {self.cluster_file}                      open the app",
            f"  ssh -F {self.ssh_config_path} {self.nodes[0].name} hccn_tool -i 0 -link -g",
            f"  pdtui sim fault {self.cluster_file} {self.nodes[-1].name}:3:link-down",
            f"  pdtui sim clear {self.cluster_file}",
        ]
        return lines


def _key(path: Path) -> asyncssh.SSHKey:
    """Load an ed25519 key, or make one (0600) the first time."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.export_private_key())
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    return key
