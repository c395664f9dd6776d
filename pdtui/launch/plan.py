"""The launch plan: every ``vllm serve`` process (and the proxy) of a cluster, as argv + env.

A plan is pure data derived from a resolved :class:`~pdtui.cluster.Cluster`; nothing here
touches the network. ``ProcessPlan.script()`` renders the shape the vllm-ascend runbooks use
(``#!/bin/bash``, ``export`` lines, then the command with one flag per line), so a plan can be
handed to a human, diffed against a runbook, or read back with :mod:`pdtui.launch.importer`.

Layout of one ``vllm serve`` argv::

    vllm serve MODEL  <serve flags in the cluster file's order>  --served-model-name NAME
                      --kv-transfer-config JSON

with ``--port P`` (and, for a data-parallel rank, the ``--data-parallel-*`` flags that
vllm-ascend's ``examples/external_online_dp/run_dp_template.sh`` passes) placed right after
``--host`` the way the runbook and the template write it, or first when there is no ``host``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pdtui.cluster import Cluster, FlagValue, Instance, Process, Role

VISIBLE_DEVICES = "ASCEND_RT_VISIBLE_DEVICES"

# The data-parallel flags of run_dp_template.sh ($3 size, $4 rank, $5 address, $6 rpc port);
# pdtui sets them per rank, so the same keys in [serve] are ignored for a DP instance.
DP_FLAGS = (
    "data-parallel-size",
    "data-parallel-rank",
    "data-parallel-address",
    "data-parallel-rpc-port",
)

KV_ROLE = {"prefill": "kv_producer", "decode": "kv_consumer"}

#: Secret ``vllm serve`` flags and the environment variable vLLM (or huggingface_hub) reads
#: instead: given as a flag, the value would show in ``ps`` and in the process's log, so it
#: travels in the 0600 environment file. https://docs.vllm.ai/en/latest/usage/security.html
SECRET_FLAGS = {"api-key": "VLLM_API_KEY", "hf-token": "HF_TOKEN"}


def compact_json(value: Any) -> str:
    """JSON the way the runbook writes ``--additional-config``: no spaces, key order kept."""
    return json.dumps(value, separators=(",", ":"))


def flag_text(value: FlagValue) -> str:
    """One flag value as a single argv word (lists and tables become compact JSON)."""
    if isinstance(value, (dict, list)):
        return compact_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def serve_flag_args(key: str, value: FlagValue) -> list[str]:
    """``--key value``; ``true`` is a bare ``--key``, ``false`` leaves the flag out."""
    if value is True:
        return [f"--{key}"]
    if value is False:
        return []
    return [f"--{key}", flag_text(value)]


def proxy_flag_args(key: str, value: FlagValue) -> list[str]:
    """Like :func:`serve_flag_args`, but a list is several words (argparse ``nargs='+'``)."""
    if isinstance(value, list):
        return [f"--{key}", *(flag_text(v) for v in value)]
    return serve_flag_args(key, value)


def _group_flags(argv: list[str]) -> list[list[str]]:
    """Split argv into the command head and one group per ``--flag`` with its values."""
    groups: list[list[str]] = [[]]
    for word in argv:
        if word.startswith("--") and groups[-1]:
            groups.append([word])
        else:
            groups[-1].append(word)
    return groups


def render_script(
    env: dict[str, str], argv: list[str], *, indent: str = "", comment: str | None = None
) -> str:
    """``#!/bin/bash`` (always line 1), ``# comment``, one ``export`` per variable, then the
    command over ``\\`` lines."""
    lines = ["#!/bin/bash", *([f"# {comment}"] if comment else []), ""]
    if env:
        lines.extend(f"export {k}={shlex.quote(v)}" for k, v in env.items())
        lines.append("")
    groups = [" ".join(shlex.quote(w) for w in g) for g in _group_flags(argv)]
    for i, text in enumerate(groups):
        prefix = indent if i else ""
        suffix = " \\" if i < len(groups) - 1 else ""
        lines.append(f"{prefix}{text}{suffix}")
    return "\n".join(lines) + "\n"


def render_command_line(env: dict[str, str], argv: list[str]) -> str:
    """One shell line, ``env K=V ... argv``, for logs."""
    if not env:
        return shlex.join(argv)
    return shlex.join(["env", *(f"{k}={v}" for k, v in env.items()), *argv])


@dataclass
class ProcessPlan:
    """One ``vllm serve`` process: an instance, or one data-parallel rank of it."""

    name: str
    instance: str
    role: Role
    node: str
    host: str  # the node's data-plane ip (what the proxy dials)
    port: int
    env: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    dp_rank: int | None = None
    devices: tuple[int, ...] = ()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def script(self) -> str:
        return render_script(self.env, self.argv)

    def command_line(self) -> str:
        return render_command_line(self.env, self.argv)


@dataclass
class ProxyPlan:
    """The load-balancing proxy (``load_balance_proxy_server_example.py``)."""

    node: str
    host: str  # the listen address given with --host
    port: int
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def script(self) -> str:
        return render_script(self.env, self.argv, indent="    ")

    def command_line(self) -> str:
        return render_command_line(self.env, self.argv)


def kv_transfer_for(instance: Instance) -> dict[str, Any]:
    """The instance's kv-transfer-config, with ``kv_role`` added when it is missing.

    The added key goes right after ``kv_connector`` (where the runbooks write it), which also
    keeps the order stable when the dict goes through a TOML file (scalars before tables).
    """
    kv = dict(instance.kv_transfer)
    if not kv or "kv_role" in kv:
        return kv
    role = KV_ROLE[instance.role]
    if "kv_connector" not in kv:
        return {"kv_role": role, **kv}
    out: dict[str, Any] = {}
    for key, value in kv.items():
        out[key] = value
        if key == "kv_connector":
            out["kv_role"] = role
    return out


def _rank_args(instance: Instance, proc: Process) -> list[str]:
    """``--port``, and the data-parallel flags of one rank."""
    args = ["--port", str(proc.port)]
    if instance.dp is not None and proc.dp_rank is not None:
        dp = instance.dp
        args += [
            "--data-parallel-size",
            str(dp.size),
            "--data-parallel-rank",
            str(proc.dp_rank),
            "--data-parallel-address",
            dp.address,
            "--data-parallel-rpc-port",
            str(dp.rpc_port),
        ]
    return args


def _serve_args(serve: list[tuple[str, FlagValue]], inserted: list[str]) -> list[str]:
    """The serve flags with ``inserted`` right after ``--host`` (first if there is none)."""
    flags: list[str] = []
    placed = False
    for key, value in serve:
        flags += serve_flag_args(key, value)
        if key == "host" and not isinstance(value, bool) and not placed:
            flags += inserted
            placed = True
    return flags if placed else inserted + flags


def plan_instance(cluster: Cluster, instance: Instance) -> list[ProcessPlan]:
    """One plan per process of ``instance`` (one, or one per data-parallel rank)."""
    node = cluster.node(instance.node)
    model = cluster.spec.model
    kv = kv_transfer_for(instance)
    serve = [
        (k, v)
        for k, v in instance.serve.items()
        if not (instance.dp and k in DP_FLAGS) and k not in SECRET_FLAGS
    ]
    secret_env = {
        SECRET_FLAGS[k]: flag_text(v)
        for k, v in instance.serve.items()
        if k in SECRET_FLAGS and not isinstance(v, bool)
    }
    plans: list[ProcessPlan] = []
    for proc in instance.processes:
        env = {**instance.env, **secret_env}
        subset = set(proc.devices) < set(range(node.npus))
        if proc.dp_rank is not None or subset:
            env.pop(VISIBLE_DEVICES, None)
            env[VISIBLE_DEVICES] = ",".join(str(d) for d in proc.devices)
        flags = _serve_args(serve, _rank_args(instance, proc))
        flags += ["--served-model-name", model.served_name]
        if kv:
            flags += ["--kv-transfer-config", compact_json(kv)]
        plans.append(
            ProcessPlan(
                name=proc.name,
                instance=instance.name,
                role=instance.role,
                node=node.name,
                host=node.ip,
                port=proc.port,
                env=env,
                argv=[model.vllm, "serve", cluster.model_path(node), *flags],
                dp_rank=proc.dp_rank,
                devices=proc.devices,
            )
        )
    return plans


def plan_cluster(cluster: Cluster) -> list[ProcessPlan]:
    """Every process: prefill instances first, then decode, each in file order."""
    out: list[ProcessPlan] = []
    for role in ("prefill", "decode"):
        for inst in cluster.instances:
            if inst.role == role:
                out.extend(plan_instance(cluster, inst))
    return out


def _split_backends(backends: Iterable[str]) -> tuple[list[str], list[str]]:
    hosts: list[str] = []
    ports: list[str] = []
    for b in backends:
        host, _, port = b.rpartition(":")
        hosts.append(host)
        ports.append(port)
    return hosts, ports


def plan_proxy(cluster: Cluster) -> ProxyPlan | None:
    """The proxy command, its backend lists derived from the instances (counts always match)."""
    proxy = cluster.spec.proxy
    if proxy is None:
        return None
    argv = [proxy.python, proxy.script, "--host", proxy.host, "--port", str(proxy.port)]
    lists = (
        ("prefiller", proxy.prefillers or cluster.backends("prefill")),
        ("decoder", proxy.decoders or cluster.backends("decode")),
    )
    for word, backends in lists:
        hosts, ports = _split_backends(backends)
        if hosts:
            argv += [f"--{word}-hosts", *hosts, f"--{word}-ports", *ports]
    for key, value in proxy.args.items():
        argv += proxy_flag_args(key, value)
    return ProxyPlan(
        node=proxy.node, host=proxy.host, port=proxy.port, argv=argv, env=dict(proxy.env)
    )


def render_all(cluster: Cluster) -> dict[str, str]:
    """``{file name: script}`` for every process and the proxy (``proxy.sh``)."""
    out = {f"{p.name}.sh": p.script() for p in plan_cluster(cluster)}
    proxy = plan_proxy(cluster)
    if proxy is not None:
        out["proxy.sh"] = proxy.script()
    return out
