"""Fake nodes' serving side in real podman containers (``pdtui sim up --containers``).

The simulator writes a ``[defaults.container]`` for its nodes (podman, the locally built base
image, the fake tools, ``hccn.conf`` and devices at the tutorial's paths) and then creates the
containers with pdtui's own ``containers up``, through each node's SSH shell. Container faults,
applied once the containers run:

- ``NODE:container-stopped``: the container exists but is stopped;
- ``NODE:container-gone``: the container was removed;
- ``NODE:container-missing-mount=/etc/hccn.conf``: the node's container is created without that
  mount (its own ``[nodes.container]`` ``mounts``), as an operator's ``docker run`` can be.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pdtui.cluster import ContainerSpec, load
from pdtui.containers import each, up
from pdtui.place import cli
from pdtui.sim import podman
from pdtui.ssh.remote import pool_for, target

KINDS = ("container-stopped", "container-gone", "container-missing-mount")
#: What the runbook's image (vllm-ascend v0.11.0rc0) reports; the fake node's Python finds
#: these as installed distributions, the CANN and driver files sit at their real paths.
VERSIONS = {"vllm": "0.11.0", "vllm_ascend": "0.11.0rc0", "torch_npu": "2.7.1"}
CANN_VERSION, DRIVER_VERSION = "8.3.RC1", "25.2.0"
_TOOLKIT_INFO = "/usr/local/Ascend/ascend-toolkit/latest/x86_64-linux/ascend_toolkit_install.info"
_DRIVER_INFO = "/usr/local/Ascend/driver/version.info"


class BoxError(Exception):
    """The containers could not be set up; the message says why and what to do."""


def is_container_fault(spec: str) -> bool:
    _, _, rest = spec.partition(":")
    return rest.split("=", 1)[0] in KINDS


def parse_container_fault(spec: str, nodes: list[str]) -> tuple[str, str, str]:
    """``NODE:KIND[=VALUE]`` -> ``(node, kind, value)``."""
    node, _, rest = spec.partition(":")
    kind, _, value = rest.partition("=")
    if node not in nodes:
        raise BoxError(f"--fault {spec}: unknown node {node!r} (nodes: {', '.join(nodes)})")
    if kind == "container-missing-mount" and not value.startswith("/"):
        raise BoxError(
            f"--fault {spec}: give the container path, e.g. "
            f"{node}:container-missing-mount=/etc/hccn.conf"
        )
    if kind != "container-missing-mount" and value:
        raise BoxError(f"--fault {spec}: {kind} takes no value")
    return node, kind, value


@dataclass
class SimBoxes:
    """The containers of one simulator folder."""

    sim_dir: Path
    npus: int
    faults: list[tuple[str, str, str]]
    conf: Path = field(init=False)
    names: list[str] = field(default_factory=list)
    #: ``PDTUI_SIM_ADDR_MAP`` of the fake vLLM (how a peer's data-plane IP is reached)
    addr_map: str = ""

    @classmethod
    def create(cls, sim_dir: Path, specs: list[str], nodes: list[str], npus: int) -> SimBoxes:
        """Check podman, write its config, build the base image, fake the device files."""
        faults = [parse_container_fault(s, nodes) for s in specs if is_container_fault(s)]
        boxes = cls(sim_dir, npus, faults)
        try:
            podman.podman()
            boxes.conf = podman.write_conf(sim_dir / "podman")
            podman.ensure_base_image(boxes.conf)
        except podman.RuntimeMissing as exc:
            raise BoxError(f"--containers: {exc}") from None
        for name in nodes:
            podman.fake_devices(sim_dir / "nodes" / name, npus)
        boxes._fake_image_files()
        return boxes

    def _fake_image_files(self) -> None:
        """Version records as the real image and driver have them."""
        site = self.sim_dir / "image" / "site"
        for name, version in VERSIONS.items():
            info = site / f"{name}-{version}.dist-info"
            info.mkdir(parents=True, exist_ok=True)
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            )
        (site / "mooncake").mkdir(exist_ok=True)  # found, never imported by the checks
        (site / "mooncake" / "__init__.py").write_text('"""Stands for Mooncake in the image."""\n')
        ascend = self.sim_dir / "image" / "ascend"
        ascend.mkdir(parents=True, exist_ok=True)
        (ascend / "ascend_toolkit_install.info").write_text(
            f"package_name=Ascend-cann-toolkit\nversion={CANN_VERSION}\n"
        )
        (ascend / "version.info").write_text(f"Version={DRIVER_VERSION}\n")

    @property
    def prefix(self) -> str:
        """``pdtui-sim-<hash of the folder>``: two simulators never share a container."""
        return "pdtui-sim-" + hashlib.sha1(str(self.sim_dir).encode()).hexdigest()[:8]

    def _extra(self) -> tuple[str, ...]:
        """The simulator's folder (fake tools, model, run folders) and pdtui's source."""
        image = self.sim_dir / "image" / "ascend"
        mounts = [
            f"{self.sim_dir}:{self.sim_dir}",
            f"{image}/ascend_toolkit_install.info:{_TOOLKIT_INFO}:ro",
            f"{image}/version.info:{_DRIVER_INFO}:ro",
        ]
        source = Path(__file__).resolve().parents[2]  # the folder holding the pdtui package
        prefix = podman.python_prefix()
        if not source.is_relative_to("/usr") and not (prefix and source.is_relative_to(prefix)):
            mounts.append(f"{source}:{source}:ro")
        return tuple(mounts)

    def _env(self) -> dict[str, str]:
        """What a fake node's SSH session has: its tools first on PATH, its HOME, the
        simulator's state, and the node's addresses."""
        node = f"{self.sim_dir}/nodes/{{node.name}}"
        env = {
            "PATH": f"{node}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": f"{node}/home",
            "PDTUI_SIM_STATE": str(self.sim_dir / "state.json"),
            "PDTUI_SIM_NODE": "{node.name}",
            "PDTUI_SIM_LISTEN": "{node.host}",
            "PDTUI_SIM_NODE_IP": "{node.ip}",
            "PDTUI_SIM_ADDR_MAP": self.addr_map,
            "PYTHONPATH": str(self.sim_dir / "image" / "site"),
            "PDTUI_SIM_IN_CONTAINER": "1",
        }
        if "PDTUI_SIM_VLLM_SPEED" in os.environ:
            env["PDTUI_SIM_VLLM_SPEED"] = os.environ["PDTUI_SIM_VLLM_SPEED"]
        return env

    def table(self, drop: tuple[str, ...] = ()) -> ContainerSpec:
        return podman.container_table(
            self.sim_dir,
            f"{self.prefix}-{{node.name}}",
            self.npus,
            drop=drop,
            extra=self._extra(),
            env=self._env(),
        )

    def node_table(self, node: str) -> ContainerSpec | None:
        """The node's own ``[nodes.container]``: only for a missing-mount fault."""
        drop = tuple(v for n, k, v in self.faults if n == node and k == "container-missing-mount")
        if not drop:
            return None
        return ContainerSpec(mounts=self.table(drop).mounts)

    async def up(self, cluster_file: Path) -> None:
        """``pdtui containers up`` on every node, then the stopped/gone faults."""
        cluster = load(cluster_file)
        self.names = [n.container.name for n in cluster.nodes if n.container]
        async with pool_for(cluster) as pool:
            results = await each(cluster.nodes, lambda node: up(pool, node))
            bad = [r for r in results if not r.ok]
            if bad:
                raise BoxError("; ".join(f"{r.node}: {getattr(r, 'message', '')}" for r in bad))
            for node, kind, _ in self.faults:
                n = cluster.node(node)
                box = n.container
                assert box is not None
                if kind == "container-stopped":
                    await pool.run(target(n), cli(n, "stop", "-t", "0", box.name), check=True)
                elif kind == "container-gone":
                    await pool.run(target(n), cli(n, "rm", "-f", "-t", "0", box.name), check=True)

    def remove(self) -> None:
        podman.remove_containers(self.conf, self.names)


def apply_now(cluster_file: Path, sim_dir: Path, specs: list[str]) -> list[str]:
    """``container-stopped`` and ``container-gone`` on a running simulator (podman on this
    machine); a missing mount only at start. Returns what was done, one line each."""
    cluster = load(cluster_file)
    nodes = [n.name for n in cluster.nodes]
    conf = sim_dir / "podman" / "containers.conf"
    done: list[str] = []
    for spec in specs:
        node, kind, _ = parse_container_fault(spec, nodes)
        box = cluster.node(node).container
        if box is None or not conf.exists():
            raise BoxError(f"{spec}: the simulator runs without --containers")
        if kind == "container-missing-mount":
            raise BoxError(
                f"{spec}: a mount is missing from the start only: "
                "pdtui sim up --containers --fault " + spec
            )
        verb = ["stop", "-t", "0"] if kind == "container-stopped" else ["rm", "-f", "-t", "0"]
        res = subprocess.run(
            [podman.podman(), *verb, box.name],
            env=podman.runtime_env(conf),
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise BoxError(f"{spec}: podman {verb[0]} failed: {res.stderr.strip()[-200:]}")
        done.append(f"{spec} ({box.name})")
    return done
