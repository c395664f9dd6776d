"""From the file as written to the resolved cluster: defaults, placeholders, semantic checks.

One function per section of the file: nodes, the shared ``[env]``/``[serve]``, each instance,
the proxy and the ranktable. Problems are collected (file order, duplicates dropped) and
raised together as one `ClusterError`; warnings stay on the resolved `Cluster`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pdtui.cluster.model import (
    PLACEHOLDER_RE,
    Cluster,
    Container,
    Instance,
    Mount,
    Node,
    Process,
    Ssh,
    node_context,
)
from pdtui.cluster.spec import (
    CONTAINER_NAME_RE,
    DEFAULT_CONTAINER_MOUNTS,
    DEFAULT_CONTAINER_NAME,
    DEFAULT_HCCN_CONF,
    DEFAULT_HCCN_TOOL,
    DEFAULT_NPU_SMI,
    DEFAULT_RUN_DIR,
    IFNAME_LIST_RE,
    RESERVED_FLAGS,
    ClusterError,
    ClusterSpec,
    ContainerSpec,
    FlagValue,
    InstanceSpec,
    NodeDefaults,
    NodeSpec,
    ProxySpec,
    RanktableSpec,
    Role,
    SshSettings,
)
from pdtui.text import count

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FLAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
#: Flags whose value looks like a secret; ``api-key`` and ``hf-token`` are moved to the
#: environment by the launch plan, any other one would show in ``ps`` and the log.
_SECRET_FLAG_RE = re.compile(r"(^|-)(key|token|secret|password|passwd|credentials?)($|-)")
_MOVED_TO_ENV = ("api-key", "hf-token")
_LEGACY_CONNECTOR = "LLMDataDistCMgrConnector"
#: Proxy flags pdtui derives from ``proxy.host``/``port`` and the instances.
_PROXY_DERIVED = (
    "host",
    "port",
    "prefiller-hosts",
    "prefiller-ports",
    "decoder-hosts",
    "decoder-ports",
)

Context = dict[str, dict[str, str]]


@dataclass
class _Check:
    """What resolving has found so far, and which ports and devices are taken."""

    source: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ports: dict[tuple[str, int], str] = field(default_factory=dict)
    devices: dict[tuple[str, int], str] = field(default_factory=dict)

    def add(self, problem: str) -> None:
        self.problems.append(problem)


def resolve(
    spec: ClusterSpec, *, source: str = "cluster.toml", path: Path | None = None
) -> Cluster:
    """Apply defaults, fill placeholders and run the semantic checks."""
    chk = _Check(source)
    nodes = [_node(i, ns, spec.defaults, path) for i, ns in enumerate(spec.nodes)]
    by_name = _check_nodes(nodes, chk)
    _check_shared(spec, chk)
    instances = _instances(spec, nodes, by_name, chk)
    nodes = _containers(spec, nodes, instances, chk)
    cluster = Cluster(path=path, spec=spec, nodes=nodes, instances=instances, warnings=chk.warnings)
    if spec.proxy and not chk.problems:
        _check_proxy(cluster, spec.proxy, chk)
    if spec.ranktable and not chk.problems:
        _check_ranktable(cluster, spec.ranktable, chk)
    if spec.proxy:
        _check_env_names(spec.proxy.env, f"{chk.source}: proxy.env", chk)
        _check_ifnames(spec.proxy.env, lambda k: f"{chk.source}: proxy.env.{k}", chk)
    _check_roles(spec, chk)
    if chk.problems:
        raise ClusterError(list(dict.fromkeys(chk.problems)))
    return cluster


# --------------------------------------------------------------------------- [[nodes]]


def _pick(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _local(value: str | None, cluster_path: Path | None) -> str | None:
    """A local file named in the cluster file: ``~`` expanded, relative to the file's folder."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if not p.is_absolute() and cluster_path is not None:
        p = cluster_path.resolve().parent / p
    return str(p)


def _ssh(s: SshSettings, d: SshSettings, path: Path | None) -> Ssh:
    return Ssh(
        user=_pick(s.user, d.user),
        port=_pick(s.port, d.port),
        identity_file=_local(_pick(s.identity_file, d.identity_file), path),
        known_hosts=_local(_pick(s.known_hosts, d.known_hosts), path),
        jump=tuple(_pick(s.jump, d.jump, [])),
        connect_timeout=_pick(s.connect_timeout, d.connect_timeout, 10.0),
        command_timeout=_pick(s.command_timeout, d.command_timeout, 60.0),
    )


