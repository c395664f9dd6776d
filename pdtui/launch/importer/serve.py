"""A ``vllm serve`` command: model, port, role, data-parallel rank, devices, flags."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    for extra in positional[1:]:
        warnings.append(f"{where}: unexpected argument {extra!r} to vllm serve; ignored")
    args = _Args(where, warnings, positional[0] if positional else None)
    for raw_name, values in raw_flags:
        args.take(raw_name, values)
    if args.port is None:
        warnings.append(f"{where}: no --port; vllm's default 8000 assumed")
    env = dict(launch.env)
    role = _role(args.kv, launch.file, where, warnings)
    dp = _dp(args.dp_values, where, warnings)
    if dp is None:
        args.flags.extend((k, typed_value(v)) for k, v in args.dp_values.items())
    return Proc(
        file=launch.file,
        line=launch.line,
        vllm=launch.head[0],
        model=args.model,
        served=args.served,
        env=env,
        flags=args.flags,
        port=8000 if args.port is None else args.port,
        kv=args.kv,
        role=role,
        ip=_first(env, _IP_ENV) or _first(launch.variables, _IP_VARS),
        nic=_first(env, _NIC_ENV) or _first(launch.variables, _NIC_VARS),
        devices=_devices(env, where, warnings),
        dp=dp,
    )


@dataclass
class _Args:
    """``vllm serve`` flags sorted into what pdtui models and what it passes through."""

    where: str
    warnings: list[str]
    model: str | None
    port: int | None = None
    served: str | None = None
    kv: dict[str, Any] = field(default_factory=dict)
    dp_values: dict[str, str] = field(default_factory=dict)
    flags: list[tuple[str, FlagValue]] = field(default_factory=list)

    def take(self, raw_name: str, values: list[str]) -> None:
        name = raw_name.replace("_", "-")  # vllm accepts --max_model_len as --max-model-len
        if len(values) > 1:
            self.warnings.append(
                f"{self.where}: --{name} has {len(values)} values {values!r}; only the first"
                " is kept"
            )
        text = values[0] if values else None
        special = _SPECIAL.get(name)
        if text is not None and special is not None and special(self, name, text):
            return
        if name in _RESERVED:
            self.warnings.append(f"{self.where}: --{name} without a usable value; ignored")
        else:
            self.flags.append((name, True if text is None else typed_value(text)))

    def _port(self, _name: str, text: str) -> bool:
        if not text.isdigit():
            return False
        self.port = int(text)
        return True

    def _served(self, _name: str, text: str) -> bool:
        self.served = text
        return True

    def _model(self, _name: str, text: str) -> bool:
        self.model = text
        return True

    def _kv(self, _name: str, text: str) -> bool:
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            self.warnings.append(f"{self.where}: --kv-transfer-config is not valid JSON ({exc})")
            parsed = None
        if isinstance(parsed, dict):
            self.kv = parsed
        return True

    def _dp(self, name: str, text: str) -> bool:
        self.dp_values[name] = text
        return True


# Flags with a value that pdtui models; a handler returns False to keep the flag as is.
_SPECIAL: dict[str, Callable[[_Args, str, str], bool]] = {
    "port": _Args._port,
    "served-model-name": _Args._served,
    "model": _Args._model,
    "kv-transfer-config": _Args._kv,
    **{flag: _Args._dp for flag in DP_FLAGS},
}
_ROLES: dict[str, Role] = {"kv_producer": "prefill", "kv_consumer": "decode"}


def _role(kv: dict[str, Any], file: str, where: str, warnings: list[str]) -> Role:
    """From ``kv_role``, else from the file name."""
    kv_role = kv.get("kv_role")
    if isinstance(kv_role, str) and kv_role in _ROLES:
        return _ROLES[kv_role]
    role: Role = "decode" if "decode" in file.lower() else "prefill"
    warnings.append(
        f"{where}: kv_role is {kv_role!r}, not kv_producer/kv_consumer; taken as {role}"
        " from the file name"
    )
    return role


def _dp(
    dp_values: dict[str, str], where: str, warnings: list[str]
) -> tuple[int, int, str, int] | None:
    """``(size, rank, address, rpc port)`` of a rank started on its own."""
    if "data-parallel-rank" not in dp_values:
        return None
    try:
        return (
            int(dp_values.get("data-parallel-size", "1")),
            int(dp_values["data-parallel-rank"]),
            dp_values.get("data-parallel-address", ""),
            int(dp_values.get("data-parallel-rpc-port", "12345")),
        )
    except ValueError:
        warnings.append(f"{where}: data-parallel flags are not numbers; kept as flags")
        return None


def _devices(env: dict[str, str], where: str, warnings: list[str]) -> list[int] | None:
    visible = env.get(VISIBLE_DEVICES)
    if visible is None:
        return None
    try:
        return parse_devices(visible)
    except ValueError:
        warnings.append(f"{where}: {VISIBLE_DEVICES}={visible!r} is not a device list; kept as is")
        return None
