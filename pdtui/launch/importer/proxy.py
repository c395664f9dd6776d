"""The proxy command: its backend lists, its other flags, and its cluster-file section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pdtui.cluster import FlagValue
from pdtui.launch.importer.group import Group
from pdtui.launch.importer.scan import Launch
from pdtui.launch.importer.values import parse_flags, stabilize, typed_value

_WILDCARD_HOSTS = {"0.0.0.0", "localhost", "127.0.0.1", "::", ""}
_PROXY_FLAGS = (
    "host",
    "port",
    "prefiller-hosts",
    "prefiller-ports",
    "decoder-hosts",
    "decoder-ports",
    "max-retries",
    "retry-delay",
    "max-waiting-retries",
    "waiting-retry-interval",
    "workers",
    "log-level",
)


@dataclass
class Proxy:
    file: str
    line: int
    python: str
    script: str
    host: str
    port: int
    prefill: list[tuple[str, str]]
    decode: list[tuple[str, str]]
    args: dict[str, FlagValue]
    env: dict[str, str]


def _proxy_flag(name: str) -> str:
    if name in _PROXY_FLAGS:
        return name
    matches = [f for f in _PROXY_FLAGS if f.startswith(name)]
    return matches[0] if len(matches) == 1 else name


def parse_proxy(launch: Launch, warnings: list[str]) -> Proxy:
    where = f"{launch.file}: line {launch.line}"
    _, raw_flags = parse_flags(launch.args)
    values, args = _sort_flags(raw_flags)
    port_text = (values.get("port") or ["8000"])[0]
    # A proxy-only script's exports are the proxy's; next to vllm serve, only "K=V python".
    env = dict(launch.prefix_env) if launch.file_has_serve else dict(launch.env)
    return Proxy(
        file=launch.file,
        line=launch.line,
        python=launch.head[0],
        script=launch.head[1],
        host=(values.get("host") or ["localhost"])[0],
        port=int(port_text) if port_text.isdigit() else 8000,
        prefill=_backends(values, "prefiller", where, warnings),
        decode=_backends(values, "decoder", where, warnings),
        args=args,
        env=env,
    )


def _sort_flags(
    raw_flags: list[tuple[str, list[str]]],
) -> tuple[dict[str, list[str]], dict[str, FlagValue]]:
    """``(host, port and backend flags as text, the other flags typed)``."""
    values: dict[str, list[str]] = {}
    args: dict[str, FlagValue] = {}
    for name, vals in raw_flags:
        full = _proxy_flag(name)
        if full in _PROXY_FLAGS[:6]:
            values[full] = vals
        elif not vals:
            args[full] = True
        elif len(vals) == 1:
            args[full] = typed_value(vals[0])
        else:
            args[full] = [typed_value(v) for v in vals]
    return values, args


def _backends(
    values: dict[str, list[str]], word: str, where: str, warnings: list[str]
) -> list[tuple[str, str]]:
    """``(host, port)`` pairs of ``--prefiller-*`` or ``--decoder-*``."""
    hosts = values.get(f"{word}-hosts", [])
    ports = values.get(f"{word}-ports", [])
    if len(hosts) != len(ports):
        warnings.append(
            f"{where}: the proxy gets {len(hosts)} {word} hosts but {len(ports)} {word}"
            f" ports; it stops with 'Number of {word} hosts must match number of {word}"
            " ports'"
        )
    return list(zip(hosts, ports, strict=False))


def proxy_section(
    proxy: Proxy,
    groups: list[Group],
    node_names: dict[str, str],
    node_rows: list[dict[str, Any]],
    warnings: list[str],
) -> dict[str, Any]:
    """The ``[proxy]`` table; ``node_names`` maps node ips to names, and a proxy on a host
    that is no node gets a row of its own in ``node_rows``."""
    where = f"{proxy.file}: line {proxy.line}"
    section: dict[str, Any] = {"host": proxy.host, "port": proxy.port}
    section["node"] = _proxy_node(proxy, groups, node_names, node_rows, where, warnings)
    if proxy.python != "python":
        section["python"] = proxy.python
    if proxy.script != "load_balance_proxy_server_example.py":
        section["script"] = proxy.script
    if proxy.args:
        section["args"] = stabilize(proxy.args)
    if proxy.env:
        section["env"] = proxy.env
    for role, word, key, listed in (
        ("prefill", "prefiller", "prefillers", proxy.prefill),
        ("decode", "decoder", "decoders", proxy.decode),
    ):
        derived = [f"{p.ip}:{p.port}" for g in groups if g.head.role == role for p in g.procs]
        given = [f"{h}:{p}" for h, p in listed]
        _check_backends(given, derived, role, word, where, warnings)
        if given != derived and sorted(given) == sorted(derived):
            section[key] = given
    return section


def _proxy_node(
    proxy: Proxy,
    groups: list[Group],
    node_names: dict[str, str],
    node_rows: list[dict[str, Any]],
    where: str,
    warnings: list[str],
) -> str:
    if proxy.host in node_names:
        return node_names[proxy.host]
    if proxy.host in _WILDCARD_HOSTS:
        first = node_names[groups[0].head.ip or ""]
        warnings.append(
            f"{where}: the proxy listens on {proxy.host!r}, which names no node; placed on"
            f" {first!r}"
        )
        return first
    node_rows.append({"name": "proxy-0", "host": proxy.host})
    return "proxy-0"


def _check_backends(
    given: list[str],
    derived: list[str],
    role: str,
    word: str,
    where: str,
    warnings: list[str],
) -> None:
    """The proxy's backend list against the instances (both ``ip:port``)."""
    for b in given:
        if b not in derived:
            warnings.append(
                f"{where}: proxy {word} {b} matches no {role} instance"
                f" ({', '.join(derived) or 'none'})"
            )
    for b in derived:
        if b not in given:
            warnings.append(
                f"{where}: {role} instance {b} is missing from the proxy's {word} list;"
                " pdtui's proxy command lists it"
            )
