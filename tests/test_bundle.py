"""`pdtui bundle` against the simulator: a failed start (port 16666 taken, reported only in
the CANN plog) bundled through the real command, secrets planted in the cluster file and in
a log masked, the size cap reported."""

from __future__ import annotations

import asyncio
import json
import sys
import tarfile
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui.cluster import load
from pdtui.launch.control import launch, stop_all, wait_ready
from pdtui.launch.run import run_dir
from pdtui.npu.health import sweep
from pdtui.ranktable import dumps, generate
from pdtui.ranktable.sync import push
from pdtui.ssh.remote import pool_for

HF = "hf_PlantedToken0123456789"
PASSWORD = "planted-password-value"
BEARER = "PlantedBearerValue42"


async def _bundle(cluster_file: Path, out: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pdtui",
        "bundle",
        str(cluster_file),
        "-o",
        str(out),
        "--log-mb",
        "0.01",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    so, se = await proc.communicate()
    return proc.returncode or 0, so.decode(), se.decode()


@pytest.mark.slow
async def test_a_failed_start_bundles_with_secrets_masked_and_cuts_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    async with runbook_sim(tmp_path, "127.0.83", "decode-0:crash-on-start=port") as sim:
        text = sim.cluster_file.read_text()
        sim.cluster_file.write_text(
            text.replace("[env]\n", f'[env]\nHF_TOKEN = "{HF}"\nDB_PASSWORD = "{PASSWORD}"\n', 1)
        )
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            live = {n.name: n for n in await sweep(pool, cluster)}
            await push(pool, cluster, dumps(generate(cluster, live)))
            await launch(pool, cluster)
            await wait_ready(pool, cluster, timeout=60, interval=0.3)
            log = Path(run_dir(cluster.node("prefill-0"), cluster.name, "prefill-0")) / "out.log"
            with log.open("a") as f:
                f.write("INFO 01-01 00:00:00 [x.py:1] padding\n" * 600)  # past --log-mb
                f.write(f"INFO 01-01 00:00:00 [x.py:1] Authorization: Bearer {BEARER}\n")
            out = tmp_path / "b.tar.gz"
            rc, so, se = await _bundle(sim.cluster_file, out)
            await stop_all(pool, cluster, grace=5)
    assert rc == 0, se
    assert "bundle: NPU check of every node…" in se and f"{out}:" in so
    assert out.stat().st_mode & 0o777 == 0o600
    with tarfile.open(out) as tar:
        members = {
            m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }
    for name in (
        "MANIFEST.txt",
        "version.txt",
        "cluster.toml",
        "npu-check.json",
        "ranktable.json",
        "commands.log",
        "nodes/prefill-0/versions.txt",
        "nodes/decode-0/npu-smi-info.txt",
        "processes/decode-0/status.json",
        "processes/decode-0/cmd",
        "processes/decode-0/env",
        "processes/decode-0/out.log",
        "processes/prefill-0/out.log",
        "processes/decode-0/diagnose.json",
        "processes/proxy/out.log",
    ):
        assert name in members, sorted(members)
    everything = "\n".join(members.values())
    for secret in (HF, PASSWORD, BEARER):
        assert secret not in everything
    assert 'HF_TOKEN = "***"' in members["cluster.toml"]
    assert "pdtui 0." in members["version.txt"]
    assert "driver: " in members["nodes/prefill-0/versions.txt"]
    assert "npu-smi" in members["nodes/decode-0/npu-smi-info.txt"].lower()
    assert json.loads(members["npu-check.json"])["nodes"]
    assert all(c["sha256"] for c in json.loads(members["ranktable.json"]))
    plogs = [m for m in members if m.startswith("processes/decode-0/plog/plog-")]
    assert len(plogs) == 1 and "specific port[16666] fail" in members[plogs[0]]
    diag = json.loads(members["processes/decode-0/diagnose.json"])["files"]
    assert [f["kind"] for f in diag] == ["vllm", "plog"]
    assert diag[1]["findings"][0]["id"] == "port-16666"
    status = json.loads(members["processes/decode-0/status.json"])
    assert status["state"] == "failed" and status["fingerprints"][0]["id"] == "port-16666"
    assert "processes/prefill-0/out.log: the first" in members["MANIFEST.txt"]
    assert "(kept the last 10485)" in members["MANIFEST.txt"]
    assert "bundle: versions on prefill-0" in members["commands.log"]
