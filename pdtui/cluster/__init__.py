"""The cluster file: a pydantic model of one PD deployment, loaded with clear errors.

A cluster file is TOML. Shared node settings live in ``[defaults]`` and each
``[[nodes]]`` entry overrides them; shared ``vllm serve`` flags and environment
live in ``[serve]`` and ``[env]`` and each ``[[instances]]`` entry overrides them.
Values may reference the node or instance they end up on with a small set of
placeholders (``{node.ip}``, ``{node.nic}``, ``{instance.port}``, ...), so one
line in ``[env]`` serves every node. Everything else is taken literally.

The names below are re-exported lazily (PEP 562): ``from pdtui.cluster import ClusterError,
read_source`` or ``format_devices`` loads no pydantic, so the app can paint its first frame
before it validates the file; ``Cluster``, ``load`` and the rest load the model on first use.
(``resolve`` is not among them: it is the submodule :mod:`pdtui.cluster.resolve`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pdtui.files import MAX_FILE_BYTES, FileTooLarge, atomic_write, read_text
from pdtui.lazy import exports

if TYPE_CHECKING:
    from pdtui.cluster.devices import (
        MAX_NPUS,
        format_devices,
        parse_devices,
    )
    from pdtui.cluster.io import (
        build,
        dump_spec,
        load,
        loads,
        parse_spec,
        save,
    )
    from pdtui.cluster.model import (
        Cluster,
        Container,
        Instance,
        Mount,
        Node,
        Process,
        Ssh,
        node_fill,
    )
    from pdtui.cluster.source import (
        ClusterError,
        ClusterSource,
        parse_source,
        read_source,
    )
    from pdtui.cluster.spec import (
        DEFAULT_HCCN_CONF,
        DEFAULT_HCCN_TOOL,
        DEFAULT_NPU_SMI,
        DEFAULT_RUN_DIR,
        RESERVED_FLAGS,
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
    )

_SUBMODULE = {
    "build": "io",
    "dump_spec": "io",
    "load": "io",
    "loads": "io",
    "parse_spec": "io",
    "save": "io",
    "Cluster": "model",
    "Container": "model",
    "Instance": "model",
    "Mount": "model",
    "Node": "model",
    "Process": "model",
    "Ssh": "model",
    "node_fill": "model",
    "DEFAULT_HCCN_CONF": "spec",
    "DEFAULT_HCCN_TOOL": "spec",
    "DEFAULT_NPU_SMI": "spec",
    "DEFAULT_RUN_DIR": "spec",
    "RESERVED_FLAGS": "spec",
    "ClusterInfo": "spec",
    "ClusterSpec": "spec",
    "ContainerSpec": "spec",
    "DataParallel": "spec",
    "Devices": "spec",
    "FlagValue": "spec",
    "InstanceSpec": "spec",
    "ModelSpec": "spec",
    "NodeDefaults": "spec",
    "NodeSpec": "spec",
    "ProxySpec": "spec",
    "RanktableSpec": "spec",
    "Role": "spec",
    "Soc": "spec",
    "SshSettings": "spec",
    "ToolPaths": "spec",
    "MAX_NPUS": "devices",
    "format_devices": "devices",
    "parse_devices": "devices",
    "ClusterError": "source",
    "ClusterSource": "source",
    "parse_source": "source",
    "read_source": "source",
}

__all__ = [
    "DEFAULT_HCCN_CONF",
    "DEFAULT_HCCN_TOOL",
    "DEFAULT_NPU_SMI",
    "DEFAULT_RUN_DIR",
    "MAX_FILE_BYTES",
    "MAX_NPUS",
    "RESERVED_FLAGS",
    "Cluster",
    "ClusterError",
    "ClusterInfo",
    "ClusterSource",
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
    "build",
    "dump_spec",
    "format_devices",
    "load",
    "loads",
    "node_fill",
    "parse_devices",
    "parse_source",
    "parse_spec",
    "read_source",
    "read_text",
    "save",
]


__getattr__, __dir__ = exports(__name__, _SUBMODULE, __all__, globals())
