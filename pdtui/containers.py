"""The serving container of each node: the ``docker run`` it needs, and up, status and down.

vllm-ascend runs inside the ``quay.io/ascend/vllm-ascend`` image on every node; its tutorial
("Run with Docker", https://github.com/vllm-project/vllm-ascend/blob/main/docs/source/
tutorials/features/pd_disaggregation_mooncake_multi_node.md) starts one container per node
with host networking, the ``/dev/davinciN`` devices plus ``davinci_manager``, ``devmm_svm`` and
``hisi_hdc``, and the driver's tools and files mounted. docker, podman, nerdctl and isula take
the same verbs and flags.

A **managed** container is created by pdtui with the label ``pdtui.cluster=<cluster name>``;
pdtui may start, recreate and remove it, and never touches a container of that name without
the label. An **adopted** container is the operator's: pdtui only reads it and execs into it.
``up`` never pulls an image: pulling 20 GB is the operator's call. Each node's work is one SSH
command, and the inside checks of ``status`` are one ``exec``.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pdtui.cluster import Cluster, Node
from pdtui.cluster.model import Container
from pdtui.place import cli, exec_argv
from pdtui.ssh import SshError, SshPool
from pdtui.ssh.remote import target

LABEL = "pdtui.cluster"
CONTROL_DEVICES = ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")
#: PID 1 of a managed container: waits forever, on any image (busybox, Debian, the real one).
KEEP_ALIVE = ("tail", "-f", "/dev/null")
#: Must work inside, whatever the mounts say (the tutorial mounts them; without hccn.conf
#: HCCL fails with "'device ip' is not set", vllm-ascend issue #7711).
ESSENTIAL = ("/etc/hccn.conf",)
VERSION_KEYS = ("vllm", "vllm_ascend", "torch_npu", "cann", "driver")

Action = Literal[
    "created", "started", "running", "recreated", "removed", "absent", "kept", "failed", "planned"
]


def _box(node: Node) -> Container:
    if node.container is None:
        raise ValueError(f"node {node.name!r} has no [container] table")
    return node.container


def run_argv(node: Node) -> list[str]:
    """``CLI run -d ...`` of a managed container, in the tutorial's order."""
    box = _box(node)
    argv = [
        box.cli,
        "run",
        "-d",
        "--name",
        box.name,
        "--label",
        f"{LABEL}={box.cluster}",
        f"--net={box.network}",
        f"--shm-size={box.shm_size}",
    ]
    if box.cli in {"docker", "podman"}:
        argv.append("--init")  # reaps orphans; `stop` is immediate with a tail as PID 1
    for dev in box.devices:
        argv += ["--device", f"/dev/davinci{dev}"]
    if box.devices:
        for dev_path in CONTROL_DEVICES:
            argv += ["--device", dev_path]
    for m in box.mounts:
        argv += ["-v", m.arg]
    for key, value in box.env.items():
        argv += ["-e", f"{key}={value}"]
    argv += list(box.extra_args)
    if box.image is None:
        raise ValueError(f"node {node.name!r}: an adopted container has no `run`")
    return [*argv, box.image, *KEEP_ALIVE]


def dry_run_text(node: Node) -> str:
    """``run_argv`` with one flag pair per line, as the tutorial writes it."""
    argv = [shlex.quote(a) for a in run_argv(node)]
    first = next(
        i
        for i, a in enumerate(argv)
        if a in {"--device", "-v", "-e"} or i == len(argv) - len(KEEP_ALIVE) - 1
    )
    lines = [" ".join(argv[:first])]
    i = first
    while i < len(argv) - len(KEEP_ALIVE) - 1:
        pair = argv[i] in {"--device", "-v", "-e"}
        lines.append(" ".join(argv[i : i + 2]) if pair else argv[i])
        i += 2 if pair else 1
    lines.append(" ".join(argv[i:]))
    return " \\\n  ".join(lines)


# --------------------------------------------------------------------------- inspect


def _inspect(box: Container, fmt: str) -> list[str]:
    typed = ["--type", "container"] if box.cli in {"docker", "podman"} else []
    return [box.cli, "inspect", *typed, "--format", fmt, box.name]


_FMT = '{{.State.Status}}|{{.Config.Image}}|{{index .Config.Labels "pdtui.cluster"}}'


