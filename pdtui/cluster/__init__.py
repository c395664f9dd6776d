"""The cluster file: a pydantic model of one PD deployment, loaded with clear errors.

A cluster file is TOML. Shared node settings live in ``[defaults]`` and each
``[[nodes]]`` entry overrides them; shared ``vllm serve`` flags and environment
live in ``[serve]`` and ``[env]`` and each ``[[instances]]`` entry overrides them.
Values may reference the node or instance they end up on with a small set of
placeholders (``{node.ip}``, ``{node.nic}``, ``{instance.port}``, ...), so one
line in ``[env]`` serves every node. Everything else is taken literally.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from pdtui.files import MAX_FILE_BYTES, FileTooLarge, atomic_write, read_text

__all__ = ["MAX_FILE_BYTES", "FileTooLarge", "atomic_write", "read_text"]

Soc = Literal["A2", "A3"]
Role = Literal["prefill", "decode"]

DEFAULT_HCCN_TOOL = "/usr/local/Ascend/driver/tools/hccn_tool"
DEFAULT_NPU_SMI = "npu-smi"
DEFAULT_HCCN_CONF = "/etc/hccn.conf"
DEFAULT_RUN_DIR = "/tmp/pdtui"

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FLAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PLACEHOLDER_RE = re.compile(r"\{(node|instance|model|ranktable|proxy)\.([a-z_]+)\}")

# vllm serve flags that pdtui sets itself from other keys.
RESERVED_FLAGS = {
    "port": "instances[].port",
    "served-model-name": "model.served_name",
    "kv-transfer-config": "instances[].kv_transfer",
    "model": "model.path",
}


class ClusterError(Exception):
    """A cluster file could not be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_devices(value: object) -> list[int]:
    """Accept ``[0, 1, 2]`` or a range string like ``"0-7,12,14-15"``."""
    if isinstance(value, str):
        out: list[int] = []
        for part in value.replace(" ", "").split(","):
            if not part:
                raise ValueError(f"expected device ids like '0-15' or '0,2,4', got {value!r}")
            lo, sep, hi = part.partition("-")
            if not lo.isdigit() or (sep and not hi.isdigit()):
                raise ValueError(f"expected device ids like '0-15' or '0,2,4', got {value!r}")
            start, end = int(lo), int(hi) if sep else int(lo)
            if end < start:
                raise ValueError(f"device range {part!r} runs backwards")
            out.extend(range(start, end + 1))
        return out
    if isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"expected a list of device ids (integers), got {value!r}")
        return list(value)
    raise ValueError(f"expected a list of device ids or a range string, got {value!r}")


def format_devices(devices: list[int]) -> str:
    """``[0,1,2,3,8]`` -> ``"0-3,8"``."""
    parts: list[str] = []
    i = 0
    while i < len(devices):
        j = i
        while j + 1 < len(devices) and devices[j + 1] == devices[j] + 1:
            j += 1
        parts.append(str(devices[i]) if i == j else f"{devices[i]}-{devices[j]}")
        i = j + 1
    return ",".join(parts)


Devices = Annotated[list[int], BeforeValidator(parse_devices)]
FlagValue = str | int | float | bool | list[Any] | dict[str, Any]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class SshSettings(_Model):
    """How pdtui reaches a node; unset keys fall back to ``~/.ssh/config``, then defaults."""

    user: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    identity_file: str | None = None
    known_hosts: str | None = None
    jump: list[str] | None = None
    connect_timeout: float | None = Field(default=None, gt=0)
    command_timeout: float | None = Field(default=None, gt=0)

    @field_validator("jump", mode="before")
    @classmethod
    def _one_jump(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class ToolPaths(_Model):
    hccn_tool: str | None = None
    npu_smi: str | None = None


class NodeDefaults(_Model):
    """Settings shared by every node; each node may override any of them."""

    soc: Soc | None = None
    npus: int | None = Field(default=None, ge=1, le=64)
    nic: str | None = None
    hccn_conf: str | None = None
    run_dir: str | None = None
    ssh: SshSettings = Field(default_factory=SshSettings)
    tools: ToolPaths = Field(default_factory=ToolPaths)


class NodeSpec(NodeDefaults):
    """One NPU server as written in the file."""

    name: str
    host: str
    ip: str | None = None

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"expected letters, digits, '.', '_' or '-', got {v!r}")
        return v


