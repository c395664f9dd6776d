"""A support bundle: one archive with what an issue or a colleague needs to see a failed start.

Under ``pdtui-bundle-<cluster>-<UTC time>/``:

- ``MANIFEST.txt``: what each file is, and what was left out (size caps) or could not be read;
- ``version.txt``: pdtui, Python and platform; ``cluster.toml``: the cluster file;
- ``npu-check.json``: an NPU check (no pings) made while bundling;
- ``ranktable.json``: every node copy of the ranktable: path, state, sha256;
- ``nodes/NODE/versions.txt`` (driver, firmware, CANN, vLLM, vllm-ascend, Python, kernel) and
  ``nodes/NODE/npu-smi-info.txt``;
- ``processes/NAME/``: ``status.json``, ``cmd`` and ``env`` (as the launch recorded them,
  redacted), ``out.log`` (its last ``log_bytes``), ``plog/FILE`` (the last ``plog_bytes`` of
  each of this run's CANN logs), ``diagnose.txt`` / ``diagnose.json`` of each log;
- ``commands.log``: every command the bundle ran on the nodes (redacted).

Every text goes through ``pdtui.ssh.redact`` (and TOML ``*_TOKEN = "..."`` lines are masked)
before it is written: the archive can be attached to a public issue.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import platform
import re
import shlex
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pdtui import __version__
from pdtui.cluster import Cluster, Node
from pdtui.launch.control import Launchable, launchables, plog_base, statuses
from pdtui.launch.logs import plog
from pdtui.launch.logs.diagnose import FileReport, analyse, render
from pdtui.launch.run import run_dir, shell_path
from pdtui.ssh import SshError, SshPool, redact
from pdtui.ssh.remote import target

LOG_BYTES = 4 << 20
PLOG_BYTES = 1 << 20
PLOG_FILES = 8
TOTAL_BYTES = 64 << 20
_SEP = "@@pdtui-bundle@@"
_TOML_SECRET = re.compile(
    r"(?im)^(\s*\"?[A-Za-z0-9_.-]*(?:token|secret|pass(?:word)?|key|auth|cookie|credential)"
    r"[A-Za-z0-9_.-]*\"?\s*=\s*)(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s#]+)"
)

_VERSIONS = r"""v() { k=$1; shift; o=$("$@" 2>/dev/null | head -n 3 | tr '\n' ' ');
  printf '%s: %s\n' "$k" "${o:-not found}"; }
A=/usr/local/Ascend
v driver grep -h '^Version=' $A/driver/version.info
v firmware grep -h '^Version=' $A/firmware/version.info
v cann sh -c "grep -h -i -m1 version $A/ascend-toolkit/latest/*/ascend_toolkit_install.info \
  $A/ascend-toolkit/latest/version.cfg 2>/dev/null"
v vllm python3 -c 'import importlib.metadata as m; print(m.version("vllm"))'
v vllm-ascend python3 -c 'import importlib.metadata as m; print(m.version("vllm_ascend"))'
v python python3 --version
v kernel uname -srm
"""


@dataclass
class Bundle:
    """The archive's files (path below the top folder -> text) and what was left out."""

    root: str
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was cut, left out or unreadable
    size: int = 0

    def add(self, path: str, text: str, *, toml: bool = False) -> None:
        """Adds ``text`` (secrets masked) unless the total would pass ``TOTAL_BYTES``."""
        clean = redact(_TOML_SECRET.sub(r'\1"***"', text) if toml else text)
        n = len(clean.encode("utf-8", "replace"))
        if self.size + n > TOTAL_BYTES:
            self.notes.append(
                f"{path}: left out ({n} bytes would pass the bundle's {TOTAL_BYTES >> 20} MiB)"
            )
            return
        self.files[path] = clean
        self.size += n

    def manifest(self) -> str:
        lines = [f"pdtui support bundle ({self.root})", "", "files:"]
        lines += [f"  {p}" for p in sorted(self.files)]
        lines += ["", "left out, cut or unreadable:"]
        lines += [f"  {n}" for n in self.notes] or ["  nothing"]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        """The tar.gz at ``path`` (mode 0600), with MANIFEST.txt first."""
        now = time.time()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            entries = {"MANIFEST.txt": self.manifest(), **self.files}
            for name, text in entries.items():
                data = text.encode("utf-8", "replace")
                info = tarfile.TarInfo(f"{self.root}/{name}")
                info.size, info.mtime, info.mode = len(data), int(now), 0o600
                tar.addfile(info, io.BytesIO(data))


async def _run(pool: SshPool, node: Node, cmd: str, label: str) -> str | None:
    try:
        res = await pool.run(target(node), cmd, timeout=60, label=label)
    except SshError as exc:
        return f"unreachable: {exc.message}"
    return res.stdout + (f"\n[stderr] {res.stderr.strip()[:2000]}" if res.stderr.strip() else "")


async def _node_facts(pool: SshPool, node: Node, b: Bundle) -> None:
    versions = await _run(pool, node, _VERSIONS, f"bundle: versions on {node.name}")
    b.add(f"nodes/{node.name}/versions.txt", versions or "")
    smi = await _run(
        pool, node, f"{shlex.quote(node.npu_smi)} info", f"bundle: npu-smi info on {node.name}"
    )
    b.add(f"nodes/{node.name}/npu-smi-info.txt", smi or "")


def _tail_command(path: str, limit: int) -> str:
    q = shell_path(path)
    return (
        f"wc -c < {q} 2>/dev/null || echo -1; echo {_SEP}; tail -c {int(limit)} -- {q} 2>/dev/null"
    )