@dataclass
class Found:
    """A container as its runtime describes it (``state`` is ``absent`` when there is none)."""

    state: str
    image: str = ""
    label: str = ""
    image_present: bool | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"


def _found_script(node: Node, with_image: bool) -> str:
    box = _box(node)
    lines = [
        f"info=$({shlex.join(_inspect(box, _FMT))} 2>/dev/null) || info=absent",
        'echo "info $info"',
    ]
    if with_image and box.image:
        lines.append(
            f"{cli(node, 'image', 'inspect', box.image)} >/dev/null 2>&1 "
            "&& echo 'image yes' || echo 'image no'"
        )
    return "\n".join(lines) + "\n"


def _parse_found(text: str) -> Found | None:
    found: Found | None = None
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "info" and rest.strip() == "absent":
            found = Found("absent")
        elif key == "info":
            state, image, label = ([*rest.split("|"), "", ""])[:3]
            found = Found(
                state.strip() or "unknown",
                image.strip(),
                "" if label.strip() == "<no value>" else label.strip(),
            )
        elif key == "image" and found is not None:
            found.image_present = rest.strip() == "yes"
    return found


async def _sh(pool: SshPool, node: Node, script: str, label: str) -> tuple[int | None, str, str]:
    res = await pool.run(target(node), "sh -s", input=script, label=label)
    return res.exit_status, res.stdout, res.stderr


async def find(pool: SshPool, node: Node, *, with_image: bool = False) -> Found:
    """The node's container as its runtime sees it (one SSH command)."""
    rc, out, err = await _sh(pool, node, _found_script(node, with_image), "container inspect")
    found = _parse_found(out)
    if found is None:
        raise SshError(
            node.name,
            f"`{_box(node).cli} inspect` printed nothing (exit {rc}): "
            f"{_last(err)}; is {_box(node).cli} installed on the node?",
        )
    return found


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


# --------------------------------------------------------------------------- up and down


@dataclass
class Result:
    """What ``up`` or ``down`` did on one node; ``ok`` False means it needs the operator."""

    node: str
    container: str
    action: Action
    ok: bool
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "node": self.node,
            "container": self.container,
            "action": self.action,
            "ok": self.ok,
            "message": self.message,
        }


def _foreign(box: Container, found: Found) -> str | None:
    """Why pdtui must not start, recreate or remove this managed container (None: it may)."""
    if found.label == box.cluster:
        return None
    seen = f"label {LABEL}={found.label}" if found.label else f"no {LABEL} label"
    return (
        f"{box.name} exists but pdtui did not create it for cluster {box.cluster!r} ({seen}):"
        f' remove or rename it, or set mode = "adopted" to use it as it is'
    )


def _pull_hint(node: Node, box: Container) -> str:
    return (
        f"image {box.image} is not on node {node.name}: on the node run "
        f"`{box.cli} pull {box.image}` (or `{box.cli} load -i FILE.tar` without a registry),"
        " then run `pdtui containers up` again; pdtui never pulls by itself"
    )


async def _act(pool: SshPool, node: Node, script: str, label: str) -> str | None:
    """Run ``script``; None when it worked, else the runtime's last line of error."""
    rc, _, err = await _sh(pool, node, "set -e\n" + script, label)
    return None if rc == 0 else _last(err)


async def _create(
    pool: SshPool, node: Node, box: Container, found: Found, recreate: bool
) -> Result:
    if found.image_present is False:
        return Result(node.name, box.name, "failed", False, _pull_hint(node, box))
    script = shlex.join(run_argv(node)) + " >/dev/null\n"
    if recreate:
        script = cli(node, "rm", "-f", box.name) + " >/dev/null\n" + script
    error = await _act(pool, node, script, "container run")
    action: Action = "recreated" if recreate else "created"
    if error:
        return Result(node.name, box.name, "failed", False, f"`{box.cli} run` failed: {error}")
    return Result(node.name, box.name, action, True, f"{box.image}")


