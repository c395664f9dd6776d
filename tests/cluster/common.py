"""Shared by the cluster tests: the sample files and a way to edit one and read its problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdtui import cluster as cl

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = sorted((ROOT / "sample_clusters").glob("*.toml"))
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
MOONCAKE = ROOT / "sample_clusters" / "mooncake-a3-2p1d.toml"


def problems_for(text: str) -> list[str]:
    with pytest.raises(cl.ClusterError) as info:
        cl.loads(text, source="cluster.toml")
    return info.value.problems


def edit(old: str, new: str, base: Path = RUNBOOK) -> str:
    text = base.read_text()
    assert old in text, old
    return text.replace(old, new, 1)
