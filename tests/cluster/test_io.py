"""Loading and saving cluster files: samples load, unreadable files get one clear line,
saves are atomic and round-trip."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pdtui import cluster as cl

from .common import RUNBOOK, SAMPLES, edit, problems_for


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_loads_without_warnings(path: Path) -> None:
    c = cl.load(path)
    assert c.nodes and c.instances
    assert c.warnings == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            '[defaults.ssh]\nuser = "root"',
            '[defaults.ssh]\nuser = "root"\nport = "abc"',
            "cluster.toml: defaults.ssh.port: expected an integer, got 'abc'",
        ),
        (
            'name = "decode-0"\nhost = "172.22.0.155"',
            'name = "decode-0"\nhost = "172.22.0.155"\nssh = { port = "abc" }',
            "cluster.toml: nodes[1].ssh.port: expected an integer, got 'abc'",
        ),
        (
            'nic = "enp23s0f3"',
            'nicc = "enp23s0f3"',
            "cluster.toml: defaults.nicc: unknown key (check the spelling; see the README's"
            " cluster-file reference)",
        ),
        (
            'soc = "A3"',
            'soc = "A9"',
            "cluster.toml: defaults.soc: expected one of 'A2' or 'A3', got 'A9'",
        ),
        (
            '[model]\npath = "/root/.cache/weights/dpsk_w8a8"\n',
            "[model]\n",
            "cluster.toml: model.path: missing required key",
        ),
        (
            'role = "decode"',
            'role = "decoder"',
            "cluster.toml: instances[1].role: expected one of 'prefill' or 'decode', got 'decoder'",
        ),
        (
            'devices = "0-15"',
            'devices = "0-x"',
            "cluster.toml: instances[0].devices: expected device ids like '0-15' or '0,2,4',"
            " got '0-x'",
        ),
    ],
)
def test_schema_errors_get_one_line_naming_file_key_and_value(
    old: str, new: str, expected: str
) -> None:
    """Wrong types, unknown keys and missing keys, worded from pydantic's errors."""
    assert expected in problems_for(edit(old, new))


def test_toml_syntax_error_names_file_and_line() -> None:
    probs = problems_for(RUNBOOK.read_text() + "\n[[nodes]\n")
    assert len(probs) == 1
    assert probs[0].startswith("cluster.toml: not valid TOML:") and "line" in probs[0]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(cl.ClusterError) as info:
        cl.load(tmp_path / "nope.toml")
    assert info.value.problems == [f"{tmp_path / 'nope.toml'}: no such file"]


def test_save_round_trips_and_keeps_a_backup(tmp_path: Path) -> None:
    target = tmp_path / "c.toml"
    target.write_text(RUNBOOK.read_text())
    spec = cl.load(target).spec
    spec.cluster.description = "edited"
    backup = cl.save(spec, target)
    assert backup == tmp_path / "c.toml.bak"
    assert backup.read_text() == RUNBOOK.read_text()
    again = cl.load(target)
    assert again.spec == spec
    assert again.spec.cluster.description == "edited"
    assert {p.name for p in tmp_path.iterdir()} == {"c.toml", "c.toml.bak"}


def test_save_refuses_an_invalid_spec_and_leaves_the_file(tmp_path: Path) -> None:
    target = tmp_path / "c.toml"
    target.write_text(RUNBOOK.read_text())
    spec = cl.load(target).spec
    spec.instances[1].node = "ghost"
    with pytest.raises(cl.ClusterError):
        cl.save(spec, target)
    assert target.read_text() == RUNBOOK.read_text()
    assert {p.name for p in tmp_path.iterdir()} == {"c.toml"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_dump_spec_is_valid_toml_that_loads_to_the_same_cluster(path: Path) -> None:
    spec = cl.load(path).spec
    text = cl.dump_spec(spec)
    tomllib.loads(text)
    assert cl.loads(text).spec == spec


def test_hostile_files_get_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(cl.ClusterError) as info:
        cl.load(deep)
    assert info.value.problems == ["deep.toml: not a cluster file: values nested too deeply"]
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[cluster]\n")
    with pytest.raises(cl.ClusterError) as info:
        cl.load(binary)
    assert info.value.problems[0].startswith(f"{binary}: cannot read: 'utf-8' codec")