def _node(index: int, ns: NodeSpec, d: NodeDefaults, path: Path | None) -> Node:
    """A node with ``[defaults]`` and then pdtui's own defaults applied."""
    soc = _pick(ns.soc, d.soc, "A3")
    return Node(
        index=index,
        name=ns.name,
        host=ns.host,
        ip=ns.ip or ns.host,
        soc=soc,
        npus=_pick(ns.npus, d.npus, 16 if soc == "A3" else 8),
        nic=_pick(ns.nic, d.nic),
        hccn_conf=_pick(ns.hccn_conf, d.hccn_conf, DEFAULT_HCCN_CONF),
        run_dir=_pick(ns.run_dir, d.run_dir, DEFAULT_RUN_DIR),
        hccn_tool=_pick(ns.tools.hccn_tool, d.tools.hccn_tool, DEFAULT_HCCN_TOOL),
        npu_smi=_pick(ns.tools.npu_smi, d.tools.npu_smi, DEFAULT_NPU_SMI),
        ssh=_ssh(ns.ssh, d.ssh, path),
    )


def _check_nodes(nodes: list[Node], chk: _Check) -> dict[str, Node]:
    """Names, SSH addresses and data-plane IPs are unique; returns the nodes by name."""
    by_name: dict[str, Node] = {}
    seen_addr: dict[tuple[str, int | None], str] = {}
    seen_ip: dict[str, str] = {}
    for i, n in enumerate(nodes):
        where = f"{chk.source}: nodes[{i}]"
        if n.name in by_name:
            chk.add(f"{where}.name: duplicate node name {n.name!r}")
        by_name.setdefault(n.name, n)
        addr = (n.host, n.ssh.port)
        if addr in seen_addr:
            chk.add(f"{where}.host: {n.host!r} is also node {seen_addr[addr]!r}")
        seen_addr.setdefault(addr, n.name)
        if n.ip in seen_ip and seen_ip[n.ip] != n.name:
            chk.add(f"{where}.ip: {n.ip!r} is also node {seen_ip[n.ip]!r}")
        seen_ip.setdefault(n.ip, n.name)
    return by_name


# --------------------------------------------------------------------------- container


def _containers(
    spec: ClusterSpec, nodes: list[Node], instances: list[Instance], chk: _Check
) -> list[Node]:
    """Each node with its ``container`` (``[defaults.container]`` under ``[nodes.container]``)."""
    out: list[Node] = []
    for i, (node, ns) in enumerate(zip(nodes, spec.nodes, strict=True)):
        if spec.defaults.container is None and ns.container is None:
            out.append(node)
            continue
        own, dflt = ns.container or ContainerSpec(), spec.defaults.container or ContainerSpec()

        def where(key: str, own: ContainerSpec = own, i: int = i) -> str:
            section = f"nodes[{i}]" if key in own.model_fields_set else "defaults"
            return f"{chk.source}: {section}.container.{key}"

        def pick(
            key: str, default: Any, own: ContainerSpec = own, dflt: ContainerSpec = dflt
        ) -> Any:
            return _pick(getattr(own, key), getattr(dflt, key), default)

        ctx: Context = {"node": node_context(node)}
        ctx["model"] = {"path": _fill(spec.model.path, ctx, f"{chk.source}: model.path", [])}
        name = _fill(pick("name", DEFAULT_CONTAINER_NAME), ctx, where("name"), chk.problems)
        if not CONTAINER_NAME_RE.match(name):
            chk.add(
                f"{where('name')}: expected a container name (letters, digits, '.', '_' "
                f"or '-', after placeholders), got {name!r}"
            )
        mode = pick("mode", "managed")
        image = pick("image", None)
        if mode == "managed" and image is None:
            chk.add(
                f"{where('image')}: missing required key (a managed container needs an "
                "image, e.g. 'quay.io/ascend/vllm-ascend:v0.11.0rc0'; or set mode = "
                "'adopted' for an existing container)"
            )
        env = {k: _fill(v, ctx, where("env"), chk.problems) for k, v in pick("env", {}).items()}
        _check_env_names(env, where("env"), chk)
        on_node = sorted({d for ins in instances if ins.node == node.name for d in ins.devices})
        devices = {"all": tuple(range(node.npus)), "instances": tuple(on_node), "none": ()}[
            pick("devices", "all")
        ]
        mounts = _mounts(node, pick("mounts", None), ctx, where("mounts"), chk)
        out.append(
            replace(
                node,
                container=Container(
                    mode=mode,
                    cli=pick("cli", "docker"),
                    name=name,
                    image=image,
                    shm_size=pick("shm_size", "1g"),
                    network=pick("network", "host"),
                    devices=devices,
                    mounts=mounts,
                    env=env,
                    extra_args=tuple(pick("extra_args", [])),
                    cluster=spec.cluster.name,
                ),
            )
        )
    return out


