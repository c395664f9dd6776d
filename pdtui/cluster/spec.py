"""The cluster file as written: a pydantic model of its TOML, before defaults are applied."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

# Re-exported: defined without pydantic, for what reads a file or a device range before (or
# without) validating a whole cluster file.
from pdtui.cluster.devices import MAX_NPUS as MAX_NPUS
from pdtui.cluster.devices import format_devices as format_devices
from pdtui.cluster.devices import parse_devices as parse_devices
from pdtui.cluster.source import ClusterError as ClusterError

Soc = Literal["A2", "A3"]
Role = Literal["prefill", "decode"]

DEFAULT_HCCN_TOOL = "/usr/local/Ascend/driver/tools/hccn_tool"
DEFAULT_NPU_SMI = "npu-smi"
DEFAULT_HCCN_CONF = "/etc/hccn.conf"
#: Per user on the node (the remote shell expands ``~``): never a folder others can plant.
DEFAULT_RUN_DIR = "~/.cache/pdtui/run"

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
#: A cluster or instance name: it names a folder on the nodes (never ``.`` or ``..``).
_FOLDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: The longest SSH timeout accepted, in seconds.
MAX_TIMEOUT = 3600.0
#: A network interface name as Linux allows it in practice (at most 15 characters).
IFACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
#: A ``*_SOCKET_IFNAME`` value: names or prefixes, comma-separated, optionally led by ``^``
#: (exclude) or ``=`` (exact), as NCCL/Gloo/HCCL read them.
IFNAME_LIST_RE = re.compile(r"^[\^=]?[A-Za-z0-9_.-]{1,15}(,[A-Za-z0-9_.-]{1,15})*$")

# vllm serve flags that pdtui sets itself from other keys.
RESERVED_FLAGS = {
    "port": "instances[].port",
    "served-model-name": "model.served_name",
    "kv-transfer-config": "instances[].kv_transfer",
    "model": "model.path",
}


def no_control(value: str) -> str:
    """A value passed to SSH or a shell: no control characters (a NUL ends it early)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"expected no control characters, got {value!r}")
    return value


def _folder_name(v: str) -> str:
    if not _FOLDER_RE.match(v):
        raise ValueError(
            f"expected a name of letters, digits, '.', '_' or '-' that starts with "
            f"a letter or digit (it names a folder on the nodes), got {v!r}"
        )
    return v


def check_run_dir(value: str) -> str:
    """An absolute path, or one under the SSH user's home (``~/...``), without ``..``."""
    parts = value.split("/")
    if not (value.startswith("/") or value == "~" or value.startswith("~/")):
        raise ValueError(f"expected an absolute path or one starting with '~/', got {value!r}")
    if ".." in parts or any(ord(c) < 32 for c in value):
        raise ValueError(f"expected a plain path (no '..', no control characters), got {value!r}")
    return value


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"expected letters, digits, '.', '_' or '-', got {value!r}")
    return value


