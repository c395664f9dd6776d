"""``pdtui import`` of the tutorial's ``docker run`` and ``docker exec NAME bash -c '...'``."""

from __future__ import annotations

import shlex
from pathlib import Path

from pdtui.cluster import dump_spec, loads
from pdtui.launch.importer import import_scripts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scripts"
RUNBOOK_FILES = ("runbook-prefill.sh", "runbook-decode.sh", "runbook-proxy.sh")

DOCKER_RUN = """\
export IMAGE=quay.io/ascend/vllm-ascend:v0.11.0rc0
export NAME=vllm-ascend
docker run --rm \\
--name $NAME \\
--net=host \\
--shm-size=1g \\
--device /dev/davinci0 --device /dev/davinci1 --device /dev/davinci2 --device /dev/davinci3 \\
--device /dev/davinci4 --device /dev/davinci5 --device /dev/davinci6 --device /dev/davinci7 \\
--device /dev/davinci8 --device /dev/davinci9 --device /dev/davinci10 \\
--device /dev/davinci11 --device /dev/davinci12 --device /dev/davinci13 \\
--device /dev/davinci14 --device /dev/davinci15 \\
--device /dev/davinci_manager \\
--device /dev/devmm_svm \\
--device /dev/hisi_hdc \\
-v /usr/local/dcmi:/usr/local/dcmi \\
-v /usr/local/Ascend/driver/tools/hccn_tool:/usr/local/Ascend/driver/tools/hccn_tool \\
-v /usr/local/bin/npu-smi:/usr/local/bin/npu-smi \\
-v /usr/local/Ascend/driver/lib64/:/usr/local/Ascend/driver/lib64/ \\
-v /usr/local/Ascend/driver/version.info:/usr/local/Ascend/driver/version.info \\
-v /etc/ascend_install.info:/etc/ascend_install.info \\
-v /etc/hccn.conf:/etc/hccn.conf \\
-v /mnt/sfs_turbo/.cache:/root/.cache \\
--ipc=host \\
-it $IMAGE bash
"""


def _texts(wrapped: bool) -> dict[str, str]:
    texts = {n: (FIXTURES / n).read_text() for n in RUNBOOK_FILES}
    if wrapped:
        texts = {
            n: f"docker exec -it vllm-ascend bash -c {shlex.quote(t)}\n" for n, t in texts.items()
        }
    return texts


def test_docker_run_fills_the_container_table_and_exec_scripts_import_as_plain_ones() -> None:
    plain = loads(dump_spec(import_scripts(_texts(False)).spec))
    result = import_scripts({"docker-run.sh": DOCKER_RUN, **_texts(True)})
    cluster = loads(dump_spec(result.spec))
    assert [(i.name, i.node, i.devices, i.env, i.serve) for i in cluster.instances] == [
        (i.name, i.node, i.devices, i.env, i.serve) for i in plain.instances
    ]
    assert cluster.spec.proxy == plain.spec.proxy
    table = cluster.spec.defaults.container
    assert table is not None
    assert (table.cli, table.name, table.image, table.network, table.shm_size) == (
        "docker",
        "vllm-ascend",
        "quay.io/ascend/vllm-ascend:v0.11.0rc0",
        "host",
        "1g",
    )
    assert table.devices == "instances" and table.extra_args == ["--ipc=host"]
    assert table.mounts is not None and "/etc/hccn.conf:/etc/hccn.conf" in table.mounts
    assert "/mnt/sfs_turbo/.cache:/root/.cache" in table.mounts
    box = cluster.nodes[0].container
    assert box is not None and box.mode == "managed" and len(box.devices) == 16
    assert not [w for w in result.warnings if "container" in w]


def test_exec_without_run_is_an_adopted_container() -> None:
    result = import_scripts(_texts(True))
    table = result.spec.defaults.container
    assert table is not None and (table.mode, table.name) == ("adopted", "vllm-ascend")
    assert any("adopted" in w for w in result.warnings)
    assert loads(dump_spec(result.spec)).nodes[1].container is not None


def test_without_container_commands_nothing_changes() -> None:
    assert import_scripts(_texts(False)).spec.defaults.container is None
