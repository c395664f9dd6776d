"""Reading one script: variables, exports, ``cd``, and the commands pdtui imports."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from pdtui.launch.importer.docker import CLIS, Run, exec_script, parse_run
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


@dataclass
class Boxes:
    """The container commands of the scripts: ``CLI run`` and the names exec'd into."""

    runs: list[Run] = field(default_factory=list)
    execs: list[str] = field(default_factory=list)


def scan_file(
    file: str, text: str, warnings: list[str], boxes: Boxes | None = None
) -> tuple[list[Launch], list[Gen]]:
    """The ``vllm serve``, proxy and ``gen_ranktable.sh`` commands of one script, also inside
    ``docker exec NAME bash -c '...'``; ``boxes`` collects the container commands."""
    scanner = _Scanner(file, warnings, boxes=boxes if boxes is not None else Boxes())
    for cmd in tokenize(text):
        scanner.command(cmd)
    has_serve = any(launch.kind == "serve" for launch in scanner.launches)
    for launch in scanner.launches:
        launch.file_has_serve = has_serve
    return scanner.launches, scanner.gens


@dataclass
class _Scanner:
    """Walks a script's commands, keeping the shell variables, exports and directory."""

    file: str
    warnings: list[str]
    variables: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    launches: list[Launch] = field(default_factory=list)
    gens: list[Gen] = field(default_factory=list)
    prev: Command | None = None
    prev_launch: Launch | None = None
    reported: set[str] = field(default_factory=set)
    boxes: Boxes = field(default_factory=Boxes)

    def command(self, cmd: Command) -> None:
        words = [self._expand(w) for w in cmd.words]
        if self._continues(cmd, words):
            return
        self.prev = cmd
        self.prev_launch = None
        prefix_env, words = _split_assignments(words)
        if not words:  # plain assignments
            self._assign(prefix_env)
            return
        while len(words) > 1 and words[0] in _WRAPPERS:
            words = words[1:]
        if _basename(words[0]) in CLIS and len(words) > 1 and words[1] in {"run", "exec"}:
            self._container(cmd, words)
            return
        builtin = _BUILTINS.get(_basename(words[0]))
        if builtin is not None:
            builtin(self, words[1:])
        elif not self._gen(cmd, words):
            self._launch(cmd, words, prefix_env)

    def _expand(self, word: Word) -> str:
        missing: list[str] = []
        value = word.expand(self.variables, missing)
        for kind, text in word.parts:
            if kind == "raw" and text[1:].isdigit() and self._first_time(text):
                self.warnings.append(
                    f"{self.file}: line {word.line}: {text} is a script argument (a template"
                    " like run_dp_template.sh); kept as text"
                )
        for name in missing:
            if self._first_time(name):
                self.warnings.append(
                    f"{self.file}: line {word.line}: ${name} is not set in the script; kept as text"
                )
        return value

    def _first_time(self, key: str) -> bool:
        if key in self.reported:
            return False
        self.reported.add(key)
        return True

    def _continues(self, cmd: Command, words: list[str]) -> bool:
        """A flag line after a launch line that lacks its trailing backslash: the flags are
        added to that launch, with a warning."""
        launch, prev = self.prev_launch, self.prev
        if launch is None or prev is None or not is_flag(words[0]):
            return False
        what = "vllm" if launch.kind == "serve" else "the proxy"
        self.warnings.append(
            f"{self.file}: line {cmd.line}: {words[0].split('=')[0]!r} starts a new command"
            f" because line {prev.end_line} has no trailing backslash; the flag never"
            f" reaches {what} (imported as part of the command)"
        )
        launch.args.extend(words)
        launch.end_line = cmd.end_line
        self.prev = cmd
        return True

    def _assign(self, assignments: dict[str, str]) -> None:
        for k, v in assignments.items():
            self.variables[k] = v
            if k in self.exports:
                self.exports[k] = v

    def _export(self, args: list[str]) -> None:
        for w in args:
            if w.startswith("-"):
                continue
            m = _ASSIGN_RE.match(w)
            if m:
                self.variables[m.group(1)] = m.group(2)
                self.exports[m.group(1)] = m.group(2)
            elif w in self.variables:
                self.exports[w] = self.variables[w]

    def _unset(self, args: list[str]) -> None:
        for w in args:
            self.variables.pop(w, None)
            self.exports.pop(w, None)

    def _cd(self, args: list[str]) -> None:
        if not args:
            return
        target = args[0]
        if self.cwd is None or target.startswith("/"):
            self.cwd = target
        else:
            self.cwd = posixpath.join(self.cwd, target)

    def _container(self, cmd: Command, words: list[str]) -> None:
        """``CLI run``: the container; ``CLI exec NAME bash -c SCRIPT``: SCRIPT's commands,
        read as if they were in the file (at the exec's line)."""
        if words[1] == "run":
            self.boxes.runs.append(parse_run(self.file, cmd.line, words))
            return
        got = exec_script(words)
        if got is None:
            return
        name, script = got
        self.boxes.execs.append(name)
        for inner in tokenize(script):
            shift = cmd.line - 1
            inner.line, inner.end_line = inner.line + shift, inner.end_line + shift
            self.command(inner)

    def _gen(self, cmd: Command, words: list[str]) -> bool:
        """``[bash] [path/]gen_ranktable.sh ARGS``."""
        at = next((i for i, w in enumerate(words[:3]) if _basename(w) == "gen_ranktable.sh"), None)
        if at is None:
            return False
        self.gens.append(_parse_gen(self.file, cmd.line, self.cwd, words[at], words[at + 1 :]))
        return True

    def _launch(self, cmd: Command, words: list[str], prefix_env: dict[str, str]) -> None:
        kind = _launch_kind(words)
        if kind is None:
            return
        self.prev_launch = Launch(
            kind,
            self.file,
            cmd.line,
            cmd.end_line,
            words[:2],
            words[2:],
            {**self.exports, **prefix_env},
            {**self.variables, **prefix_env},
            prefix_env,
        )
        self.launches.append(self.prev_launch)


_BUILTINS = {"export": _Scanner._export, "unset": _Scanner._unset, "cd": _Scanner._cd}


def _split_assignments(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """``K=V`` words before a command (or alone), and the rest."""
    assignments: dict[str, str] = {}
    while words and (m := _ASSIGN_RE.match(words[0])):
        assignments[m.group(1)] = m.group(2)
        words = words[1:]
    return assignments, words


def _launch_kind(words: list[str]) -> str | None:
    """``serve`` for ``vllm serve``, ``proxy`` for ``python ...proxy....py``."""
    if len(words) < 2:
        return None
    head = _basename(words[0])
    if head == "vllm" and words[1] == "serve":
        return "serve"
    script = _basename(words[1])
    if head.startswith("python") and script.endswith(".py") and "proxy" in script:
        return "proxy"
    return None


def _parse_gen(file: str, line: int, cwd: str | None, script: str, args: list[str]) -> Gen:
    directory = cwd
    script_dir = posixpath.dirname(script)
    if script_dir:
        directory = (
            script_dir
            if directory is None or script_dir.startswith("/")
            else (posixpath.join(directory, script_dir))
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
