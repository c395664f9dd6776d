"""The cluster file: a pydantic model of one PD deployment, loaded with clear errors.

A cluster file is TOML. Shared node settings live in ``[defaults]`` and each
``[[nodes]]`` entry overrides them; shared ``vllm serve`` flags and environment
live in ``[serve]`` and ``[env]`` and each ``[[instances]]`` entry overrides them.
Values may reference the node or instance they end up on with a small set of
placeholders (``{node.ip}``, ``{node.nic}``, ``{instance.port}``, ...), so one
line in ``[env]`` serves every node. Everything else is taken literally.
"""

from __future__ import annotations

from pdtui.cluster.io import dump_spec, load, loads, parse_spec, save
from pdtui.cluster.model import Cluster, Container, Instance, Mount, Node, Process, Ssh, node_fill
from pdtui.cluster.resolve import resolve
from pdtui.cluster.spec import (
    DEFAULT_HCCN_CONF,
    DEFAULT_HCCN_TOOL,
    DEFAULT_NPU_SMI,
    DEFAULT_RUN_DIR,
    RESERVED_FLAGS,
    ClusterError,
    ClusterInfo,
    ClusterSpec,
    ContainerSpec,
    DataParallel,
    Devices,
    FlagValue,
    InstanceSpec,
    ModelSpec,
    NodeDefaults,
    NodeSpec,
    ProxySpec,
    RanktableSpec,
    Role,
    Soc,
    SshSettings,
    ToolPaths,
    format_devices,
    parse_devices,
)
from pdtui.files import MAX_FILE_BYTES, FileTooLarge, atomic_write, read_text

__all__ = [
    "DEFAULT_HCCN_CONF",
    "DEFAULT_HCCN_TOOL",
    "DEFAULT_NPU_SMI",
    "DEFAULT_RUN_DIR",
    "MAX_FILE_BYTES",
    "RESERVED_FLAGS",
    "Cluster",
    "ClusterError",
    "ClusterInfo",
    "ClusterSpec",
    "Container",
    "ContainerSpec",
    "DataParallel",
    "Devices",
    "FileTooLarge",
    "FlagValue",
    "Instance",
    "InstanceSpec",
    "ModelSpec",
    "Mount",
    "Node",
    "NodeDefaults",
    "NodeSpec",
    "Process",
    "ProxySpec",
    "RanktableSpec",
    "Role",
    "Soc",
    "Ssh",
    "SshSettings",
    "ToolPaths",
    "atomic_write",
    "dump_spec",
    "format_devices",
    "load",
    "loads",
    "node_fill",
    "parse_devices",
    "parse_spec",
    "read_text",
    "resolve",
    "save",
]