Devices = Annotated[list[int], BeforeValidator(parse_devices)]
#: A node or instance name: letters, digits, '.', '_' or '-'.
Name = Annotated[str, AfterValidator(_check_name)]
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
    connect_timeout: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)
    command_timeout: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)

    @field_validator("jump", mode="before")
    @classmethod
    def _one_jump(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("user", "identity_file", "known_hosts")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        return None if v is None else no_control(v)

    @field_validator("jump")
    @classmethod
    def _printable_jumps(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [no_control(j) for j in v]


class ToolPaths(_Model):
    hccn_tool: str | None = None
    npu_smi: str | None = None


ContainerCli = Literal["docker", "podman", "nerdctl", "isula"]
ContainerMode = Literal["managed", "adopted"]
#: A container name as docker, podman, nerdctl and isula accept it.
CONTAINER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")
_SHM_RE = re.compile(r"^[0-9]+[bkmgBKMG]?$")


DEFAULT_CONTAINER_NAME = "vllm-ascend"
#: The tutorial's ``docker run -v`` list (container side; ``/etc/hccn.conf``, ``hccn_tool`` and
#: ``npu-smi`` come from the node's configured paths when those are absolute). The model
#: folder is added at its own path. vllm-ascend's "Run with Docker":
#: https://github.com/vllm-project/vllm-ascend/blob/main/docs/source/tutorials/features/
#: pd_disaggregation_mooncake_multi_node.md
DEFAULT_CONTAINER_MOUNTS = (
    "/usr/local/dcmi",
    DEFAULT_HCCN_TOOL,
    "/usr/local/bin/npu-smi",
    "/usr/local/Ascend/driver/lib64/",
    "/usr/local/Ascend/driver/version.info",
    "/etc/ascend_install.info",
    DEFAULT_HCCN_CONF,
)


def _plain(value: str) -> str:
    if not value or any(ord(c) < 32 for c in value):
        raise ValueError(f"expected a non-empty value without control characters, got {value!r}")
    return value


class ContainerSpec(_Model):
    """Where serving runs on a node (``[defaults.container]``, ``[nodes.container]``).

    ``managed``: pdtui creates, labels, stops and recreates the container; ``adopted``: the
    operator's container, which pdtui only execs into. Unset keys fall back to the defaults.
    """

    mode: ContainerMode | None = None
    cli: ContainerCli | None = None
    name: str | None = None
    image: str | None = None
    shm_size: str | None = None
    network: str | None = None
    devices: Literal["all", "instances", "none"] | None = None
    mounts: list[str] | None = None
    env: dict[str, str] | None = None
    extra_args: list[str] | None = None

    @field_validator("image")
    @classmethod
    def _image_ok(cls, v: str | None) -> str | None:
        if v is not None and not _IMAGE_RE.match(v):
            raise ValueError(
                f"expected an image reference like "
                f"'quay.io/ascend/vllm-ascend:v0.11.0rc0', got {v!r}"
            )
        return v

    @field_validator("shm_size")
    @classmethod
    def _shm_ok(cls, v: str | None) -> str | None:
        if v is not None and not _SHM_RE.match(v):
            raise ValueError(f"expected a size like '1g' or '512m', got {v!r}")
        return v

    @field_validator("network")
    @classmethod
    def _network_ok(cls, v: str | None) -> str | None:
        if v is not None and not CONTAINER_NAME_RE.match(v):
            raise ValueError(f"expected a network name like 'host', got {v!r}")
        return v

    @field_validator("extra_args", "mounts")
    @classmethod
    def _args_ok(cls, v: list[str] | None) -> list[str] | None:
        for item in v or []:
            _plain(item)
        return v


class NodeDefaults(_Model):
    """Settings shared by every node; each node may override any of them."""

    soc: Soc | None = None
    npus: int | None = Field(default=None, ge=1, le=64)
    nic: str | None = None
    hccn_conf: str | None = None
    run_dir: str | None = None
    ssh: SshSettings = Field(default_factory=SshSettings)
    tools: ToolPaths = Field(default_factory=ToolPaths)
    container: ContainerSpec | None = None

    @field_validator("nic")
    @classmethod
    def _nic_ok(cls, v: str | None) -> str | None:
        if v is not None and not IFACE_RE.match(v):
            raise ValueError(
                f"expected a network interface name (up to 15 letters, digits, "
                f"'.', '_' or '-'), got {v!r}"
            )
        return v

    @field_validator("run_dir")
    @classmethod
    def _run_dir_ok(cls, v: str | None) -> str | None:
        return None if v is None else check_run_dir(v)


class NodeSpec(NodeDefaults):
    """One NPU server as written in the file."""

    name: Name
    host: str
    ip: str | None = None


class DataParallel(_Model):
    """Several ``vllm serve`` processes of one instance group on consecutive ports."""

    size: int = Field(ge=1)
    local: int = Field(ge=1)
    rank_start: int = Field(default=0, ge=0)
    address: str
    rpc_port: int = Field(default=12345, ge=1, le=65535)


class InstanceSpec(_Model):
    """A prefill or decode instance (or a data-parallel group of them) on one node."""

    name: Name
    role: Role
    node: str
    devices: Devices
    port: int = Field(ge=1, le=65535)
    env: dict[str, str] = Field(default_factory=dict)
    serve: dict[str, FlagValue] = Field(default_factory=dict)
    kv_transfer: dict[str, Any] = Field(default_factory=dict)
    dp: DataParallel | None = None


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

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        return _folder_name(v)


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
