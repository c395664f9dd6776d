"""A real container runtime for the simulator: Debian's podman, configured by the simulator.

No registry is reachable from a test machine, and many machines (VMs with cgroup v1 beside a v2
tree, root without CAP_SYS_RESOURCE) cannot run podman's default runtime. So the simulator
brings its own ``containers.conf`` (runc, cgroupfs, both ulimits below the usual hard limits,
events to a file), handed to podman through ``CONTAINERS_CONF``, and builds a base image once:
an almost empty root file system (``/bin``, ``/lib`` ... linked into ``/usr``, a passwd line
for root) imported under a fixed local name. Containers run it with the host's ``/usr``
mounted read-only (folder by folder, leaving ``/usr/local`` to the tutorial's mounts), so the
host's ``sh``, ``python3`` and tools work inside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pdtui.cluster.spec import ContainerSpec

BASE_IMAGE = "localhost/pdtui-sim-base:1"
CONF = """\
# Written by pdtui's simulator: podman for fake nodes (runc, cgroupfs, ulimits below the hard
# limits: crun and raised limits fail on hosts without CAP_SYS_RESOURCE).
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
INSTALL_HINT = (
    "podman is not installed: apt-get install -y podman && "
    "apt-get install -y --no-install-recommends runc"
)


class RuntimeMissing(Exception):
    """podman (or runc) is not installed; the message says how to install it."""


def podman() -> str:
    """podman's path, or :class:`RuntimeMissing` with the install command."""
    found = shutil.which("podman")
    if found is None:
        raise RuntimeMissing(INSTALL_HINT)
    if shutil.which("runc") is None and not Path("/usr/sbin/runc").exists():
        raise RuntimeMissing(
            "runc is not installed: apt-get install -y --no-install-recommends runc"
        )
    return found


def write_conf(folder: Path) -> Path:
    """``folder/containers.conf`` (what ``CONTAINERS_CONF`` must name)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "containers.conf"
    if not path.exists() or path.read_text() != CONF:
        path.write_text(CONF)
    return path


def runtime_env(conf: Path) -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def python_prefix() -> str:
    """The folder holding this Python when it is not under ``/usr`` (pyenv, venv), else ''."""
    prefix = Path(sys.base_prefix).resolve()
    return "" if prefix.is_relative_to("/usr") else str(prefix)


def _rootfs_tar(path: Path) -> None:
    """A tar of an almost empty root: top folders, links into /usr, root in /etc/passwd."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("etc", "tmp", "proc", "dev", "sys", "root", "run", "var/tmp", "usr"):
            (root / d).mkdir(parents=True)
        for d in ("bin", "sbin", "lib", "lib64"):
            (root / d).symlink_to(f"usr/{d}")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\n")
        (root / "tmp").chmod(0o1777)
        with tarfile.open(path, "w") as tar:
            for item in sorted(root.iterdir()):
                tar.add(item, arcname=item.name)


def ensure_base_image(conf: Path, image: str = BASE_IMAGE) -> str:
    """Build ``image`` unless podman already has it (about 0.2 s the first time)."""
    exe = podman()
    env = runtime_env(conf)
    have = subprocess.run([exe, "image", "exists", image], env=env, capture_output=True)
    if have.returncode == 0:
        return image
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "rootfs.tar"
        _rootfs_tar(tar)
        made = subprocess.run(
            [exe, "import", "-q", str(tar), image], env=env, capture_output=True, text=True
        )
    if made.returncode != 0:
        raise RuntimeMissing(f"podman import failed: {made.stderr.strip()[-300:]}")
    return image


def remove_containers(conf: Path, names: list[str]) -> None:
    """``podman rm -f -t 0`` of exactly these names (missing ones are fine)."""
    if names:
        subprocess.run(
            [podman(), "rm", "-f", "-t", "0", "--ignore", *names],
            env=runtime_env(conf),
            capture_output=True,
        )


HOST_USR = ("/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/share")
#: The tutorial's device files besides /dev/davinciN (fake ones are plain files, bind-mounted).
CONTROL_DEVICES = ("davinci_manager", "devmm_svm", "hisi_hdc")


def fake_devices(node_dir: Path, npus: int) -> None:
    """Plain files standing for a node's ``/dev/davinciN`` and control devices."""
    dev = node_dir / "dev"
    dev.mkdir(parents=True, exist_ok=True)
    for name in [*(f"davinci{i}" for i in range(npus)), *CONTROL_DEVICES]:
        (dev / name).touch()


def container_table(
    sim_dir: Path,
    name: str,
    npus: int,
    *,
    image: str = BASE_IMAGE,
    drop: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> ContainerSpec:
    """``[defaults.container]`` for fake nodes: podman, the base image, the host's ``/usr``
    folders (and this Python) read-only, and each node's fake tools, hccn.conf and devices
    mounted at the tutorial's paths (``{node.name}`` picks the node's folder). ``drop``:
    container paths left out (the ``container-missing-mount`` fault)."""
    node = f"{sim_dir}/nodes/{{node.name}}"
    # /usr's folders one by one, so that /usr/local stays writable for the tutorial's mounts
    mounts = [f"{d}:{d}:ro" for d in HOST_USR if Path(d).is_dir()]
    if python_prefix():
        mounts.append(f"{python_prefix()}:{python_prefix()}:ro")
    mounts += [
        f"{node}/etc/hccn.conf:/etc/hccn.conf",
        f"{node}/bin/hccn_tool:/usr/local/Ascend/driver/tools/hccn_tool",
        f"{node}/bin/npu-smi:/usr/local/bin/npu-smi",
    ]
    mounts += [
        f"{node}/dev/{d}:/dev/{d}"
        for d in [*(f"davinci{i}" for i in range(npus)), *CONTROL_DEVICES]
    ]
    mounts = [m for m in mounts if m.split(":")[1] not in drop] + list(extra)
    return ContainerSpec(
        mode="managed",
        cli="podman",
        name=name,
        image=image,
        network="host",
        shm_size="64m",
        devices="none",
        mounts=mounts,
        env=env,
    )