async def up(pool: SshPool, node: Node, *, recreate: bool = False) -> Result:
    """Create the container when absent, start it when stopped; a running one is left alone
    (``recreate``: removed and created again). Adopted containers are only checked."""
    box = _box(node)
    found = await find(pool, node, with_image=box.managed)
    if not box.managed:
        return _adopted(node, box, found)
    if found.state == "absent":
        return await _create(pool, node, box, found, recreate=False)
    refusal = _foreign(box, found)
    if refusal:
        return Result(node.name, box.name, "failed", False, refusal)
    if recreate:
        return await _create(pool, node, box, found, recreate=True)
    if found.running:
        note = (
            ""
            if found.image == box.image
            else f"; it runs {found.image}, the cluster file says {box.image} (--recreate)"
        )
        return Result(node.name, box.name, "running", True, f"left as it is{note}")
    error = await _act(
        pool, node, cli(node, "start", box.name) + " >/dev/null\n", "container start"
    )
    if error:
        return Result(node.name, box.name, "failed", False, f"`{box.cli} start` failed: {error}")
    return Result(node.name, box.name, "started", True, f"was {found.state}")


def _adopted(node: Node, box: Container, found: Found) -> Result:
    if found.running:
        return Result(node.name, box.name, "running", True, "adopted: used as it is")
    if found.state == "absent":
        return Result(
            node.name,
            box.name,
            "failed",
            False,
            f"adopted container {box.name} does not exist on {node.name}: start it "
            "yourself (pdtui never creates an adopted container), or set mode = "
            '"managed" and an image',
        )
    return Result(
        node.name,
        box.name,
        "failed",
        False,
        f"adopted container {box.name} is {found.state}: start it with "
        f"`{box.cli} start {box.name}` (pdtui never starts an adopted container)",
    )


async def down(pool: SshPool, node: Node, *, grace: int = 10) -> Result:
    """Stop and remove a managed container pdtui created; adopted ones are left alone."""
    box = _box(node)
    if not box.managed:
        return Result(node.name, box.name, "kept", True, "adopted: pdtui never stops it")
    found = await find(pool, node)
    if found.state == "absent":
        return Result(node.name, box.name, "absent", True, "nothing to remove")
    refusal = _foreign(box, found)
    if refusal:
        return Result(node.name, box.name, "failed", False, refusal)
    script = (
        cli(node, "stop", "-t", str(grace), box.name)
        + " >/dev/null\n"
        + cli(node, "rm", box.name)
        + " >/dev/null\n"
    )
    error = await _act(pool, node, script, "container stop, rm")
    if error:
        return Result(node.name, box.name, "failed", False, f"`{box.cli} stop/rm` failed: {error}")
    return Result(node.name, box.name, "removed", True, f"was {found.state}")


# --------------------------------------------------------------------------- status


@dataclass
class Status:
    """One node's container: state, image, uptime and what is present inside."""

    node: str
    container: str
    mode: str
    state: str
    image: str = ""
    uptime_s: int | None = None
    mounts: dict[str, bool] = field(default_factory=dict)
    devices: dict[str, bool] = field(default_factory=dict)
    #: ``hccn_tool`` and ``npu-smi`` answer inside (exit 0)
    tools: dict[str, bool] = field(default_factory=dict)
    #: Python modules importable inside (``mooncake``), found without importing them
    modules: dict[str, bool] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def missing(self) -> list[str]:
        return [p for p, ok in {**self.mounts, **self.devices}.items() if not ok]

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.state == "running"
            and not self.missing
            and all(self.tools.values())
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "node": self.node,
            "container": self.container,
            "mode": self.mode,
            "state": self.state,
            "image": self.image,
            "uptime_s": self.uptime_s,
            "mounts": self.mounts,
            "devices": self.devices,
            "tools": self.tools,
            "versions": self.versions,
            "missing": self.missing,
            "error": self.error,
        }


def required(cluster: Cluster, node: Node) -> tuple[list[str], list[str]]:
    """Paths that must exist inside: every mount (and hccn.conf), the instances' devices."""
    box = _box(node)
    mounts = list(dict.fromkeys([*(m.path.rstrip("/") or "/" for m in box.mounts), *ESSENTIAL]))
    ids = sorted({d for i in cluster.instances if i.node == node.name for d in i.devices})
    devices = [f"/dev/davinci{d}" for d in ids]
    return mounts, [*devices, *CONTROL_DEVICES] if devices else devices


_VERSIONS_PY = """\
import importlib.metadata as m
for name in ("vllm", "vllm_ascend", "torch_npu"):
    got = "-"
    for dist in (name, name.replace("_", "-")):
        try:
            got = m.version(dist)
            break
        except Exception:
            pass
    print("version", name, got)
import importlib.util
print("module mooncake", int(importlib.util.find_spec("mooncake") is not None))
"""


