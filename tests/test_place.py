"""``pdtui.place``: the login shell or ``CLI exec NAME sh -c SCRIPT``, quoted."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from pdtui import cluster as cl
from pdtui.place import cli, exec_argv, where, wrap

_SAMPLE = str(
    Path(__file__).resolve().parent.parent / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
)


def test_a_node_without_a_container_runs_the_script_as_it_is() -> None:
    text = re.sub(r"\[defaults\.container\][^\[]*", "", Path(_SAMPLE).read_text())
    node = cl.loads(text).nodes[0]
    assert node.container is None
    assert wrap(node, "echo hi") == "echo hi" and where(node) == "host"


def test_a_node_with_a_container_execs_one_sh_whose_script_is_one_word() -> None:
    node = cl.load(_SAMPLE).nodes[0]
    script = 'echo "it\'s $HOME"; test -e /etc/hccn.conf && echo ok'
    command = wrap(node, script)
    assert shlex.split(command) == ["docker", "exec", "vllm-ascend", "sh", "-c", script]
    assert where(node) == "container vllm-ascend"
    assert exec_argv(node, "true", detach=True, env={"A": "1 2"})[:5] == [
        "docker",
        "exec",
        "-d",
        "-e",
        "A=1 2",
    ]
    assert cli(node, "inspect", "x y") == "docker inspect 'x y'"
    # the quoting holds in a real shell: sh receives the script verbatim as its -c argument
    echoed = subprocess.run(
        ["sh", "-c", command.replace("docker exec vllm-ascend ", "", 1)],
        capture_output=True,
        text=True,
        env={"HOME": "/h"},
    )
    assert echoed.stdout.startswith("it's /h\n")