def _default_mounts(node: Node, model_path: str) -> list[str]:
    """The tutorial's list, with the node's own tool and hccn.conf paths as sources."""
    own = {
        DEFAULT_HCCN_TOOL: node.hccn_tool,
        "/usr/local/bin/npu-smi": node.npu_smi,
        DEFAULT_HCCN_CONF: node.hccn_conf,
    }
    out = [
        f"{own[p]}:{p}" if own.get(p, "").startswith("/") else p for p in DEFAULT_CONTAINER_MOUNTS
    ]
    if model_path.startswith("/"):
        out.append(model_path)
    return out


def _mounts(
    node: Node, given: list[str] | None, ctx: Context, where: str, chk: _Check
) -> tuple[Mount, ...]:
    """``HOST:PATH[:ro|:rw]`` or ``PATH`` (the same on both sides); absolute paths only."""
    items = given if given is not None else _default_mounts(node, ctx["model"]["path"])
    out: list[Mount] = []
    for j, raw in enumerate(items):
        text = _fill(raw, ctx, f"{where}[{j}]", chk.problems)
        parts = text.split(":")
        ro = parts[-1] in {"ro", "rw"} and len(parts) > 1
        paths = parts[:-1] if ro else parts
        host, path = (paths[0], paths[0]) if len(paths) == 1 else [*paths, "", ""][:2]
        if len(paths) > 2 or not host.startswith("/") or not path.startswith("/"):
            chk.add(
                f"{where}[{j}]: expected 'HOST_PATH:CONTAINER_PATH[:ro]' or one absolute "
                f"path, got {text!r}"
            )
            continue
        out.append(Mount(host, path, read_only=ro and parts[-1] == "ro"))
    return tuple(out)


# --------------------------------------------------------------------------- [env], [serve]


def _check_env_names(env: dict[str, str], where: str, chk: _Check) -> None:
    for key in env:
        if not _ENV_NAME_RE.match(key):
            chk.add(
                f"{where}: {key!r} is not a valid environment variable name (letters, "
                "digits and '_', not starting with a digit)"
            )


def _check_ifnames(env: dict[str, str], where: Callable[[str], str], chk: _Check) -> None:
    """``*_SOCKET_IFNAME`` values (after placeholders) name interfaces, nothing else."""
    for key, value in env.items():
        if key.endswith("SOCKET_IFNAME") and value and not IFNAME_LIST_RE.match(value):
            chk.add(
                f"{where(key)}: expected a network interface name (or a comma-separated "
                f"list), got {value!r}"
            )


def _check_flag(key: str, where: str, problems: list[str]) -> None:
    if key.startswith("-"):
        problems.append(f"{where}: write the flag without leading dashes ({key.lstrip('-')!r})")
    elif not _FLAG_RE.match(key):
        problems.append(
            f"{where}: not a vllm serve flag name (use kebab-case, e.g. 'max-model-len')"
        )
    elif key in RESERVED_FLAGS:
        problems.append(f"{where}: set this with {RESERVED_FLAGS[key]} instead")


def _check_flags(serve: dict[str, FlagValue], where: str, chk: _Check) -> None:
    for key in serve:
        _check_flag(key, f"{where}.{key}", chk.problems)
        if _SECRET_FLAG_RE.search(key) and key not in _MOVED_TO_ENV:
            chk.warnings.append(
                f"{where}.{key}: looks like a secret; as a flag it shows in ps and in the "
                "process's log - pass it in [env] instead if the program reads it from there"
            )


def _check_shared(spec: ClusterSpec, chk: _Check) -> None:
    _check_env_names(spec.env, f"{chk.source}: env", chk)
    _check_flags(spec.serve, f"{chk.source}: serve", chk)


