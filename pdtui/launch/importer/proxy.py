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
    lists: dict[str, list[tuple[str, str]]] = {}
    for word in ("prefiller", "decoder"):
        hosts = values.get(f"{word}-hosts", [])
        ports = values.get(f"{word}-ports", [])
        if len(hosts) != len(ports):
            warnings.append(
                f"{where}: the proxy gets {len(hosts)} {word} hosts but {len(ports)} {word}"
                f" ports; it stops with 'Number of {word} hosts must match number of {word}"
                " ports'"
            )
        lists[word] = list(zip(hosts, ports, strict=False))
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
        prefill=lists["prefiller"],
        decode=lists["decoder"],
        args=args,
        env=env,
    )



def proxy_section(
    proxy: Proxy,
    groups: list[Group],
    nodes: dict[str, dict[str, Any]],
    node_rows: list[dict[str, Any]],
    warnings: list[str],
) -> dict[str, Any]:
    where = f"{proxy.file}: line {proxy.line}"
    section: dict[str, Any] = {"host": proxy.host, "port": proxy.port}
    if proxy.host in nodes:
        section["node"] = nodes[proxy.host]["name"]
    elif proxy.host in _WILDCARD_HOSTS:
        first = nodes[groups[0].head.ip or ""]["name"]
        section["node"] = first
        warnings.append(
            f"{where}: the proxy listens on {proxy.host!r}, which names no node; placed on"
            f" {first!r}"
        )
    else:
        node_rows.append({"name": "proxy-0", "host": proxy.host})
        section["node"] = "proxy-0"
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
        derived = [
            f"{p.ip}:{p.port}" for g in groups if g.head.role == role for p in g.procs
        ]
        given = [f"{h}:{p}" for h, p in listed]
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
        if given != derived and sorted(given) == sorted(derived):
            section[key] = given
    return section
