"""Names and numbers in a cluster file that used to pass ``validate`` and fail later.

Each one is now refused at load with one line naming the file, the key and the value; none
costs more than a moment or a little memory.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path

import pytest

from pdtui.cluster import ClusterError, loads

RUNBOOK = (
    Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
).read_text()


def refused(text: str) -> str:
    with pytest.raises(ClusterError) as err:
        loads(text, source="c.toml")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("c.toml: "), msg
    return msg


def instance_name(old: str, new: str, text: str = RUNBOOK) -> str:
    return text.replace(f'[[instances]]\nname = "{old}"', f'[[instances]]\nname = "{new}"', 1)


def test_the_runbook_itself_loads() -> None:
    assert loads(RUNBOOK).name


@pytest.mark.parametrize("name", ["proxy", "prefill", "decode"])
def test_an_instance_named_like_the_proxy_or_a_role_is_refused(name: str) -> None:
    msg = refused(instance_name("decode-0", name))
    assert "instances[1].name" in msg and repr(name) in msg


def wide(name: str, devices: str, port: int, dp: bool) -> str:
    return (
        f'\n[[instances]]\nname = "{name}"\nrole = "decode"\nnode = "decode-0"\n'
        f'devices = "{devices}"\nport = {port}\n'
        f"serve = {{ tensor-parallel-size = 1 }}\n"
        f'kv_transfer = {{ kv_connector = "MooncakeConnectorV1", kv_role = "kv_consumer" }}\n'
        + ('dp = { size = 2, local = 2, address = "127.0.0.1" }\n' if dp else "")
    )


def test_an_instance_named_like_another_instances_dp_rank_is_refused() -> None:
    text = RUNBOOK.replace("npus = 16", "npus = 32").replace(
        "decode_device_count = 16", "decode_device_count = 32"
    )
    ok = loads(text + wide("wide", "16-17", 9100, True), source="c.toml")
    assert [p.name for p in ok.instance("wide").processes] == ["wide.dp0", "wide.dp1"]
    msg = refused(text + wide("wide", "16-17", 9100, True) + wide("wide.dp1", "20", 9200, False))
    assert "'wide.dp1'" in msg and "process" in msg


@pytest.mark.parametrize("name", ["my cluster/v2", "../up", "a;b", ""])
def test_a_cluster_name_that_is_not_a_folder_name_is_refused(name: str) -> None:
    text = re.sub(r'(\[cluster\]\nname = )"[^"]*"', rf'\1"{name}"', RUNBOOK)
    assert "cluster.name" in refused(text)


def test_a_nul_in_the_ssh_user_is_refused() -> None:
    msg = refused(RUNBOOK.replace('user = "root"', 'user = "ro\\u0000ot"'))
    assert "defaults.ssh.user" in msg and "\\x00" in msg


@pytest.mark.parametrize("key", ["connect_timeout", "command_timeout"])
@pytest.mark.parametrize("value", ["inf", "nan", "1e9", "3601"])
def test_timeouts_are_finite_and_bounded(key: str, value: str) -> None:
    msg = refused(RUNBOOK.replace("[defaults.ssh]\n", f"[defaults.ssh]\n{key} = {value}\n"))
    assert f"defaults.ssh.{key}" in msg


def test_an_integer_of_5000_digits_is_one_line() -> None:
    msg = refused(RUNBOOK.replace("[defaults]\n", "[defaults]\nnpus = " + "9" * 5000 + "\n"))
    assert "4300 digits" in msg and len(msg) < 300


def test_a_huge_device_range_is_refused_without_expanding_it() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for devices in ('"0-99999999"', '"0-3,8-99999999999999999999"'):
        text = RUNBOOK.replace('devices = "0-15"', f"devices = {devices}", 1)
        msg = refused(text)
        assert "devices" in msg and "NPUs" in msg
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
