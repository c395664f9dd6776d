"""Reading a cluster file before validation: what it reports on its own, and that it (and the
package's light names) load no pydantic, so the app can paint before it validates."""

from __future__ import annotations

from pathlib import Path

import pytest
from procs import loads_pydantic

from pdtui.cluster import ClusterError, ClusterSource, load, read_source
from pdtui.cluster.io import build
from pdtui.cluster.source import parse_source

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


def problems(path: Path) -> list[str]:
    with pytest.raises(ClusterError) as exc:
        read_source(path)
    return exc.value.problems


def test_a_good_file_is_read_and_builds_the_same_cluster_as_load() -> None:
    source = read_source(RUNBOOK)
    assert isinstance(source, ClusterSource)
    assert (source.source, source.path) == (RUNBOOK.name, RUNBOOK)
    assert source.data["cluster"]["name"] == "deepseek-v3.2-a3-1p1d"
    built, loaded = build(source), load(RUNBOOK)
    assert built.spec == loaded.spec and built.nodes == loaded.nodes
    assert built.instances == loaded.instances and built.path == loaded.path


def test_what_reading_alone_finds(tmp_path: Path) -> None:
    assert problems(tmp_path / "none.toml") == [f"{tmp_path / 'none.toml'}: no such file"]
    (tmp_path / "dir.toml").mkdir()
    assert problems(tmp_path / "dir.toml")[0].startswith(f"{tmp_path / 'dir.toml'}: cannot read")
    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    assert problems(tmp_path / "latin1.toml")[0].startswith(
        f"{tmp_path / 'latin1.toml'}: cannot read"
    )
    (tmp_path / "bad.toml").write_text("[cluster\n")
    assert problems(tmp_path / "bad.toml")[0].startswith("bad.toml: not valid TOML:")
    (tmp_path / "big.toml").write_text(f"n = {'9' * 5000}\n")
    assert problems(tmp_path / "big.toml") == [
        "big.toml: not a cluster file: a number longer than 4300 digits"
    ]
    (tmp_path / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert problems(tmp_path / "deep.toml") == [
        "deep.toml: not a cluster file: values nested too deeply"
    ]


def test_a_file_that_parses_but_is_no_cluster_is_found_by_build_not_by_reading() -> None:
    source = parse_source('[cluster]\nname = "x"\n', source="c.toml", path=None)
    with pytest.raises(ClusterError) as exc:
        build(source)
    assert "c.toml: nodes: missing required key" in exc.value.problems


def test_reading_a_file_and_the_packages_light_names_load_no_pydantic() -> None:
    assert not loads_pydantic(
        "from pdtui.cluster import ClusterError, format_devices, parse_devices, read_source\n"
        f"read_source({str(RUNBOOK)!r})"
    )
    assert loads_pydantic("from pdtui.cluster import load")
