"""``pdtui import`` on real, public launch scripts and ``docker run`` commands, verbatim.

The samples (tests/fixtures/configs/, sources in its README.md) are vllm-ascend's own tutorials
at release tags; the test states what the importer reads from each and what it warns about.
"""

from __future__ import annotations

from pathlib import Path

from pdtui.cluster import Cluster, dump_spec, loads
from pdtui.launch.importer import import_scripts

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"


def _import(*names: str) -> tuple[Cluster, list[str]]:
    result = import_scripts({n: (CONFIGS / n).read_text() for n in names})
    return loads(dump_spec(result.spec)), result.warnings


def test_tutorial_docker_run_gives_the_container_and_the_nodes_eight_npus() -> None:
    cluster, warnings = _import(
        "mooncake_1node_docker_run.sh",
        "mooncake_1node_prefill.sh",
        "mooncake_1node_decode.sh",
        "mooncake_1node_proxy.sh",
    )
    # ``export IMAGE=...:|vllm_ascend_version|`` is a Sphinx substitution; read as shell, the
    # ``|`` is a pipe, so the tag is empty, as bash would leave it: said, not silent.
    assert warnings == [
        "mooncake_1node_docker_run.sh: line 9: image 'm.daocloud.io/quay.io/ascend/"
        "vllm-ascend:' has no tag (a '|' after the ':' is a shell pipe; a documentation "
        "placeholder?); set [defaults.container] image to the vllm-ascend release you run"
    ]
    table = cluster.spec.defaults.container
    assert table is not None
    assert (table.cli, table.name, table.image, table.network, table.shm_size) == (
        "docker",
        "vllm-ascend",
        "m.daocloud.io/quay.io/ascend/vllm-ascend:",
        "host",
        "1g",
    )
    assert table.env is None and table.extra_args is None  # -it and --rm are pdtui's own
    assert table.mounts == [
        "/usr/local/dcmi:/usr/local/dcmi",
        "/usr/local/Ascend/driver/tools/hccn_tool:/usr/local/Ascend/driver/tools/hccn_tool",
        "/usr/local/bin/npu-smi:/usr/local/bin/npu-smi",
        "/usr/local/Ascend/driver/lib64/:/usr/local/Ascend/driver/lib64/",
        "/usr/local/Ascend/driver/version.info:/usr/local/Ascend/driver/version.info",
        "/etc/ascend_install.info:/etc/ascend_install.info",
        "/etc/hccn.conf:/etc/hccn.conf",
        "/mnt/sfs_turbo/.cache:/root/.cache",
    ]
    # --device /dev/davinci0 .. /dev/davinci7: every NPU of the A2 node, not 16 as on an A3
    # (the container would otherwise be given /dev/davinci8-15, which an A2 does not have).
    assert table.devices == "all"
    (node,) = cluster.nodes
    assert (node.host, node.npus, node.nic) == ("192.0.0.1", 8, "eth0")
    assert node.container is not None and node.container.devices == tuple(range(8))
    assert [(i.name, i.role, i.devices, i.port) for i in cluster.instances] == [
        ("prefill-0", "prefill", (0,), 13700),
        ("decode-0", "decode", (1,), 13701),
    ]
    assert [i.kv_transfer["kv_port"] for i in cluster.instances] == ["30000", "30100"]
    assert cluster.spec.proxy is not None and cluster.spec.proxy.port == 8080


def test_llmdatadist_single_node_tutorial() -> None:
    cluster, warnings = _import(
        "llmdd_1node_gen.sh",
        "llmdd_1node_prefill.sh",
        "llmdd_1node_decode.sh",
        "llmdd_1node_proxy.sh",
    )
    # The tutorial's gen_ranktable.sh writes into "disaggregate_prefill_v1" (sic) while both
    # scripts read "/path/to/your/generated/ranktable.json".
    assert warnings == [
        "llmdd_1node_gen.sh: line 5: gen_ranktable.sh writes"
        " vllm-ascend/examples/disaggregate_prefill_v1/ranktable.json but"
        " llmdd_1node_prefill.sh sets"
        " DISAGGREGATED_PREFILL_RANK_TABLE_PATH=/path/to/your/generated/ranktable.json;"
        " vllm will not find the ranktable"
    ]
    (node,) = cluster.nodes
    assert (node.host, node.npus, node.nic) == ("192.0.0.1", 2, "eth0")  # --npus-per-node 2
    assert [
        (i.name, i.node, i.devices, i.port, i.env["VLLM_ASCEND_LLMDD_RPC_PORT"])
        for i in cluster.instances
    ] == [
        ("prefill-0", "prefill-0", (0,), 13700, "5959"),
        ("decode-0", "prefill-0", (1,), 13701, "5979"),
    ]
    assert cluster.spec.ranktable is not None
    assert cluster.spec.ranktable.path == "/path/to/your/generated/ranktable.json"
    assert cluster.spec.defaults.container is None  # no docker run in the tutorial


def test_four_node_mooncake_tutorial() -> None:
    cluster, warnings = _import(
        "mooncake_4node_prefill1.sh",
        "mooncake_4node_prefill2.sh",
        "mooncake_4node_decode1.sh",
        "mooncake_4node_decode2.sh",
        "mooncake_4node_proxy.sh",
    )
    assert warnings == [
        *(
            f"mooncake_4node_{n}.sh: line 15: $LD_LIBRARY_PATH is not set in the script;"
            " kept as text"
            for n in ("prefill1", "prefill2", "decode1", "decode2")
        ),
        # Decoder node 2 runs --headless (DP ranks 16-31 of decoder node 1's engine), so the
        # tutorial's proxy rightly leaves it out; pdtui reads it as a second decode instance.
        "mooncake_4node_proxy.sh: line 4: decode instance 192.0.0.4:8004 is missing from"
        " the proxy's decoder list; pdtui's proxy command lists it",
    ]
    assert [(n.name, n.host) for n in cluster.nodes] == [
        ("prefill-0", "192.0.0.1"),
        ("prefill-1", "192.0.0.2"),
        ("decode-0", "192.0.0.3"),
        ("decode-1", "192.0.0.4"),
    ]
    # vLLM starts the local DP ranks itself (no --data-parallel-rank): the flags pass through.
    assert [
        (
            i.name,
            i.serve["data-parallel-size"],
            i.serve["data-parallel-size-local"],
            i.serve["tensor-parallel-size"],
            i.serve.get("headless"),
            len(i.devices),
        )
        for i in cluster.instances
    ] == [
        ("prefill-0", 2, 2, 8, None, 16),
        ("prefill-1", 2, 2, 8, None, 16),
        ("decode-0", 32, 16, 1, None, 16),
        ("decode-1", 32, 16, 1, True, 16),
    ]
    assert all(i.dp is None for i in cluster.instances)
    assert cluster.spec.env["HCCL_BUFFSIZE"] == "1024"
    assert cluster.instances[2].env["HCCL_BUFFSIZE"] == "2048"
    assert "http_proxy" not in cluster.spec.env  # the scripts unset it
