"""The ``[defaults.container]`` / ``[nodes.container]`` section: defaults, overrides, errors."""

from __future__ import annotations

import pytest

from pdtui import cluster as cl

from .common import MOONCAKE, RUNBOOK, edit, problems_for

_TABLE = (
    '[defaults.container]\nimage = "quay.io/ascend/vllm-ascend:v0.11.0rc0"\n'
    'name = "vllm-ascend"\nshm_size = "1g"\n'
)


def _with(extra: str, node_extra: str = "") -> str:
    """The runbook sample with its container table replaced by ``extra`` (and a node table)."""
    text = edit(_TABLE, extra)
    if node_extra:
        text = text.replace('host = "172.22.0.155"\n', 'host = "172.22.0.155"\n' + node_extra, 1)
    return text


def test_samples_run_in_the_tutorials_container() -> None:
    c = cl.load(RUNBOOK)
    box = c.nodes[0].container
    assert box is not None
    assert (box.mode, box.cli, box.name, box.network, box.shm_size) == (
        "managed",
        "docker",
        "vllm-ascend",
        "host",
        "1g",
    )
    assert box.image == "quay.io/ascend/vllm-ascend:v0.11.0rc0"
    assert box.devices == tuple(range(16))
    paths = [m.path for m in box.mounts]
    assert paths[:7] == [
        "/usr/local/dcmi",
        "/usr/local/Ascend/driver/tools/hccn_tool",
        "/usr/local/bin/npu-smi",
        "/usr/local/Ascend/driver/lib64/",
        "/usr/local/Ascend/driver/version.info",
        "/etc/ascend_install.info",
        "/etc/hccn.conf",
    ]
    assert paths[7] == "/root/.cache/weights/dpsk_w8a8"  # the model folder
    assert box.cluster == "deepseek-v3.2-a3-1p1d"
    moon = cl.load(MOONCAKE).nodes[3].container
    assert moon is not None and moon.image == "quay.io/ascend/vllm-ascend:v0.11.0rc1"


def test_without_the_table_everything_runs_on_the_host() -> None:
    c = cl.loads(_with(""))
    assert all(n.container is None for n in c.nodes)
    assert not any("container" in line for line in c.summary())


def test_a_node_overrides_the_defaults_key_by_key() -> None:
    c = cl.loads(
        _with(
            _TABLE + 'cli = "podman"\ndevices = "instances"\nenv = { A = "{node.name}" }\n',
            '[nodes.container]\nname = "pd-{node.name}"\nmode = "adopted"\n'
            'mounts = ["/srv/hccn-{node.name}.conf:/etc/hccn.conf:ro", "/data"]\n'
            'extra_args = ["--ipc=host"]\n',
        )
    )
    pre, dec = (n.container for n in c.nodes)
    assert pre is not None and dec is not None
    assert (pre.name, pre.mode, pre.cli) == ("vllm-ascend", "managed", "podman")
    assert (dec.name, dec.mode, dec.cli) == ("pd-decode-0", "adopted", "podman")
    assert dec.env == {"A": "decode-0"} and dec.extra_args == ("--ipc=host",)
    assert [m.arg for m in dec.mounts] == [
        "/srv/hccn-decode-0.conf:/etc/hccn.conf:ro",
        "/data:/data",
    ]
    assert dec.devices == tuple(range(16))  # the instance on it uses 0-15


def test_the_nodes_own_tool_and_hccn_conf_paths_are_the_mount_sources() -> None:
    text = _with(_TABLE).replace('hccn_conf = "/etc/hccn.conf"', 'hccn_conf = "/site/hccn.conf"')
    box = cl.loads(text).nodes[0].container
    assert box is not None
    assert "/site/hccn.conf:/etc/hccn.conf" in [m.arg for m in box.mounts]


def test_adopted_needs_no_image() -> None:
    box = cl.loads(_with('[defaults.container]\nmode = "adopted"\n')).nodes[1].container
    assert box is not None and box.image is None and box.mode == "adopted"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            '[defaults.container]\nname = "x"\n',
            "cluster.toml: defaults.container.image: missing required key (a managed container",
        ),
        (
            _TABLE + 'cli = "lxc"\n',
            "cluster.toml: defaults.container.cli: expected one of 'docker', 'podman', 'nerdctl'",
        ),
        (
            _TABLE + 'mode = "owned"\n',
            "cluster.toml: defaults.container.mode: expected one of 'managed' or 'adopted', "
            "got 'owned'",
        ),
        (
            _TABLE.replace('"vllm-ascend"\n', '"a b;rm"\n'),
            "cluster.toml: defaults.container.name: expected a container name",
        ),
        (
            _TABLE.replace('"1g"', '"lots"'),
            "cluster.toml: defaults.container.shm_size: expected a size like '1g' or '512m', "
            "got 'lots'",
        ),
        (_TABLE + "image2 = 1\n", "cluster.toml: defaults.container.image2: unknown key"),
        (
            _TABLE + 'mounts = ["relative:/x"]\n',
            "cluster.toml: defaults.container.mounts[0]: expected 'HOST_PATH:CONTAINER_PATH[:ro]'",
        ),
        (
            _TABLE + 'env = { "1BAD" = "x" }\n',
            "cluster.toml: defaults.container.env: '1BAD' is not a valid environment variable name",
        ),
        (
            _TABLE + 'devices = "0-3"\n',
            "cluster.toml: defaults.container.devices: expected one of 'all', 'instances' "
            "or 'none'",
        ),
    ],
)
def test_bad_values_get_one_line_naming_file_key_and_value(table: str, expected: str) -> None:
    problems = problems_for(_with(table))
    assert any(p.startswith(expected) for p in problems), problems


def test_a_nodes_bad_value_names_the_node() -> None:
    problems = problems_for(_with(_TABLE, '[nodes.container]\nname = "{node.bogus}"\n'))
    assert any(
        p.startswith("cluster.toml: nodes[1].container.name: unknown placeholder") for p in problems
    ), problems


def test_the_table_round_trips_through_dump_spec() -> None:
    c = cl.load(RUNBOOK)
    again = cl.loads(cl.dump_spec(c.spec))
    assert again.nodes[0].container == c.nodes[0].container