class DataParallel(_Model):
    """Several ``vllm serve`` processes of one instance group on consecutive ports."""

    size: int = Field(ge=1)
    local: int = Field(ge=1)
    rank_start: int = Field(default=0, ge=0)
    address: str
    rpc_port: int = Field(default=12345, ge=1, le=65535)


class InstanceSpec(_Model):
    """A prefill or decode instance (or a data-parallel group of them) on one node."""

    name: str
    role: Role
    node: str
    devices: Devices
    port: int = Field(ge=1, le=65535)
    env: dict[str, str] = Field(default_factory=dict)
    serve: dict[str, FlagValue] = Field(default_factory=dict)
    kv_transfer: dict[str, Any] = Field(default_factory=dict)
    dp: DataParallel | None = None

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"expected letters, digits, '.', '_' or '-', got {v!r}")
        return v


class ModelSpec(_Model):
    path: str
    served_name: str
    vllm: str = "vllm"


class RanktableSpec(_Model):
    """The legacy LLMDataDist ranktable: where it lives on every node and how it is split."""

    path: str
    prefill_device_count: int = Field(ge=1)
    decode_device_count: int = Field(ge=1)
    local_device_ids: Devices | None = None


class ProxySpec(_Model):
    node: str
    host: str
    port: int = Field(ge=1, le=65535)
    script: str = "load_balance_proxy_server_example.py"
    python: str = "python"
    args: dict[str, FlagValue] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    prefillers: list[str] | None = None
    decoders: list[str] | None = None


class ClusterInfo(_Model):
    name: str
    description: str = ""


class ClusterSpec(_Model):
    """The cluster file exactly as written (before defaults are applied)."""

    cluster: ClusterInfo
    defaults: NodeDefaults = Field(default_factory=NodeDefaults)
    nodes: list[NodeSpec] = Field(min_length=1)
    model: ModelSpec
    env: dict[str, str] = Field(default_factory=dict)
    serve: dict[str, FlagValue] = Field(default_factory=dict)
    instances: list[InstanceSpec] = Field(default_factory=list)
    ranktable: RanktableSpec | None = None
    proxy: ProxySpec | None = None


# ---------------------------------------------------------------------------
# The resolved view: defaults applied, placeholders filled in.


@dataclass(frozen=True)
class Ssh:
    user: str | None
    port: int | None
    identity_file: str | None
    known_hosts: str | None
    jump: tuple[str, ...]
    connect_timeout: float
    command_timeout: float


@dataclass(frozen=True)
class Node:
    """A node with every default applied."""

    index: int
    name: str
    host: str
    ip: str
    soc: Soc
    npus: int
    nic: str | None
    hccn_conf: str
    run_dir: str
    hccn_tool: str
    npu_smi: str
    ssh: Ssh


@dataclass(frozen=True)
class Process:
    """One ``vllm serve`` process: an instance, or one data-parallel rank of it."""

    instance: str
    name: str
    role: Role
    node: str
    port: int
    devices: tuple[int, ...]
    dp_rank: int | None


@dataclass(frozen=True)
class Instance:
    index: int
    name: str
    role: Role
    node: str
    devices: tuple[int, ...]
    port: int
    env: dict[str, str]
    serve: dict[str, FlagValue]
    kv_transfer: dict[str, Any]
    dp: DataParallel | None
    processes: tuple[Process, ...]


