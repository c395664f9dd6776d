"""The headless command line: ``pdtui [CLUSTER]`` opens the app, subcommands do one step each.

Exit codes: 0 ok, 1 findings or failures, 2 usage or configuration errors.

Each command is a module of this package with ``add_args(parser)`` and ``run(ns) -> int``.
:data:`COMMANDS` lists them; a command's module is imported only when that command runs (or
its ``--help`` is asked), so ``pdtui --help`` and ``pdtui --version`` import none of them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from pdtui import __version__
from pdtui.cli.common import EXIT_CONFIG, EXIT_FINDINGS, EXIT_OK, err, run_app

if TYPE_CHECKING:
    import argparse
    from types import ModuleType

__all__ = ["COMMANDS", "EXIT_CONFIG", "EXIT_FINDINGS", "EXIT_OK", "main", "run_app"]


class Command(NamedTuple):
    module: str
    help: str
    order: int


_TABLE = [
    ("validate", "validate", "check a cluster file and print a summary or its errors"),
    ("nodes", "nodes", "connect to every node over SSH and check its identity (hostname -I)"),
    (
        "check",
        "check",
        "check the NPU network of every node (hccn_tool, npu-smi; --ping for peers)",
    ),
    ("ranktable", "ranktable", "generate, lint, diff and push the LLMDataDist ranktable"),
    (
        "doctor",
        "doctor",
        "catch before launch what real PD deployments get wrong (the field's rules)",
    ),
    (
        "containers",
        "containers",
        "the serving container of every node: up, status (mounts, devices, versions), down",
    ),
    ("launch", "launch", "start prefill, decode and proxy on their nodes (detached)"),
    ("status", "status", "state, startup stage and known errors of every process"),
    ("stop", "stop", "stop what pdtui started (TERM, then KILL after --grace)"),
    ("logs", "logs", "print (and follow) a process's log"),
    (
        "diagnose",
        "diagnose",
        "read saved logs offline (vLLM, CANN plog, proxy): stages, known failures, fixes",
    ),
    ("bundle", "bundle", "one archive for an issue: versions, logs, plogs, diagnosis, masked"),
    ("prompt", "prompt", "send one prompt to the PD proxy and show TTFT, tok/s and token counts"),
    ("verify", "verify", "run the whole runbook (check, ranktable, launch, prompt) and report"),
    ("import", "import_", "read runbook-style launch scripts into a cluster file"),
    ("sim", "sim", "run a simulated cluster of fake NPU nodes over real SSH"),
    ("demo", "demo", "start a simulated 1P1D cluster and open the app on it"),
    ("serve", "serve", "serve the app in a browser (textual-serve), on 127.0.0.1 by default"),
]

COMMANDS: dict[str, Command] = {
    name: Command(f"pdtui.cli.{module}", text, order)
    for order, (name, module, text) in enumerate(_TABLE)
}
"""Command name -> (module, one-line help, place in ``pdtui --help``)."""


def command_module(name: str) -> ModuleType:
    """Import the module of command ``name`` (it has ``add_args`` and ``run``)."""
    import importlib

    return importlib.import_module(COMMANDS[name].module)


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``pdtui``: every command is listed, only ``chosen`` gets its arguments."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="pdtui",
        usage="pdtui [CLUSTER]  |  pdtui COMMAND [ARGS...]",
        description="Bring up and verify prefill-decode disaggregated vLLM-Ascend serving.",
        epilog="Run 'pdtui COMMAND --help' for a command's options. "
        "'pdtui demo' starts a simulated cluster and opens the app on it.",
    )
    parser.add_argument("--version", action="version", version=f"pdtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in sorted(COMMANDS.items(), key=lambda item: item[1].order):
        sp = sub.add_parser(name, help=cmd.help, description=cmd.help, prog=f"pdtui {name}")
        if name == chosen:
            command_module(name).add_args(sp)
    return parser


def _chosen(args: Sequence[str]) -> str | None:
    # pdtui's own options take no values, so the first word is the command.
    return next((a for a in args if not a.startswith("-")), None)


def _run(name: str, ns: argparse.Namespace) -> int:
    try:
        code: int = command_module(name).run(ns)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pdtui check ... | head`: the reader left, nothing to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # without argparse
        print(f"pdtui {__version__}")
        return EXIT_OK
    chosen = _chosen(args)
    if chosen is not None and chosen not in COMMANDS and args[0] == chosen:
        if len(args) > 1:
            err(f"pdtui: unknown command {args[0]!r}; see 'pdtui --help'")
            return EXIT_CONFIG
        return run_app(args[0])
    parser = build_parser(chosen if chosen in COMMANDS else None)
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if ns.command is None:
        return run_app(None)
    return _run(ns.command, ns)
