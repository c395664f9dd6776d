"""Command line of the fake ``vllm``: ``serve`` flags as vLLM 0.11 accepts them.

Flags are a fixed allowlist (the ones the runbook and the samples use plus the common
``vllm serve`` flags: `VALUE_FLAGS`, `BOOL_FLAGS`); ``_`` in a flag name counts as ``-`` (vLLM's
FlexibleArgumentParser does this) and ``--no-X`` is accepted for each boolean X. Anything else is
a `UsageError` (exit 2, ``vllm serve: error: unrecognized arguments: ...``); a JSON flag whose
value is not JSON gives ``argument --X: invalid loads value: '...'``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

VERSION = "0.11.0"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"

# --------------------------------------------------------------------------- arguments

INT_FLAGS = {
    "port",
    "max-model-len",
    "seed",
    "tensor-parallel-size",
    "pipeline-parallel-size",
    "data-parallel-size",
    "data-parallel-size-local",
    "data-parallel-rank",
    "data-parallel-start-rank",
    "data-parallel-rpc-port",
    "max-num-seqs",
    "max-num-batched-tokens",
    "block-size",
    "api-server-count",
}
JSON_FLAGS = {
    "kv-transfer-config",
    "additional-config",
    "compilation-config",
    "speculative-config",
    "hf-overrides",
    "override-generation-config",
    "limit-mm-per-prompt",
    "kv-events-config",
}
NARGS_FLAGS = {"served-model-name", "lora-modules", "allowed-origins", "middleware"}
VALUE_FLAGS = (
    {
        "host",
        "model",
        "tokenizer",
        "revision",
        "tokenizer-revision",
        "download-dir",
        "load-format",
        "dtype",
        "kv-cache-dtype",
        "quantization",
        "data-parallel-address",
        "data-parallel-backend",
        "distributed-executor-backend",
        "gpu-memory-utilization",
        "swap-space",
        "cpu-offload-gb",
        "num-gpu-blocks-override",
        "max-logprobs",
        "max-seq-len-to-capture",
        "api-key",
        "uvicorn-log-level",
        "chat-template",
        "tool-call-parser",
        "reasoning-parser",
        "generation-config",
        "root-path",
        "long-prefill-token-threshold",
        "max-num-partial-prefills",
        "scheduling-policy",
        "scheduler-cls",
        "task",
        "runner",
        "config",
        "max-lora-rank",
        "max-loras",
        "logprobs-mode",
        "ssl-keyfile",
        "ssl-certfile",
        "response-role",
        "tokenizer-mode",
        "code-revision",
        "max-parallel-loading-workers",
    }
    | INT_FLAGS
    | JSON_FLAGS
    | NARGS_FLAGS
)
BOOL_FLAGS = {
    "trust-remote-code",
    "enable-expert-parallel",
    "enable-prefix-caching",
    "enforce-eager",
    "enable-chunked-prefill",
    "disable-log-requests",
    "enable-log-requests",
    "disable-log-stats",
    "disable-custom-all-reduce",
    "async-scheduling",
    "headless",
    "enable-auto-tool-choice",
    "disable-uvicorn-access-log",
    "enable-prompt-tokens-details",
    "enable-sleep-mode",
    "enable-lora",
    "data-parallel-hybrid-lb",
    "data-parallel-external-lb",
    "disable-fastapi-docs",
    "enable-server-load-tracking",
    "enable-force-include-usage",
    "enable-dbo",
    "enable-eplb",
    "skip-tokenizer-init",
    "disable-sliding-window",
    "disable-cascade-attn",
    "enable-log-outputs",
    "enable-request-id-headers",
}
SHORT_FLAGS = {
    "-tp": "tensor-parallel-size",
    "-pp": "pipeline-parallel-size",
    "-dp": "data-parallel-size",
    "-q": "quantization",
    "-O": "compilation-config",
}
USAGE = "usage: vllm serve [model_tag] [options]"


class UsageError(Exception):
    """Bad command line: argparse-style message, exit 2."""


@dataclass
class ServeArgs:
    model: str
    opts: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.opts.get(name, default)

    def int_(self, name: str, default: int) -> int:
        v = self.opts.get(name)
        return default if v is None else int(v)

    def float_(self, name: str, default: float) -> float:
        v = self.opts.get(name)
        return default if v is None else float(v)

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.opts.get(name)
        return default if v is None else bool(v)


def _convert(name: str, value: str) -> Any:
    if name in JSON_FLAGS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise UsageError(f"argument --{name}: invalid loads value: {value!r}") from None
    if name in INT_FLAGS:
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"argument --{name}: invalid int value: {value!r}") from None
    if name == "gpu-memory-utilization":
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"argument --{name}: invalid float value: {value!r}") from None
    return value


def parse_serve_args(argv: list[str]) -> ServeArgs:
    """Parse the arguments after ``serve``."""
    return _Parser(argv).parse()


def _is_short(tok: str) -> bool:
    return tok in SHORT_FLAGS or (tok.startswith("-O") and len(tok) > 2 and tok[2:].isdigit())


class _Parser:
    """One pass over the ``serve`` arguments, argparse-style."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.i = 0
        self.positional: list[str] = []
        self.opts: dict[str, Any] = {}
        self.unknown: list[str] = []

    def _more(self) -> bool:
        return self.i < len(self.argv)

    def _take(self) -> str:
        self.i += 1
        return self.argv[self.i - 1]

    def parse(self) -> ServeArgs:
        while self._more():
            tok = self._take()
            if _is_short(tok):
                self._short(tok)
            elif not tok.startswith("--") or tok == "--":
                self.positional.append(tok)
            else:
                self._long(tok)
        model = self.opts.pop("model", None)
        if self.positional:
            model = self.positional.pop(0)
        unknown = self.unknown + self.positional
        if unknown:
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)}")
        return ServeArgs(model=model or DEFAULT_MODEL, opts=self.opts)

    def _short(self, tok: str) -> None:
        name = SHORT_FLAGS.get(tok, "compilation-config")
        if tok.startswith("-O") and tok != "-O":
            self.opts[name] = int(tok[2:])
            return
        if not self._more():
            raise UsageError(f"argument {tok}: expected one argument")
        self.opts[name] = _convert(name, self._take())

    def _long(self, tok: str) -> None:
        raw, eq, inline = tok[2:].partition("=")
        name = raw.replace("_", "-")
        if name in BOOL_FLAGS or (name.startswith("no-") and name[3:] in BOOL_FLAGS):
            if eq:
                raise UsageError(f"argument --{raw}: ignored explicit argument {inline!r}")
            key = name[3:] if name.startswith("no-") else name
            self.opts[key] = not name.startswith("no-")
        elif name not in VALUE_FLAGS:
            self.unknown.append(tok)
            if not eq and self._more() and not self.argv[self.i].startswith("-"):
                self.unknown.append(self._take())
        elif eq:
            self.opts[name] = [inline] if name in NARGS_FLAGS else _convert(name, inline)
        else:
            values = self._values(raw, name)
            self.opts[name] = values if name in NARGS_FLAGS else _convert(name, values[0])

    def _values(self, raw: str, name: str) -> list[str]:
        """The values after ``--name`` (several for a NARGS flag), up to the next flag."""
        values: list[str] = []
        while self._more() and not (
            self.argv[self.i].startswith("--") or self.argv[self.i] in SHORT_FLAGS
        ):
            values.append(self._take())
            if name not in NARGS_FLAGS:
                break
        if not values:
            want = "at least one argument" if name in NARGS_FLAGS else "one argument"
            raise UsageError(f"argument --{raw}: expected {want}")
        return values


def parse_command(argv: list[str]) -> ServeArgs | int:
    """The ``serve`` arguments, or the exit code after ``--version`` or a usage error."""
    if argv and argv[0] in ("--version", "-v"):
        print(VERSION)
        return 0
    if not argv or argv[0] != "serve":
        print(
            "usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...",
            file=sys.stderr,
        )
        cmd = argv[0] if argv else ""
        if cmd and cmd not in ("-h", "--help"):
            print(
                f"vllm: error: argument subparser: invalid choice: '{cmd}' (choose from "
                "'chat', 'complete', 'serve', 'bench', 'collect-env', 'run-batch')",
                file=sys.stderr,
            )
        return 2
    try:
        return parse_serve_args(argv[1:])
    except UsageError as e:
        print(USAGE, file=sys.stderr)
        print(f"vllm serve: error: {e}", file=sys.stderr)
        return 2