#: The tools inside: on PATH, else where the tutorial mounts them.
_TOOLS = (
    ("hccn_tool", "/usr/local/Ascend/driver/tools/hccn_tool", "-i {dev} -ip -g"),
    ("npu-smi", "/usr/local/bin/npu-smi", "info -l"),
)


def inside_script(mounts: list[str], devices: list[str], device: int = 0) -> str:
    """The one script ``status`` runs inside: uptime, ``test -e`` of each path, whether
    ``hccn_tool`` and ``npu-smi`` answer, versions."""

    def checks(kind: str, paths: list[str]) -> str:
        if not paths:
            return ""
        return (
            f"for p in {' '.join(shlex.quote(p) for p in paths)}; do "
            f'if test -e "$p"; then echo "{kind} 1 $p"; else echo "{kind} 0 $p"; fi; done\n'
        )

    return (
        "hz=$(getconf CLK_TCK 2>/dev/null || echo 100)\n"
        "read -r u _ < /proc/uptime && set -- $(cat /proc/1/stat) "
        '&& echo "uptime $(( ${u%.*} - ${22} / hz ))"\n'
        + checks("mount", mounts)
        + checks("device", devices)
        + "".join(
            f't=$(command -v {name} || echo {path}); "$t" {args.format(dev=device)} '
            f'>/dev/null 2>&1 && echo "tool 1 {name}" || echo "tool 0 {name}"\n'
            for name, path, args in _TOOLS
        )
        + "py=$(command -v python3 || command -v python)\n"
        f'[ -n "$py" ] && "$py" -c {shlex.quote(_VERSIONS_PY)} 2>/dev/null\n'
        "v=$(cat /usr/local/Ascend/ascend-toolkit/latest/*/ascend_toolkit_install.info "
        "2>/dev/null | sed -n 's/^version=//p' | head -n 1)\n"
        'echo "version cann ${v:--}"\n'
        "v=$(sed -n 's/^Version=//p' /usr/local/Ascend/driver/version.info 2>/dev/null "
        "| head -n 1)\n"
        'echo "version driver ${v:--}"\n'
    )


def _status_script(cluster: Cluster, node: Node) -> str:
    ids = sorted({d for i in cluster.instances if i.node == node.name for d in i.devices})
    script = inside_script(*required(cluster, node), device=ids[0] if ids else 0)
    inner = shlex.join(exec_argv(node, script))
    return (
        _found_script(node, with_image=False)
        + 'case "$info" in running*) ;; *) exit 0 ;; esac\n'
        + f'{inner} || echo "exec-failed $?"\n'
    )


def _parse_inside(st: Status, out: str) -> None:
    for line in out.splitlines():
        key, _, rest = line.partition(" ")
        if key in {"mount", "device", "tool"}:
            flag, _, path = rest.partition(" ")
            {"mount": st.mounts, "device": st.devices, "tool": st.tools}[key][path] = flag == "1"
        elif key == "module":
            name, _, flag = rest.partition(" ")
            st.modules[name] = flag.strip() == "1"
        elif key == "version":
            name, _, value = rest.partition(" ")
            st.versions[name] = value.strip() or "-"
        elif key == "uptime" and rest.strip().isdigit():
            st.uptime_s = int(rest.strip())
        elif key == "exec-failed":
            st.error = f"`exec` into the container failed (exit {rest.strip()})"


async def status(pool: SshPool, cluster: Cluster, node: Node) -> Status:
    """State, image, uptime, the required mounts and devices inside, versions: one exec."""
    box = _box(node)
    st = Status(node.name, box.name, box.mode, "unknown")
    try:
        rc, out, err = await _sh(pool, node, _status_script(cluster, node), "container status")
    except SshError as exc:
        st.error = str(exc)
        return st
    found = _parse_found(out)
    if found is None:
        st.error = f"`{box.cli} inspect` failed (exit {rc}): {_last(err)}"
        return st
    st.state, st.image = found.state, found.image
    if found.running:
        _parse_inside(st, out)
    return st


# --------------------------------------------------------------------------- findings

Finding = tuple[str, str, str]
"""``(severity, message, fix)`` of one problem a container causes."""


