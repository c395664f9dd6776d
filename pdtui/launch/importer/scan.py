"""Reading one script: variables, exports, ``cd``, and the commands pdtui imports."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from pdtui.launch.importer.shell import Command, Word, tokenize
from pdtui.launch.importer.values import is_flag, parse_flags

_ASSIGN_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
_WRAPPERS = {"nohup", "exec", "command", "time"}


@dataclass
class Launch:
    """A ``vllm serve`` or proxy command, collected before its arguments are parsed."""

    kind: str  # "serve" | "proxy"
    file: str
    line: int
    end_line: int
    head: list[str]
    args: list[str]
    env: dict[str, str]
    variables: dict[str, str]
    prefix_env: dict[str, str] = field(default_factory=dict)
    file_has_serve: bool = False


@dataclass
class Gen:
    file: str
    line: int
    directory: str | None
    ips: list[str]
    npus: int | None
    nic: str | None
    prefill: int | None
    decode: int | None
    local_ids: str | None



def _basename(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1]


def scan_file(
    file: str, text: str, warnings: list[str]
) -> tuple[list[Launch], list[Gen]]:
    variables: dict[str, str] = {}
    exports: dict[str, str] = {}
    cwd: str | None = None
    launches: list[Launch] = []
    gens: list[Gen] = []
    prev: Command | None = None
    prev_launch: Launch | None = None
    unresolved_seen: set[str] = set()

    def expand(word: Word) -> str:
        missing: list[str] = []
        value = word.expand(variables, missing)
        for kind, text in word.parts:
            if kind == "raw" and text[1:].isdigit() and text not in unresolved_seen:
                unresolved_seen.add(text)
                warnings.append(
                    f"{file}: line {word.line}: {text} is a script argument (a template like"
                    " run_dp_template.sh); kept as text"
                )
        for name in missing:
            if name not in unresolved_seen:
                unresolved_seen.add(name)
                warnings.append(
                    f"{file}: line {word.line}: ${name} is not set in the script; kept as text"
                )
        return value

    for cmd in tokenize(text):
        words = [expand(w) for w in cmd.words]
        if prev_launch is not None and prev is not None and is_flag(words[0]):
            what = "vllm" if prev_launch.kind == "serve" else "the proxy"
            warnings.append(
                f"{file}: line {cmd.line}: {words[0].split('=')[0]!r} starts a new command"
                f" because line {prev.end_line} has no trailing backslash; the flag never"
                f" reaches {what} (imported as part of the command)"
            )
            prev_launch.args.extend(words)
            prev_launch.end_line = cmd.end_line
            prev = cmd
            continue
        prev = cmd
        prev_launch = None
        prefix_env: dict[str, str] = {}
        while words and _ASSIGN_RE.match(words[0]):
            m = _ASSIGN_RE.match(words[0])
            assert m is not None
            prefix_env[m.group(1)] = m.group(2)
            words = words[1:]
        if not words:  # plain assignments
            for k, v in prefix_env.items():
                variables[k] = v
                if k in exports:
                    exports[k] = v
            continue
        while len(words) > 1 and words[0] in _WRAPPERS:
            words = words[1:]
        head = _basename(words[0])
        if head == "export":
            for w in words[1:]:
                if w.startswith("-"):
                    continue
                m = _ASSIGN_RE.match(w)
                if m:
                    variables[m.group(1)] = m.group(2)
                    exports[m.group(1)] = m.group(2)
                elif w in variables:
                    exports[w] = variables[w]
            continue
        if head == "unset":
            for w in words[1:]:
                variables.pop(w, None)
                exports.pop(w, None)
            continue
        if head == "cd" and len(words) > 1:
            target = words[1]
            cwd = target if cwd is None or target.startswith("/") else posixpath.join(
                cwd, target
            )
            continue
        gen_at = next(
            (i for i, w in enumerate(words[:3]) if _basename(w) == "gen_ranktable.sh"), None
        )
        if gen_at is not None:
            gens.append(_parse_gen(file, cmd.line, cwd, words[gen_at], words[gen_at + 1 :]))
            continue
        env = {**exports, **prefix_env}
        if head == "vllm" and len(words) > 1 and words[1] == "serve":
            prev_launch = Launch(
                "serve", file, cmd.line, cmd.end_line, words[:2], words[2:], env,
                {**variables, **prefix_env}, prefix_env,
            )
            launches.append(prev_launch)
            continue
        if head.startswith("python") and len(words) > 1:
            script = _basename(words[1])
            if script.endswith(".py") and "proxy" in script:
                prev_launch = Launch(
                    "proxy", file, cmd.line, cmd.end_line, words[:2], words[2:], env,
                    {**variables, **prefix_env}, prefix_env,
                )
                launches.append(prev_launch)
                continue
    has_serve = any(launch.kind == "serve" for launch in launches)
    for launch in launches:
        launch.file_has_serve = has_serve
    return launches, gens


def _parse_gen(
    file: str, line: int, cwd: str | None, script: str, args: list[str]
) -> Gen:
    directory = cwd
    script_dir = posixpath.dirname(script)
    if script_dir:
        directory = script_dir if directory is None or script_dir.startswith("/") else (
            posixpath.join(directory, script_dir)
        )
    _, flags = parse_flags(args)
    values = {k: v for k, v in flags}

    def one(key: str) -> str | None:
        got = values.get(key)
        return got[0] if got else None

    def num(key: str) -> int | None:
        got = one(key)
        return int(got) if got is not None and got.isdigit() else None

    return Gen(
        file=file,
        line=line,
        directory=directory,
        ips=values.get("ips", []),
        npus=num("npus-per-node"),
        nic=one("network-card-name"),
        prefill=num("prefill-device-cnt"),
        decode=num("decode-device-cnt"),
        local_ids=one("local-device-ids"),
    )