@dataclass
class Cluster:
    """A validated cluster, ready for every command and screen."""

    path: Path | None
    spec: ClusterSpec
    nodes: list[Node]
    instances: list[Instance]
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.cluster.name

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def instance(self, name: str) -> Instance:
        for i in self.instances:
            if i.name == name:
                return i
        raise KeyError(name)

    def ranktable_path(self, node: Node) -> str:
        """The ranktable's path on ``node`` (``{node.*}`` placeholders filled in)."""
        if self.spec.ranktable is None:
            raise KeyError("ranktable")
        return node_fill(self.spec.ranktable.path, node)

    def model_path(self, node: Node) -> str:
        """The model's path on ``node`` (``{node.*}`` placeholders filled in)."""
        return node_fill(self.spec.model.path, node)

    def processes(self, role: Role | None = None) -> Iterator[Process]:
        for inst in self.instances:
            for p in inst.processes:
                if role is None or p.role == role:
                    yield p

    def backends(self, role: Role) -> list[str]:
        """``host:port`` of every process of a role, in file order (what the proxy lists)."""
        return [f"{self.node(p.node).ip}:{p.port}" for p in self.processes(role)]

    def summary(self) -> list[str]:
        """A few human lines: nodes, instances, proxy."""
        lines = [f"cluster {self.name}: {len(self.nodes)} nodes, {len(self.instances)} instances"]
        for n in self.nodes:
            lines.append(
                f"  node {n.name:<12} {n.host:<16} ip {n.ip:<16} {n.soc} x{n.npus}"
                f"  nic {n.nic or '-'}"
            )
        for i in self.instances:
            dp = f"  dp {len(i.processes)} ranks" if i.dp else ""
            lines.append(
                f"  {i.role:<7} {i.name:<12} on {i.node:<12} port {i.port:<5}"
                f" devices {format_devices(list(i.devices))}{dp}"
            )
        proxy = self.spec.proxy
        if proxy:
            lines.append(
                f"  proxy   on {proxy.node} {proxy.host}:{proxy.port}  "
                f"{len(self.backends('prefill'))} prefillers, "
                f"{len(self.backends('decode'))} decoders"
            )
        if self.spec.ranktable:
            lines.append(f"  ranktable {self.spec.ranktable.path}")
        return lines


def node_fill(text: str, node: Node) -> str:
    """``text`` with its ``{node.*}`` placeholders filled in for ``node``."""
    ctx = {"name": node.name, "host": node.host, "ip": node.ip, "nic": node.nic or "",
           "soc": node.soc}
    return _PLACEHOLDER_RE.sub(
        lambda m: ctx.get(m.group(2), m.group(0)) if m.group(1) == "node" else m.group(0),
        text,
    )


# ---------------------------------------------------------------------------
# Loading.


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in {"list[int]"}:
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _value_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def _describe(err: Mapping[str, Any], raw: Any) -> str:
    kind = err["type"]
    loc: tuple[int | str, ...] = tuple(err["loc"])
    given = err.get("input", _value_at(raw, loc))
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see the README's cluster-file reference)"
    if kind == "missing":
        return "missing required key"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {_show(given)}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}, got {_show(given)}"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        ctx = err.get("ctx", {})
        bound = next(iter(ctx.values())) if ctx else "?"
        word = {
            "greater_than_equal": "at least",
            "less_than_equal": "at most",
            "greater_than": "more than",
            "less_than": "less than",
        }[kind]
        return f"expected a value {word} {bound}, got {_show(given)}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "value_error":
        msg = str(err.get("msg", ""))
        return msg.removeprefix("Value error, ")
    return f"{err.get('msg', kind)} (got {_show(given)})"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list" if len(repr(value)) > 40 else repr(value)
    return repr(value)


def parse_spec(data: dict[str, Any], source: str) -> ClusterSpec:
    """Validate raw TOML data; raise ``ClusterError`` with one line per problem."""
    try:
        return ClusterSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(f"{source}: {_loc(loc)}: {_describe(err, data)}")
        raise ClusterError(problems) from None