# --------------------------------------------------------------------------- placeholders


def _fill(value: str, ctx: Context, where: str, problems: list[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        scope, key = m.group(1), m.group(2)
        table = ctx.get(scope)
        if table is None:
            problems.append(f"{where}: placeholder {m.group(0)} is not available here")
            return m.group(0)
        if key not in table:
            known = ", ".join("{" + f"{scope}.{k}" + "}" for k in table)
            problems.append(f"{where}: unknown placeholder {m.group(0)} (known: {known})")
            return m.group(0)
        return table[key]

    return PLACEHOLDER_RE.sub(sub, value)


def _fill_any(value: Any, ctx: Context, where: str, problems: list[str]) -> Any:
    if isinstance(value, str):
        return _fill(value, ctx, where, problems)
    if isinstance(value, list):
        return [_fill_any(v, ctx, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _fill_any(v, ctx, f"{where}.{k}", problems) for k, v in value.items()}
    return value


def _context(spec: ClusterSpec, node: Node, ins: InstanceSpec, chk: _Check) -> Context:
    """What ``{scope.key}`` placeholders mean for one instance on its node."""
    ctx: Context = {
        "node": node_context(node),
        "instance": {
            "name": ins.name,
            "role": ins.role,
            "port": str(ins.port),
            "devices": ",".join(str(x) for x in ins.devices),
        },
    }
    on_node = {"node": ctx["node"]}
    model_path = _fill(spec.model.path, on_node, f"{chk.source}: model.path", chk.problems)
    ctx["model"] = {"path": model_path, "served_name": spec.model.served_name}
    if spec.ranktable:
        rt_path = _fill(spec.ranktable.path, on_node, f"{chk.source}: ranktable.path", chk.problems)
        ctx["ranktable"] = {"path": rt_path}
    if spec.proxy:
        ctx["proxy"] = {
            "host": spec.proxy.host,
            "port": str(spec.proxy.port),
            "node": spec.proxy.node,
        }
    return ctx


# --------------------------------------------------------------------------- [[instances]]


def _instances(
    spec: ClusterSpec, nodes: list[Node], by_name: dict[str, Node], chk: _Check
) -> list[Instance]:
    out: list[Instance] = []
    seen: set[str] = set()
    for i, ins in enumerate(spec.instances):
        where = f"{chk.source}: instances[{i}]"
        if ins.name in seen:
            chk.add(f"{where}.name: duplicate instance name {ins.name!r}")
        seen.add(ins.name)
        node = by_name.get(ins.node)
        if node is None:
            known = ", ".join(repr(n.name) for n in nodes)
            chk.add(f"{where}.node: unknown node {ins.node!r} (nodes: {known})")
            continue
        out.append(_instance(i, spec, ins, node, where, chk))
    _check_process_names(spec, out, chk)
    return out


#: Names ``--only`` and the run folders give to the proxy and the roles.
_RESERVED = ("proxy", "prefill", "decode")


def _check_process_names(spec: ClusterSpec, instances: list[Instance], chk: _Check) -> None:
    """Every process (a DP rank too) has its own name, apart from the proxy and the roles:
    two processes with one name would share a run folder."""
    index = {ins.name: i for i, ins in enumerate(spec.instances)}
    owner: dict[str, str] = {}
    for inst in instances:
        where = f"{chk.source}: instances[{index[inst.name]}].name"
        if inst.name in _RESERVED:
            chk.add(
                f"{where}: {inst.name!r} is reserved (--only and the run folders use it "
                "for the proxy or a role); rename the instance"
            )
        for name in {inst.name, *(p.name for p in inst.processes)}:
            other = owner.setdefault(name, inst.name)
            if other != inst.name:
                chk.add(
                    f"{where}: {name!r} is also the name of a process of instance "
                    f"{other!r} (a data-parallel rank); rename one of them"
                )


def _instance(
    index: int, spec: ClusterSpec, ins: InstanceSpec, node: Node, where: str, chk: _Check
) -> Instance:
    _check_env_names(ins.env, f"{where}.env", chk)
    _check_flags(ins.serve, f"{where}.serve", chk)
    _check_devices(ins, node, where, chk)
    serve = {**spec.serve, **ins.serve}
    processes = _expand(ins, serve, where, chk.problems)
    _claim(ins, node, processes, where, chk)
    ctx = _context(spec, node, ins, chk)
    _check_nic(spec, ins, node, where, chk)

    def at(section: str, key: str, own: dict[str, Any]) -> str:
        return f"{where}.{section}.{key}" if key in own else f"{chk.source}: {section}.{key}"

    env = {
        k: _fill(v, ctx, at("env", k, ins.env), chk.problems)
        for k, v in {**spec.env, **ins.env}.items()
    }
    filled_serve = {
        k: _fill_any(v, ctx, at("serve", k, ins.serve), chk.problems) for k, v in serve.items()
    }
    kv = _fill_any(ins.kv_transfer, ctx, f"{where}.kv_transfer", chk.problems)
    _check_kv(ins, kv, where, spec, chk)
    _check_ifnames(env, lambda k: at("env", k, ins.env), chk)
    return Instance(
        index=index,
        name=ins.name,
        role=ins.role,
        node=ins.node,
        devices=tuple(ins.devices),
        port=ins.port,
        env=env,
        serve=filled_serve,
        kv_transfer=kv,
        dp=ins.dp,
        processes=tuple(processes),
    )


def _check_devices(ins: InstanceSpec, node: Node, where: str, chk: _Check) -> None:
    bad = [dev for dev in ins.devices if dev >= node.npus or dev < 0]
    if bad:
        chk.add(
            f"{where}.devices: device {bad[0]} does not exist on node {node.name!r}"
            f" ({node.npus} NPUs: 0-{node.npus - 1})"
        )
    if len(set(ins.devices)) != len(ins.devices):
        chk.add(f"{where}.devices: a device is listed twice")


def _claim(
    ins: InstanceSpec, node: Node, processes: list[Process], where: str, chk: _Check
) -> None:
    """Take the instance's ports and devices on its node; a second taker is a problem."""
    for proc in processes:
        pkey = (node.name, proc.port)
        if pkey in chk.ports:
            chk.add(
                f"{where}.port: port {proc.port} on node {node.name!r} is also used by"
                f" {chk.ports[pkey]!r}"
            )
        chk.ports.setdefault(pkey, proc.name)
    for dev in ins.devices:
        dkey = (node.name, dev)
        if dkey in chk.devices:
            chk.add(
                f"{where}.devices: device {dev} on node {node.name!r} is also used by"
                f" {chk.devices[dkey]!r}"
            )
            break
    for dev in ins.devices:
        chk.devices.setdefault((node.name, dev), ins.name)


def _check_nic(spec: ClusterSpec, ins: InstanceSpec, node: Node, where: str, chk: _Check) -> None:
    values = [*spec.env.values(), *ins.env.values()]
    if node.nic is None and any("{node.nic}" in v for v in values):
        chk.add(f"{where}: env uses {{node.nic}} but node {node.name!r} has no nic")


def _expand(
    ins: InstanceSpec, serve: dict[str, FlagValue], where: str, problems: list[str]
) -> list[Process]:
    """The instance's processes: itself, or one per local data-parallel rank."""
    if ins.dp is None:
        return [Process(ins.name, ins.name, ins.role, ins.node, ins.port, tuple(ins.devices), None)]
    tp = serve.get("tensor-parallel-size", 1)
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        problems.append(f"{where}.serve.tensor-parallel-size: expected a positive integer")
        return []
    dp = ins.dp
    if len(ins.devices) != dp.local * tp:
        problems.append(
            f"{where}.devices: {count(len(ins.devices), 'device')}, but dp.local {dp.local} x"
            f" tensor-parallel-size {tp} needs {dp.local * tp}"
        )
        return []
    if dp.rank_start + dp.local > dp.size:
        problems.append(
            f"{where}.dp: ranks {dp.rank_start}..{dp.rank_start + dp.local - 1} exceed dp.size"
            f" {dp.size}"
        )
    return [
        Process(
            ins.name,
            f"{ins.name}.dp{dp.rank_start + r}",
            ins.role,
            ins.node,
            ins.port + r,
            tuple(ins.devices[r * tp : (r + 1) * tp]),
            dp.rank_start + r,
        )
        for r in range(dp.local)
    ]


def _check_kv(
    ins: InstanceSpec, kv: dict[str, Any], where: str, spec: ClusterSpec, chk: _Check
) -> None:
    if not kv:
        chk.warnings.append(f"{where}.kv_transfer: empty; the instance will not take part in PD")
        return
    role = kv.get("kv_role")
    want = "kv_producer" if ins.role == "prefill" else "kv_consumer"
    if role is not None and role not in {want, "kv_both"}:
        chk.add(
            f"{where}.kv_transfer.kv_role: {role!r} does not fit a {ins.role} instance"
            f" (expected {want!r})"
        )
    if "kv_connector" not in kv:
        chk.add(f"{where}.kv_transfer.kv_connector: missing required key")
    elif kv["kv_connector"] == _LEGACY_CONNECTOR and spec.ranktable is None:
        chk.add(
            f"{where}.kv_transfer.kv_connector: {_LEGACY_CONNECTOR} needs a [ranktable] section"
        )
    try:
        json.dumps(kv)
    except (TypeError, ValueError):
        chk.add(f"{where}.kv_transfer: cannot be written as JSON")


def _check_roles(spec: ClusterSpec, chk: _Check) -> None:
    roles = {i.role for i in spec.instances}
    for role in ("prefill", "decode"):
        if spec.instances and role not in roles:
            chk.warnings.append(f"{chk.source}: instances: no {role} instance")


# --------------------------------------------------------------------------- [proxy]


def _parse_backend(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host, int(port)


def _check_proxy(cluster: Cluster, proxy: ProxySpec, chk: _Check) -> None:
    names = [n.name for n in cluster.nodes]
    if proxy.node not in names:
        known = ", ".join(repr(n) for n in names)
        chk.add(f"{chk.source}: proxy.node: unknown node {proxy.node!r} (nodes: {known})")
        return
    taken = chk.ports.get((proxy.node, proxy.port))
    if taken is not None:
        chk.add(
            f"{chk.source}: proxy.port: port {proxy.port} on node {proxy.node!r} is also used"
            f" by {taken!r}"
        )
    _check_backends(cluster, "prefill", "prefillers", proxy.prefillers, chk)
    _check_backends(cluster, "decode", "decoders", proxy.decoders, chk)
    _check_secret_args(proxy.args, chk)
    for flag in _PROXY_DERIVED:
        if flag in proxy.args:
            chk.add(
                f"{chk.source}: proxy.args.{flag}: set by pdtui from proxy.host/port and the"
                " instances"
            )


def _check_secret_args(args: dict[str, FlagValue], chk: _Check) -> None:
    for key in args:
        if _SECRET_FLAG_RE.search(key):
            chk.warnings.append(
                f"{chk.source}: proxy.args.{key}: looks like a secret; as a flag it shows in "
                "ps and in the proxy's log - pass it in [proxy.env] if the proxy reads it there"
            )


def _check_backends(
    cluster: Cluster, role: Role, key: str, given: list[str] | None, chk: _Check
) -> None:
    """An explicit ``proxy.prefillers``/``decoders`` list must name the role's processes."""
    if given is None:
        return
    for j, b in enumerate(given):
        if _parse_backend(b) is None:
            chk.add(f"{chk.source}: proxy.{key}[{j}]: expected 'host:port', got {b!r}")
    expected = cluster.backends(role)
    if sorted(given) != sorted(expected):
        chk.add(
            f"{chk.source}: proxy.{key}: {given!r} does not match the {role} instances"
            f" {expected!r} (leave the key out to derive it)"
        )


# --------------------------------------------------------------------------- [ranktable]


def _check_ranktable(cluster: Cluster, rt: RanktableSpec, chk: _Check) -> None:
    source = chk.source
    pre = sum(len(p.devices) for p in cluster.processes("prefill"))
    dec = sum(len(p.devices) for p in cluster.processes("decode"))
    if pre and rt.prefill_device_count < pre:
        chk.add(
            f"{source}: ranktable.prefill_device_count: {rt.prefill_device_count} is fewer than"
            f" the {count(pre, 'device')} of the prefill instances"
        )
    if dec and rt.decode_device_count < dec:
        chk.add(
            f"{source}: ranktable.decode_device_count: {rt.decode_device_count} is fewer than"
            f" the {count(dec, 'device')} of the decode instances"
        )
    total = sum(n.npus for n in cluster.nodes)
    if rt.prefill_device_count + rt.decode_device_count > total:
        chk.add(
            f"{source}: ranktable: prefill_device_count + decode_device_count ="
            f" {rt.prefill_device_count + rt.decode_device_count} exceeds the cluster's"
            f" {total} NPUs"
        )
