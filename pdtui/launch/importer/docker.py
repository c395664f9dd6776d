"""The tutorial's container commands: ``docker run ...`` (what the container is) and
``docker exec [-it] NAME bash -c '...'`` (what runs inside it).

vllm-ascend's "Run with Docker" (https://github.com/vllm-project/vllm-ascend/blob/main/docs/
source/tutorials/features/pd_disaggregation_mooncake_multi_node.md) starts one container per
node with ``--net=host``, ``--shm-size``, one ``--device`` per davinci device and ``-v`` for the
driver's tools and files; podman, nerdctl and isula take the same flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CLIS = ("docker", "podman", "nerdctl", "isula")
_DAVINCI = re.compile(r"^/dev/davinci(\d+)$")
#: ``run`` flags that take a value (``--flag VALUE`` or ``--flag=VALUE``), by what pdtui keeps.
_VALUED = {
    "--name": "name",
    "--net": "network",
    "--network": "network",
    "--shm-size": "shm_size",
    "--device": "device",
    "-v": "mount",
    "--volume": "mount",
    "-e": "env",
    "--env": "env",
}
#: ``run`` flags without a value that pdtui sets itself or that do not matter detached.
_DROPPED = {"-it", "-ti", "-i", "-t", "--rm", "-d", "--detach", "--init", "--interactive", "--tty"}
#: Other flags that take a value: kept in ``extra_args`` with it.
_OTHER_VALUED = {
    "--ipc",
    "--pid",
    "--user",
    "-u",
    "--workdir",
    "-w",
    "--label",
    "-l",
    "--entrypoint",
    "--cap-add",
    "--privileged",
    "--ulimit",
    "--runtime",
    "--security-opt",
    "--hostname",
    "-h",
    "--memory",
    "-m",
    "--cpus",
}
_NO_VALUE = {"--privileged"}


@dataclass
class Run:
    """What one ``CLI run`` says about the container."""

    file: str
    line: int
    cli: str
    name: str | None = None
    image: str | None = None
    table: dict[str, Any] = field(default_factory=dict)
    devices: list[int] = field(default_factory=list)


def _split(word: str, words: list[str], i: int) -> tuple[str, str | None, int]:
    """``--flag=value`` or ``--flag value``: (flag, value, next index)."""
    if word.startswith("--") and "=" in word:
        flag, _, value = word.partition("=")
        return flag, value, i + 1
    if word in _VALUED or (word in _OTHER_VALUED and word not in _NO_VALUE):
        return word, words[i + 1] if i + 1 < len(words) else None, i + 2
    return word, None, i + 1


def _keep(run: Run, key: str, value: str) -> None:
    t = run.table
    if key in {"name", "network", "shm_size"}:
        t[key] = value
    elif key == "device":
        m = _DAVINCI.match(value.split(":")[0])
        if m:
            run.devices.append(int(m.group(1)))
    elif key == "mount":
        t.setdefault("mounts", []).append(value)
    elif key == "env":
        k, _, v = value.partition("=")
        t.setdefault("env", {})[k] = v


def parse_run(file: str, line: int, words: list[str]) -> Run:
    """``CLI run FLAGS... IMAGE [COMMAND...]`` -> what pdtui keeps of it."""
    run = Run(file, line, words[0].rsplit("/", 1)[-1])
    i = 2
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            run.image = word
            break
        flag, value, i = _split(word, words, i)
        if flag in _DROPPED:
            continue
        if flag in _VALUED and value is not None:
            _keep(run, _VALUED[flag], value)
        else:
            run.table.setdefault("extra_args", []).append(
                word if value is None or "=" in word else f"{flag}={value}"
            )
    run.name = run.table.get("name")
    return run


def exec_script(words: list[str]) -> tuple[str, str] | None:
    """``CLI exec [-i] [-t] [-e K=V] NAME (bash|sh) -c SCRIPT`` -> (NAME, SCRIPT)."""
    i = 2
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in {"-e", "--env", "-u", "--user", "-w", "--workdir"} else 1
    rest = words[i:]
    if len(rest) >= 4 and rest[1].rsplit("/", 1)[-1] in {"bash", "sh"} and rest[2] == "-c":
        return rest[0], rest[3]
    return None


def node_npus(runs: list[Run]) -> int | None:
    """The node's NPU count when the first ``run`` passes /dev/davinci0 .. /dev/davinciN-1, every
    NPU of the node, as the tutorials' ``docker run`` does (eight on an Atlas 800T A2, see
    https://github.com/vllm-project/vllm-ascend/blob/v0.13.0/docs/source/tutorials/
    pd_disaggregation_mooncake_single_node.md); None when it passes no or only some devices."""
    devices = sorted(set(runs[0].devices)) if runs else []
    return len(devices) if devices and devices == list(range(len(devices))) else None


def container_section(
    runs: list[Run], execs: list[str], instance_devices: set[int], warnings: list[str]
) -> dict[str, Any] | None:
    """``[defaults.container]`` from the first ``run`` (or an adopted container that was only
    exec'd into); warnings for what differs between scripts."""
    if not runs:
        if not execs:
            return None
        warnings.append(
            f"the scripts exec into container {execs[0]!r} but never create it: "
            'imported as mode = "adopted" (pdtui only execs into it)'
        )
        return {"mode": "adopted", "name": execs[0]}
    first = runs[0]
    table: dict[str, Any] = {"cli": first.cli, **first.table}
    if first.image:
        table["image"] = first.image
        if first.image.endswith(":"):  # a docs placeholder such as ``:|version|`` read as shell
            warnings.append(
                f"{first.file}: line {first.line}: image {first.image!r} has no tag (a '|' "
                "after the ':' is a shell pipe; a documentation placeholder?); set "
                "[defaults.container] image to the vllm-ascend release you run"
            )
    if first.devices:
        table["devices"] = (
            "instances" if instance_devices and set(first.devices) == instance_devices else "all"
        )
    for other in runs[1:]:
        if (other.image, other.table.get("mounts")) != (first.image, first.table.get("mounts")):
            warnings.append(
                f"{other.file}: line {other.line}: this {other.cli} run differs "
                f"from {first.file} line {first.line}; the first is imported"
            )
    for name in dict.fromkeys(execs):
        if name != first.name:
            warnings.append(
                f"the scripts exec into {name!r}, but the container created is {first.name!r}"
            )
    return table