def load(path: str | os.PathLike[str]) -> Cluster:
    """Read, validate and resolve a cluster file."""
    p = Path(path)
    source = p.name
    try:
        text = read_text(p)
    except FileNotFoundError:
        raise ClusterError([f"{p}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClusterError([f"{p}: cannot read: {exc}"]) from None
    return loads(text, source=source, path=p)


def loads(text: str, *, source: str = "cluster.toml", path: Path | None = None) -> Cluster:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClusterError([f"{source}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ClusterError([f"{source}: not a cluster file: values nested too deeply"]) from None
    try:
        spec = parse_spec(data, source)
    except RecursionError:
        raise ClusterError([f"{source}: not a cluster file: values nested too deeply"]) from None
    return resolve(spec, source=source, path=path)


def _fill(value: str, ctx: dict[str, dict[str, str]], where: str, problems: list[str]) -> str:
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

    return _PLACEHOLDER_RE.sub(sub, value)


def _fill_any(value: Any, ctx: dict[str, dict[str, str]], where: str, problems: list[str]) -> Any:
    if isinstance(value, str):
        return _fill(value, ctx, where, problems)
    if isinstance(value, list):
        return [_fill_any(v, ctx, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _fill_any(v, ctx, f"{where}.{k}", problems) for k, v in value.items()}
    return value


def _local(value: str | None, cluster_path: Path | None) -> str | None:
    """A local file named in the cluster file: ``~`` expanded, relative to the file's folder."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if not p.is_absolute() and cluster_path is not None:
        p = cluster_path.resolve().parent / p
    return str(p)


def _pick(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def resolve(
    spec: ClusterSpec, *, source: str = "cluster.toml", path: Path | None = None
) -> Cluster:
    """Apply defaults, fill placeholders and run the semantic checks."""
    problems: list[str] = []
    warnings: list[str] = []
    d = spec.defaults
    nodes: list[Node] = []
    for i, ns in enumerate(spec.nodes):
        soc = _pick(ns.soc, d.soc, "A3")
        nodes.append(
            Node(
                index=i,
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
                ssh=Ssh(
                    user=_pick(ns.ssh.user, d.ssh.user),
                    port=_pick(ns.ssh.port, d.ssh.port),
                    identity_file=_local(_pick(ns.ssh.identity_file, d.ssh.identity_file), path),
                    known_hosts=_local(_pick(ns.ssh.known_hosts, d.ssh.known_hosts), path),
                    jump=tuple(_pick(ns.ssh.jump, d.ssh.jump, [])),
                    connect_timeout=_pick(ns.ssh.connect_timeout, d.ssh.connect_timeout, 10.0),
                    command_timeout=_pick(ns.ssh.command_timeout, d.ssh.command_timeout, 60.0),
                ),
            )
        )

    by_name: dict[str, Node] = {}
    seen_addr: dict[tuple[str, int | None], str] = {}
    seen_ip: dict[str, str] = {}
    for i, n in enumerate(nodes):
        if n.name in by_name:
            problems.append(f"{source}: nodes[{i}].name: duplicate node name {n.name!r}")
        by_name.setdefault(n.name, n)
        addr = (n.host, n.ssh.port)
        if addr in seen_addr:
            problems.append(
                f"{source}: nodes[{i}].host: {n.host!r} is also node {seen_addr[addr]!r}"
            )
        seen_addr.setdefault(addr, n.name)
        if n.ip in seen_ip and seen_ip[n.ip] != n.name:
            problems.append(f"{source}: nodes[{i}].ip: {n.ip!r} is also node {seen_ip[n.ip]!r}")
        seen_ip.setdefault(n.ip, n.name)

    model_ctx = {"path": spec.model.path, "served_name": spec.model.served_name}
    rt_ctx = {"path": spec.ranktable.path} if spec.ranktable else None
    proxy_ctx = (
        {"host": spec.proxy.host, "port": str(spec.proxy.port), "node": spec.proxy.node}
        if spec.proxy
        else None
    )

    for key in spec.env:
        if not _ENV_NAME_RE.match(key):
            problems.append(f"{source}: env.{key}: not a valid environment variable name")
    for key in spec.serve:
        _check_flag(key, f"{source}: serve.{key}", problems)

    instances: list[Instance] = []
    used: dict[tuple[str, int], str] = {}
    used_dev: dict[tuple[str, int], str] = {}
    seen_inst: set[str] = set()
    for i, ins in enumerate(spec.instances):
        where = f"{source}: instances[{i}]"
        if ins.name in seen_inst:
            problems.append(f"{where}.name: duplicate instance name {ins.name!r}")
        seen_inst.add(ins.name)
        node = by_name.get(ins.node)
        if node is None:
            known = ", ".join(repr(n.name) for n in nodes)
            problems.append(f"{where}.node: unknown node {ins.node!r} (nodes: {known})")
            continue
        for key in ins.env:
            if not _ENV_NAME_RE.match(key):
                problems.append(f"{where}.env.{key}: not a valid environment variable name")
        for key in ins.serve:
            _check_flag(key, f"{where}.serve.{key}", problems)
        bad = [dev for dev in ins.devices if dev >= node.npus or dev < 0]
        if bad:
            problems.append(
                f"{where}.devices: device {bad[0]} does not exist on node {node.name!r}"
                f" ({node.npus} NPUs: 0-{node.npus - 1})"
            )
        if len(set(ins.devices)) != len(ins.devices):
            problems.append(f"{where}.devices: a device is listed twice")
        serve = {**spec.serve, **ins.serve}
        processes = _expand(ins, serve, where, problems)
        for proc in processes:
            pkey = (node.name, proc.port)
            if pkey in used:
                problems.append(
                    f"{where}.port: port {proc.port} on node {node.name!r} is also used by"
                    f" {used[pkey]!r}"
                )
            used.setdefault(pkey, proc.name)
        for dev in ins.devices:
            dkey = (node.name, dev)
            if dkey in used_dev:
                problems.append(
                    f"{where}.devices: device {dev} on node {node.name!r} is also used by"
                    f" {used_dev[dkey]!r}"
                )
                break
        for dev in ins.devices:
            used_dev.setdefault((node.name, dev), ins.name)
        ctx: dict[str, dict[str, str]] = {
            "node": {
                "name": node.name,
                "host": node.host,
                "ip": node.ip,
                "nic": node.nic or "",
                "soc": node.soc,
            },
            "instance": {
                "name": ins.name,
                "role": ins.role,
                "port": str(ins.port),
                "devices": ",".join(str(x) for x in ins.devices),
            },
            "model": model_ctx,
        }
        ctx["model"] = {**model_ctx, "path": _fill(model_ctx["path"], {"node": ctx["node"]},
                                                   f"{source}: model.path", problems)}
        if rt_ctx:
            ctx["ranktable"] = {
                "path": _fill(rt_ctx["path"], {"node": ctx["node"]},
                              f"{source}: ranktable.path", problems)
            }
        if proxy_ctx:
            ctx["proxy"] = proxy_ctx
        if node.nic is None and any(
            "{node.nic}" in v for v in [*spec.env.values(), *ins.env.values()]
        ):
            problems.append(f"{where}: env uses {{node.nic}} but node {node.name!r} has no nic")
        env = {
            k: _fill(v, ctx, f"{where}.env.{k}" if k in ins.env else f"{source}: env.{k}",
                     problems)
            for k, v in {**spec.env, **ins.env}.items()
        }
        filled_serve = {
            k: _fill_any(
                v, ctx, f"{where}.serve.{k}" if k in ins.serve else f"{source}: serve.{k}",
                problems,
            )
            for k, v in serve.items()
        }
        kv = _fill_any(ins.kv_transfer, ctx, f"{where}.kv_transfer", problems)
        _check_kv(ins, kv, where, problems, warnings, spec)
        instances.append(
            Instance(
                index=i,
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
        )

    cluster = Cluster(path=path, spec=spec, nodes=nodes, instances=instances, warnings=warnings)
    if spec.proxy and not problems:
        _check_proxy(cluster, spec.proxy, source, problems, used)
    if spec.ranktable and not problems:
        _check_ranktable(cluster, spec.ranktable, source, problems)
    if spec.instances and not any(i.role == "prefill" for i in spec.instances):
        warnings.append(f"{source}: instances: no prefill instance")
    if spec.instances and not any(i.role == "decode" for i in spec.instances):
        warnings.append(f"{source}: instances: no decode instance")
    if problems:
        raise ClusterError(list(dict.fromkeys(problems)))
    return cluster


def _check_flag(key: str, where: str, problems: list[str]) -> None:
    if key.startswith("-"):
        problems.append(f"{where}: write the flag without leading dashes ({key.lstrip('-')!r})")
    elif not _FLAG_RE.match(key):
        problems.append(
            f"{where}: not a vllm serve flag name (use kebab-case, e.g. 'max-model-len')"
        )
    elif key in RESERVED_FLAGS:
        problems.append(f"{where}: set this with {RESERVED_FLAGS[key]} instead")


def _expand(
    ins: InstanceSpec, serve: dict[str, FlagValue], where: str, problems: list[str]
) -> list[Process]:
    if ins.dp is None:
        return [
            Process(ins.name, ins.name, ins.role, ins.node, ins.port, tuple(ins.devices), None)
        ]
    tp = serve.get("tensor-parallel-size", 1)
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        problems.append(f"{where}.serve.tensor-parallel-size: expected a positive integer")
        return []
    dp = ins.dp
    if len(ins.devices) != dp.local * tp:
        problems.append(
            f"{where}.devices: {len(ins.devices)} devices, but dp.local {dp.local} x"
            f" tensor-parallel-size {tp} needs {dp.local * tp}"
        )
        return []
    if dp.rank_start + dp.local > dp.size:
        problems.append(
            f"{where}.dp: ranks {dp.rank_start}..{dp.rank_start + dp.local - 1} exceed dp.size"
            f" {dp.size}"
        )
    out = []
    for r in range(dp.local):
        devs = tuple(ins.devices[r * tp : (r + 1) * tp])
        out.append(
            Process(
                ins.name,
                f"{ins.name}.dp{dp.rank_start + r}",
                ins.role,
                ins.node,
                ins.port + r,
                devs,
                dp.rank_start + r,
            )
        )
    return out


_LEGACY_CONNECTOR = "LLMDataDistCMgrConnector"


def _check_kv(
    ins: InstanceSpec,
    kv: dict[str, Any],
    where: str,
    problems: list[str],
    warnings: list[str],
    spec: ClusterSpec,
) -> None:
    if not kv:
        warnings.append(f"{where}.kv_transfer: empty; the instance will not take part in PD")
        return
    role = kv.get("kv_role")
    want = "kv_producer" if ins.role == "prefill" else "kv_consumer"
    if role is not None and role not in {want, "kv_both"}:
        problems.append(
            f"{where}.kv_transfer.kv_role: {role!r} does not fit a {ins.role} instance"
            f" (expected {want!r})"
        )
    if "kv_connector" not in kv:
        problems.append(f"{where}.kv_transfer.kv_connector: missing required key")
    elif kv["kv_connector"] == _LEGACY_CONNECTOR and spec.ranktable is None:
        problems.append(
            f"{where}.kv_transfer.kv_connector: {_LEGACY_CONNECTOR} needs a [ranktable] section"
        )
    try:
        json.dumps(kv)
    except (TypeError, ValueError):
        problems.append(f"{where}.kv_transfer: cannot be written as JSON")


def _parse_backend(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host, int(port)


def _check_proxy(
    cluster: Cluster,
    proxy: ProxySpec,
    source: str,
    problems: list[str],
    used: dict[tuple[str, int], str],
) -> None:
    names = [n.name for n in cluster.nodes]
    if proxy.node not in names:
        known = ", ".join(repr(n) for n in names)
        problems.append(f"{source}: proxy.node: unknown node {proxy.node!r} (nodes: {known})")
        return
    if (proxy.node, proxy.port) in used:
        problems.append(
            f"{source}: proxy.port: port {proxy.port} on node {proxy.node!r} is also used by"
            f" {used[(proxy.node, proxy.port)]!r}"
        )
    checks: tuple[tuple[Role, list[str] | None], ...] = (
        ("prefill", proxy.prefillers), ("decode", proxy.decoders))
    for role, given in checks:
        key = "prefillers" if role == "prefill" else "decoders"
        if given is None:
            continue
        for j, b in enumerate(given):
            if _parse_backend(b) is None:
                problems.append(f"{source}: proxy.{key}[{j}]: expected 'host:port', got {b!r}")
        expected = cluster.backends(role)
        if sorted(given) != sorted(expected):
            problems.append(
                f"{source}: proxy.{key}: {given!r} does not match the {role} instances"
                f" {expected!r} (leave the key out to derive it)"
            )
    for flag in ("host", "port", "prefiller-hosts", "prefiller-ports", "decoder-hosts",
                 "decoder-ports"):
        if flag in proxy.args:
            problems.append(
                f"{source}: proxy.args.{flag}: set by pdtui from proxy.host/port and the"
                " instances"
            )


def _check_ranktable(
    cluster: Cluster, rt: RanktableSpec, source: str, problems: list[str]
) -> None:
    pre = sum(len(p.devices) for p in cluster.processes("prefill"))
    dec = sum(len(p.devices) for p in cluster.processes("decode"))
    if pre and rt.prefill_device_count < pre:
        problems.append(
            f"{source}: ranktable.prefill_device_count: {rt.prefill_device_count} is fewer than"
            f" the {pre} devices of the prefill instances"
        )
    if dec and rt.decode_device_count < dec:
        problems.append(
            f"{source}: ranktable.decode_device_count: {rt.decode_device_count} is fewer than"
            f" the {dec} devices of the decode instances"
        )
    total = sum(n.npus for n in cluster.nodes)
    if rt.prefill_device_count + rt.decode_device_count > total:
        problems.append(
            f"{source}: ranktable: prefill_device_count + decode_device_count ="
            f" {rt.prefill_device_count + rt.decode_device_count} exceeds the cluster's"
            f" {total} NPUs"
        )


# ---------------------------------------------------------------------------
# Saving.


def dump_spec(spec: ClusterSpec) -> str:
    """TOML text for a spec, leaving out unset keys."""
    data = spec.model_dump(mode="python", exclude_none=True, exclude_defaults=True)
    # `cluster`, `nodes` and `model` are required, keep them even if they equal defaults.
    data.setdefault("cluster", spec.cluster.model_dump(exclude_defaults=True))
    first = ("name", "host", "ip", "role", "node")
    for key in ("nodes", "instances"):
        data[key] = [
            {**{k: v for k, v in item.items() if k in first},
             **{k: v for k, v in item.items() if k not in first}}
            for item in data.get(key, [])
        ]
    if not data["instances"]:
        del data["instances"]
    return tomli_w.dumps(_prune(data))


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            pv = _prune(v)
            if pv == {} and k in {"ssh", "tools", "defaults"}:
                continue
            out[k] = pv
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def save(spec: ClusterSpec, path: str | os.PathLike[str]) -> Path | None:
    """Validate then atomically write a cluster file; the previous file is kept as ``.bak``."""
    text = dump_spec(spec)
    loads(text, source=Path(path).name)  # never write a file we could not read back
    return atomic_write(Path(path), text)
