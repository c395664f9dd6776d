"""A ``vllm serve`` command: model, port, role, data-parallel rank, devices, flags."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pdtui.cluster import FlagValue, Role, parse_devices
from pdtui.launch.importer.scan import Launch
from pdtui.launch.importer.values import parse_flags, typed_value
from pdtui.launch.plan import DP_FLAGS, VISIBLE_DEVICES

_IP_ENV = ("HCCL_IF_IP", "VLLM_HOST_IP")
_IP_VARS = ("local_ip", "LOCAL_IP", "node_ip", "NODE_IP")
_NIC_ENV = ("GLOO_SOCKET_IFNAME", "HCCL_SOCKET_IFNAME", "TP_SOCKET_IFNAME")
_NIC_VARS = ("nic_name", "NIC_NAME")
_RESERVED = {"port", "served-model-name", "kv-transfer-config", "model"}


@dataclass
class Proc:
    file: str
    line: int
    vllm: str
    model: str | None
    served: str | None
    env: dict[str, str]
    flags: list[tuple[str, FlagValue]]
    port: int
    kv: dict[str, Any]
    role: Role
    ip: str | None
    nic: str | None
    devices: list[int] | None
    dp: tuple[int, int, str, int] | None  # size, rank, address, rpc port
    order: int = 0


def _first(env: dict[str, str], names: Sequence[str]) -> str | None:
    for n in names:
        if env.get(n):
            return env[n]
    return None


def parse_serve(launch: Launch, warnings: list[str]) -> Proc:
    where = f"{launch.file}: line {launch.line}"
    positional, raw_flags = parse_flags(launch.args)
    model = positional[0] if positional else None
    for extra in positional[1:]:
        warnings.append(f"{where}: unexpected argument {extra!r} to vllm serve; ignored")
    flags: list[tuple[str, FlagValue]] = []
    port: int | None = None
    served: str | None = None
    kv: dict[str, Any] = {}
    dp_values: dict[str, str] = {}
    for raw_name, values in raw_flags:
        name = raw_name.replace("_", "-")  # vllm accepts --max_model_len as --max-model-len
        if len(values) > 1:
            warnings.append(
                f"{where}: --{name} has {len(values)} values {values!r}; only the first is kept"
            )
        text = values[0] if values else None
        if name == "port" and text is not None and text.isdigit():
            port = int(text)
        elif name == "served-model-name" and text is not None:
            served = text
        elif name == "model" and text is not None:
            model = text
        elif name == "kv-transfer-config" and text is not None:
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                warnings.append(f"{where}: --kv-transfer-config is not valid JSON ({exc})")
                parsed = None
            if isinstance(parsed, dict):
                kv = parsed
        elif name in DP_FLAGS and text is not None:
            dp_values[name] = text
        elif name in _RESERVED:
            warnings.append(f"{where}: --{name} without a usable value; ignored")
        else:
            flags.append((name, True if text is None else typed_value(text)))
    if port is None:
        warnings.append(f"{where}: no --port; vllm's default 8000 assumed")
        port = 8000
    env = dict(launch.env)
    kv_role = kv.get("kv_role")
    role: Role
    if kv_role == "kv_producer":
        role = "prefill"
    elif kv_role == "kv_consumer":
        role = "decode"
    else:
        role = "decode" if "decode" in launch.file.lower() else "prefill"
        warnings.append(
            f"{where}: kv_role is {kv_role!r}, not kv_producer/kv_consumer; taken as {role}"
            " from the file name"
        )
    dp: tuple[int, int, str, int] | None = None
    if "data-parallel-rank" in dp_values:
        try:
            dp = (
                int(dp_values.get("data-parallel-size", "1")),
                int(dp_values["data-parallel-rank"]),
                dp_values.get("data-parallel-address", ""),
                int(dp_values.get("data-parallel-rpc-port", "12345")),
            )
        except ValueError:
            warnings.append(f"{where}: data-parallel flags are not numbers; kept as flags")
    if dp is None:
        flags.extend((k, typed_value(v)) for k, v in dp_values.items())
    devices: list[int] | None = None
    visible = env.get(VISIBLE_DEVICES)
    if visible is not None:
        try:
            devices = parse_devices(visible)
        except ValueError:
            warnings.append(
                f"{where}: {VISIBLE_DEVICES}={visible!r} is not a device list; kept as is"
            )
    ip = _first(env, _IP_ENV) or _first(launch.variables, _IP_VARS)
    nic = _first(env, _NIC_ENV) or _first(launch.variables, _NIC_VARS)
    return Proc(
        file=launch.file,
        line=launch.line,
        vllm=launch.head[0],
        model=model,
        served=served,
        env=env,
        flags=flags,
        port=port,
        kv=kv,
        role=role,
        ip=ip,
        nic=nic,
        devices=devices,
        dp=dp,
    )