def _state_finding(node: Node, st: Status) -> Finding:
    box = _box(node)
    if box.managed:
        fix = "run `pdtui containers CLUSTER up` (it creates or starts it)"
    else:
        fix = (
            f"start it on the node (`{box.cli} start {box.name}`); pdtui never starts an "
            "adopted container"
        )
    return "error", f"container {box.name} is {st.state}{': ' + st.error if st.error else ''}", fix


def _path_finding(box: Container, path: str) -> Finding:
    recreate = "then `pdtui containers CLUSTER up --recreate`"
    if path == "/etc/hccn.conf":
        return (
            "error",
            f"/etc/hccn.conf is not mounted in container {box.name}: vLLM starts, "
            "but HCCL logs \"'device ip' is not set\" and answers are garbled or the KV "
            "transfer fails (vllm-ascend issue #7711)",
            f"mount it (the default mounts do: -v /etc/hccn.conf:/etc/hccn.conf), {recreate}",
        )
    if path.startswith("/dev/"):
        return (
            "error",
            f"{path} is not visible in container {box.name}",
            f'pass it (devices = "all" or "instances"), {recreate}',
        )
    return "error", f"{path} is missing in container {box.name}", f"mount it, {recreate}"


def uses_mooncake(cluster: Cluster, node: Node) -> bool:
    """An instance on ``node`` transfers KV with a Mooncake connector."""
    return any(
        "Mooncake" in str(i.kv_transfer.get("kv_connector", ""))
        for i in cluster.instances
        if i.node == node.name
    )


def findings(node: Node, st: Status, *, mooncake: bool = False) -> list[Finding]:
    """What is wrong with the node's container for serving, each with its fix (``mooncake``:
    its instances need the ``mooncake`` module)."""
    box = _box(node)
    if st.state != "running" or st.error:
        return [_state_finding(node, st)]
    out = [_path_finding(box, p) for p in st.missing]
    out += [
        (
            "error",
            f"{tool} does not work inside container {box.name}: the health checks "
            "and the ranktable's reads fail there",
            "mount the driver's tools (the default mounts: hccn_tool, npu-smi, dcmi, "
            "driver lib64), then `pdtui containers CLUSTER up --recreate`",
        )
        for tool, ok in st.tools.items()
        if not ok
    ]
    out += [
        (
            "error",
            f"{name} is not installed in container {box.name} ({st.image})",
            "use the vllm-ascend image of your version (image = "
            '"quay.io/ascend/vllm-ascend:<version>")',
        )
        for name in ("vllm", "vllm_ascend")
        if st.versions.get(name, "-") == "-"
    ]
    if mooncake and not st.modules.get("mooncake", False):
        out.append(
            (
                "error",
                f"the Mooncake connector is used, but mooncake is not installed "
                f"in container {box.name} ({st.image})",
                "use a vllm-ascend image with Mooncake, or install it in the image "
                "(pip install mooncake-transfer-engine)",
            )
        )
    return out


# --------------------------------------------------------------------------- every node

R = TypeVar("R", Result, Status, Result | Status)


async def each(
    nodes: list[Node],
    work: Callable[[Node], Awaitable[R]],
    on_done: Callable[[R | Result], None] | None = None,
) -> list[R | Result]:
    """``work`` on every node at once; ``on_done`` as each finishes; results in node order
    (a node SSH cannot reach gives a failed `Result`)."""

    async def one(node: Node) -> R | Result:
        result: R | Result
        try:
            result = await work(node)
        except SshError as exc:
            result = Result(node.name, _box(node).name, "failed", False, str(exc))
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(n) for n in nodes)))


async def bring_up(pool: SshPool, cluster: Cluster) -> tuple[list[Result], list[str]]:
    """``up`` on every node with a container, then, when all are up, each checked from inside:
    (the ``up`` results, one ``NODE: problem - fix`` line per finding)."""
    nodes = [n for n in cluster.nodes if n.container is not None]
    ups = await each(nodes, lambda n: up(pool, n))
    if not all(r.ok for r in ups):
        return ups, []
    path = str(cluster.path) if cluster.path else "CLUSTER"
    statuses = await asyncio.gather(*(status(pool, cluster, n) for n in nodes))
    lines = [
        f"{n.name}: {msg} - {fix.replace('CLUSTER', path)}"
        for n, st in zip(nodes, statuses, strict=True)
        for _, msg, fix in findings(n, st, mooncake=uses_mooncake(cluster, n))
    ]
    return ups, lines


def format_uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