def _split_tail(text: str, what: str, limit: int, b: Bundle) -> str | None:
    """The file text of a ``_tail_command`` answer; notes a cut."""
    size_text, _, body = text.partition(_SEP + "\n")
    size = int(size_text.strip()) if size_text.strip().lstrip("-").isdigit() else -1
    if size < 0:
        b.notes.append(f"{what}: not found on the node")
        return None
    if size > limit:
        b.notes.append(
            f"{what}: the first {size - limit} of {size} bytes left out (kept the last {limit})"
        )
        body = body.split("\n", 1)[1] if "\n" in body else body  # a whole first line
    return body


def _add_diagnosis(b: Bundle, folder: str, reports: list[FileReport]) -> None:
    b.add(f"{folder}/diagnose.txt", "\n\n".join("\n".join(render(r)) for r in reports) + "\n")
    b.add(
        f"{folder}/diagnose.json",
        json.dumps({"files": [r.to_json() for r in reports]}, indent=2) + "\n",
    )


async def _process(
    pool: SshPool, cluster: Cluster, item: Launchable, b: Bundle, log_bytes: int, plog_bytes: int
) -> None:
    node = cluster.node(item.node)
    d = run_dir(node, cluster.name, item.name)
    folder = f"processes/{item.name}"
    for name in ("cmd", "env.redacted"):
        text = await _run(
            pool,
            node,
            f"cat -- {shell_path(d + '/' + name)} 2>/dev/null",
            f"bundle: {name} of {item.name}",
        )
        if text:
            b.add(f"{folder}/{'env' if name == 'env.redacted' else name}", text)
    reports = []
    raw = await _run(
        pool, node, _tail_command(d + "/out.log", log_bytes), f"bundle: out.log of {item.name}"
    )
    body = _split_tail(raw or "", f"{folder}/out.log", log_bytes, b)
    if body is not None:
        b.add(f"{folder}/out.log", body)
        reports.append(
            analyse(f"{folder}/out.log", b.files.get(f"{folder}/out.log", "").splitlines())
        )
    listing = await _run(
        pool,
        node,
        plog.list_command(plog_base(cluster, item), d + "/run_id", 100),
        f"bundle: plog files of {item.name}",
    )
    files = [f for f in (listing or "").splitlines() if f.startswith("/") or f.startswith("~")]
    if len(files) > PLOG_FILES:
        b.notes.append(
            f"{folder}/plog: {len(files) - PLOG_FILES} older CANN log files left "
            f"out (kept the newest {PLOG_FILES})"
        )
    for f in files[-PLOG_FILES:]:
        name = f"{folder}/plog/{f.rsplit('/', 1)[-1]}"
        raw = await _run(pool, node, _tail_command(f, plog_bytes), f"bundle: {name}")
        body = _split_tail(raw or "", name, plog_bytes, b)
        if body is not None:
            b.add(name, body)
            reports.append(analyse(name, b.files.get(name, "").splitlines()))
    if reports:
        _add_diagnosis(b, folder, reports)


async def _ranktables(pool: SshPool, cluster: Cluster, b: Bundle) -> None:
    from pdtui.ranktable.sync import fetch_all

    if cluster.spec.ranktable is None:
        b.notes.append("ranktable.json: this cluster has no ranktable")
        return
    copies = await fetch_all(pool, cluster)
    b.add("ranktable.json", json.dumps([c.to_dict() for c in copies], indent=2) + "\n")


async def collect(
    pool: SshPool,
    cluster: Cluster,
    cluster_file: Path,
    *,
    log_bytes: int = LOG_BYTES,
    plog_bytes: int = PLOG_BYTES,
    progress: Callable[[str], None] = lambda _m: None,
) -> Bundle:
    """Everything the bundle holds, read from the nodes over ``pool``."""
    from pdtui.npu.health import check

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    b = Bundle(f"pdtui-bundle-{cluster.name}-{stamp}")
    b.add(
        "version.txt",
        f"pdtui {__version__}\npython {sys.version.split()[0]}\nplatform {platform.platform()}\n",
    )
    b.add("cluster.toml", cluster_file.read_text(encoding="utf-8", errors="replace"), toml=True)
    progress("NPU check of every node")
    report = await check(pool, cluster)
    b.add("npu-check.json", json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    progress("ranktable copies")
    await _ranktables(pool, cluster, b)
    progress("versions and npu-smi info of every node")
    await asyncio.gather(*(_node_facts(pool, n, b) for n in cluster.nodes))
    progress("process status, logs and CANN logs")
    for st in await statuses(pool, cluster):
        data = st.to_dict()  # "key" would read as a secret's name to the redactor: "id"
        prints: list[dict[str, object]] = data["fingerprints"]  # type: ignore[assignment]
        data["fingerprints"] = [
            {("id" if k == "key" else k): v for k, v in f.items()} for f in prints
        ]
        b.add(f"processes/{st.name}/status.json", json.dumps(data, indent=2, default=str) + "\n")
    for item in launchables(cluster):
        await _process(pool, cluster, item, b, log_bytes, plog_bytes)
    b.add(
        "commands.log",
        "".join(
            f"{time.strftime('%H:%M:%S', time.localtime(r.started_at))} {r.node} "
            f"exit={r.exit_status} {r.duration:.2f}s {r.command}"
            f"{' error=' + r.error if r.error else ''}\n"
            for r in pool.command_log
        ),
    )
    return b
