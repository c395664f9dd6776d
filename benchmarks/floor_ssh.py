"""The floor under ``pdtui check``: asyncssh alone doing the check's network part, nothing else.

Reads the cluster file with ``tomllib`` only (no validation), opens one asyncssh connection per
node at once and sends each node the same batched probe script ``pdtui check`` sends
(``bash -s``, built by ``pdtui.npu.probe``, which imports only the standard library); the
output is not parsed. No Python program that talks SSH with asyncssh does less, so ``pdtui
check`` minus this figure is what pdtui itself costs.

    python benchmarks/floor_ssh.py CLUSTER.toml
"""

from __future__ import annotations

import asyncio
import sys
import tomllib
from pathlib import Path
from typing import Any

from pdtui.ssh import libs

libs.install()  # pdtui's own start-up saving (asyncssh's liboqs lookup) applies here too

import asyncssh  # noqa: E402

from pdtui.npu.probe import ProbeSpec, build_script, new_nonce  # noqa: E402


def _merged(node: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in defaults.items() if not isinstance(v, dict)}
    out.update({k: v for k, v in node.items() if not isinstance(v, dict)})
    for part in ("ssh", "tools"):
        out[part] = {**defaults.get(part, {}), **node.get(part, {})}
    return out


async def _probe(node: dict[str, Any], base: Path) -> int:
    ssh, tools = node["ssh"], node["tools"]
    spec = ProbeSpec(
        node["soc"],
        tuple(range(node["npus"])),
        tools["hccn_tool"],
        tools["npu_smi"],
        node["hccn_conf"],
        cap=16,
        timeout=20,
    )
    async with asyncssh.connect(
        node["host"],
        port=ssh.get("port", 22),
        username=ssh.get("user"),
        client_keys=[str(base / ssh["identity_file"])],
        known_hosts=str(base / ssh["known_hosts"]),
        agent_path=None,
    ) as conn:
        result = await conn.run("bash -s", input=build_script(spec, new_nonce()))
        return len(str(result.stdout))


async def main(path: Path) -> None:
    data = tomllib.loads(path.read_text())
    nodes = [_merged(n, data.get("defaults", {})) for n in data["nodes"]]
    sizes = await asyncio.gather(*(_probe(n, path.parent) for n in nodes))
    if not all(sizes):
        raise SystemExit("a node printed nothing")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
