"""Read runbook-style launch scripts back into a cluster spec.

The scripts are the ones people copy from the vllm-ascend tutorials: ``export K=V`` lines
(plus plain shell variables such as ``nic_name``/``local_ip`` used later as ``$var``), one
``vllm serve MODEL ...`` command spread over ``\\`` continuation lines with single-quoted JSON
arguments that span lines, the ``load_balance_proxy_server_example.py`` command and
``bash gen_ranktable.sh ...``. This is not a shell: only the constructs those scripts use are
understood, and anything pdtui cannot resolve is kept as text and reported.

Mistakes the runbooks are known for are reported as warnings (one line each, naming the file
and line) and, where the intent is clear, repaired: a flag line after a command line without a
trailing backslash is still imported as part of the command.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pdtui.cluster import (
    ClusterError,
    ClusterSpec,
    FlagValue,
    Role,
    format_devices,
    parse_devices,
    parse_spec,
)
from pdtui.launch.plan import DP_FLAGS, VISIBLE_DEVICES, compact_json

RANKTABLE_ENV = "DISAGGREGATED_PREFILL_RANK_TABLE_PATH"
_IP_ENV = ("HCCL_IF_IP", "VLLM_HOST_IP")
_IP_VARS = ("local_ip", "LOCAL_IP", "node_ip", "NODE_IP")
_NIC_ENV = ("GLOO_SOCKET_IFNAME", "HCCL_SOCKET_IFNAME", "TP_SOCKET_IFNAME")
_NIC_VARS = ("nic_name", "NIC_NAME")
_WILDCARD_HOSTS = {"0.0.0.0", "localhost", "127.0.0.1", "::", ""}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
_INT_RE = re.compile(r"-?[0-9]+")
_FLOAT_RE = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_RESERVED = {"port", "served-model-name", "kv-transfer-config", "model"}
_PROXY_FLAGS = (
    "host",
    "port",
    "prefiller-hosts",
    "prefiller-ports",
    "decoder-hosts",
    "decoder-ports",
    "max-retries",
    "retry-delay",
    "max-waiting-retries",
    "waiting-retry-interval",
    "workers",
    "log-level",
)
_WRAPPERS = {"nohup", "exec", "command", "time"}

V = TypeVar("V")


@dataclass
class ImportResult:
    spec: ClusterSpec
    warnings: list[str] = field(default_factory=list)


class ScriptImportError(ClusterError):
    """The scripts could not be turned into a cluster (e.g. no ``vllm serve`` at all)."""


# ---------------------------------------------------------------------------
# A small tokenizer for the bash these scripts use.

Part = tuple[str, str]  # ("lit", text) | ("var", name) | ("raw", source text kept as is)


@dataclass
class _Word:
    parts: list[Part]
    line: int

    def expand(self, variables: dict[str, str], unresolved: list[str] | None = None) -> str:
        out: list[str] = []
        for kind, text in self.parts:
            if kind == "var":
                name = text.strip("{}")
                if name in variables:
                    out.append(variables[name])
                else:
                    out.append("$" + text)
                    if unresolved is not None:
                        unresolved.append(name)
            else:
                out.append(text)
        return "".join(out)


@dataclass
class _Command:
    words: list[_Word]
    line: int
    end_line: int


class _Tokenizer:
    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n")
        self.i = 0
        self.line = 1
        self.commands: list[_Command] = []
        self.words: list[_Word] = []
        self.parts: list[Part] | None = None
        self.word_line = 1
        self.drop_next = False

    # word and command boundaries
    def _start(self) -> list[Part]:
        if self.parts is None:
            self.parts = []
            self.word_line = self.line
        return self.parts

    def _lit(self, s: str) -> None:
        parts = self._start()
        if parts and parts[-1][0] == "lit":
            parts[-1] = ("lit", parts[-1][1] + s)
        else:
            parts.append(("lit", s))

    def _end_word(self) -> None:
        if self.parts is not None:
            if self.drop_next:
                self.drop_next = False
            else:
                self.words.append(_Word(self.parts, self.word_line))
            self.parts = None

    def _end_command(self) -> None:
        self._end_word()
        self.drop_next = False
        if self.words:
            self.commands.append(_Command(self.words, self.words[0].line, self.line))
        self.words = []

    def run(self) -> list[_Command]:
        t = self.text
        n = len(t)
        while self.i < n:
            c = t[self.i]
            if c == "\\":
                if self.i + 1 < n and t[self.i + 1] == "\n":
                    self.i += 2
                    self.line += 1
                    continue
                self._lit(t[self.i + 1] if self.i + 1 < n else "\\")
                self.i += 2
            elif c == "\n":
                self._end_command()
                self.line += 1
                self.i += 1
            elif c in " \t\r":
                self._end_word()
                self.i += 1
            elif c == "#" and self.parts is None:
                end = t.find("\n", self.i)
                self.i = n if end < 0 else end
            elif c in ";&|":
                self._end_command()
                self.i += 1
                while self.i < n and t[self.i] in "&|;":
                    self.i += 1
            elif c in "<>":
                self._redirect()
            elif c == "'":
                end = t.find("'", self.i + 1)
                end = n if end < 0 else end
                seg = t[self.i + 1 : end]
                self._lit(seg)
                self.line += seg.count("\n")
                self.i = end + 1
            elif c == '"':
                self._double_quoted()
            elif c == "$":
                self._dollar()
            elif c == "`":
                end = t.find("`", self.i + 1)
                end = n if end < 0 else end
                seg = t[self.i : end + 1]
                self._start().append(("raw", seg))
                self.line += seg.count("\n")
                self.i = end + 1
            else:
                self._lit(c)
                self.i += 1
        self._end_command()
        return self.commands

    def _redirect(self) -> None:
        t = self.text
        parts = self.parts
        if parts is not None and len(parts) == 1 and parts[0][0] == "lit" and (
            parts[0][1].isdigit()
        ):
            self.parts = None  # the fd number of "2>"
        else:
            self._end_word()
        while self.i < len(t) and t[self.i] in "<>":
            self.i += 1
        if self.i < len(t) and t[self.i] == "&":
            self.i += 1
            while self.i < len(t) and (t[self.i].isdigit() or t[self.i] == "-"):
                self.i += 1
            return
        self.drop_next = True

    def _double_quoted(self) -> None:
        t = self.text
        self._start()
        self.i += 1
        while self.i < len(t) and t[self.i] != '"':
            c = t[self.i]
            if c == "\\" and self.i + 1 < len(t) and t[self.i + 1] in '$`"\\\n':
                if t[self.i + 1] == "\n":
                    self.line += 1
                else:
                    self._lit(t[self.i + 1])
                self.i += 2
            elif c == "$":
                self._dollar()
            else:
                if c == "\n":
                    self.line += 1
                self._lit(c)
                self.i += 1
        self.i += 1

    def _dollar(self) -> None:
        t = self.text
        i = self.i
        nxt = t[i + 1] if i + 1 < len(t) else ""
        parts = self._start()
        if nxt == "{":
            end = t.find("}", i)
            end = len(t) - 1 if end < 0 else end
            inner = t[i + 2 : end]
            if _NAME_RE.fullmatch(inner):
                parts.append(("var", "{" + inner + "}"))
            else:
                parts.append(("raw", t[i : end + 1]))
            self.i = end + 1
        elif nxt == "(":
            depth = 0
            j = i + 1
            while j < len(t):
                if t[j] == "(":
                    depth += 1
                elif t[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            seg = t[i : j + 1]
            parts.append(("raw", seg))
            self.line += seg.count("\n")
            self.i = j + 1
        elif m := _NAME_RE.match(t, i + 1):
            parts.append(("var", m.group(0)))
            self.i = m.end()
        elif nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            parts.append(("raw", t[i : i + 2]))
            self.i = i + 2
        else:
            self._lit("$")
            self.i += 1


def _tokenize(text: str) -> list[_Command]:
    return _Tokenizer(text).run()


# ---------------------------------------------------------------------------
# Values.


def _has_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_none(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_none(v) for v in value)
    return False


def typed_value(text: str) -> FlagValue:
    """A flag value as TOML would hold it, only when it prints back to the same text."""
    if _INT_RE.fullmatch(text) and str(int(text)) == text:
        return int(text)
    if _FLOAT_RE.fullmatch(text) and str(float(text)) == text:
        return float(text)
    if text[:1] in "{[":
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, (dict, list)) and not _has_none(value):
            return value
    return text


def _is_flag(word: str) -> bool:
    return (
        word.startswith("-")
        and word != "-"
        and not _INT_RE.fullmatch(word)
        and not _FLOAT_RE.fullmatch(word)
    )


def _parse_flags(args: Sequence[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """``(positionals, [(flag, values)])``; ``--k=v`` is one value, ``--k a b`` two."""
    positional: list[str] = []
    flags: list[tuple[str, list[str]]] = []
    for word in args:
        if _is_flag(word):
            name, eq, value = word.lstrip("-").partition("=")
            flags.append((name, [value] if eq else []))
        elif flags:
            flags[-1][1].append(word)
        else:
            positional.append(word)
    return positional, flags


def _table_like(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _toml_stable(value: Any) -> bool:
    """Whether a TOML file keeps this value's key order (tables are written after plain keys)."""
    if isinstance(value, list):
        return all(_toml_stable(v) for v in value)
    if not isinstance(value, dict):
        return True
    seen_table = False
    for v in value.values():
        if _table_like(v):
            seen_table = True
            if not _toml_stable(v):
                return False
        elif seen_table:
            return False
    return True


def _stabilize(table: dict[str, FlagValue]) -> dict[str, FlagValue]:
    """Keep a table's flag order through ``dump_spec``: a table-valued flag that TOML would
    move (or reorder inside) is kept as its compact JSON text, which renders the same argv."""
    out = dict(table)
    keys = list(out)
    later_plain = False
    for key in reversed(keys):
        value = out[key]
        if _table_like(value) and (later_plain or not _toml_stable(value)):
            out[key] = compact_json(value)
        if not _table_like(out[key]):
            later_plain = True
    return out


def _vkey(value: Any) -> str:
    return json.dumps([type(value).__name__, value])


def _split_common(
    items: list[list[tuple[str, V]]],
) -> tuple[dict[str, V], list[dict[str, V]]]:
    """Shared keys -> one table, the rest per item, keeping every item's resolved order.

    Resolution is ``{**shared, **own}``, so only a common *prefix* of keys can be shared;
    a shared key whose value differs keeps the most common value and is overridden per item.
    """
    if not items:
        return {}, []
    maps = [dict(it) for it in items]
    prefix: list[str] = []
    for col in zip(*([k for k, _ in it] for it in items), strict=False):
        if any(k != col[0] for k in col):
            break
        prefix.append(col[0])
    while prefix and len({_vkey(m[prefix[-1]]) for m in maps}) > 1:
        prefix.pop()
    shared: dict[str, V] = {}
    for key in prefix:
        counts = Counter(_vkey(m[key]) for m in maps)
        best = max(counts.values())
        shared[key] = next(m[key] for m in maps if counts[_vkey(m[key])] == best)
    own = [
        {k: v for k, v in it if not (k in shared and _vkey(shared[k]) == _vkey(v))}
        for it in items
    ]
    return shared, own


# ---------------------------------------------------------------------------
# What the scripts contain.


@dataclass
class _Launch:
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
class _Gen:
    file: str
    line: int
    directory: str | None
    ips: list[str]
    npus: int | None
    nic: str | None
    prefill: int | None
    decode: int | None
    local_ids: str | None


@dataclass
class _Proc:
    file: str
    line: int
    vllm: str
    model: str | None
    served: str | None
    env: dict[str, str]
    flags: list[tuple[str, FlagValue]]
    port: int
    kv: dict[str, Any]
    role: Role
    ip: str | None
    nic: str | None
    devices: list[int] | None
    dp: tuple[int, int, str, int] | None  # size, rank, address, rpc port
    order: int = 0


def _basename(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1]


def _scan_file(
    file: str, text: str, warnings: list[str]
) -> tuple[list[_Launch], list[_Gen]]:
    variables: dict[str, str] = {}
    exports: dict[str, str] = {}
    cwd: str | None = None
    launches: list[_Launch] = []
    gens: list[_Gen] = []
    prev: _Command | None = None
    prev_launch: _Launch | None = None
    unresolved_seen: set[str] = set()

    def expand(word: _Word) -> str:
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

    for cmd in _tokenize(text):
        words = [expand(w) for w in cmd.words]
        if prev_launch is not None and prev is not None and _is_flag(words[0]):
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
            prev_launch = _Launch(
                "serve", file, cmd.line, cmd.end_line, words[:2], words[2:], env,
                {**variables, **prefix_env}, prefix_env,
            )
            launches.append(prev_launch)
            continue
        if head.startswith("python") and len(words) > 1:
            script = _basename(words[1])
            if script.endswith(".py") and "proxy" in script:
                prev_launch = _Launch(
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
) -> _Gen:
    directory = cwd
    script_dir = posixpath.dirname(script)
    if script_dir:
        directory = script_dir if directory is None or script_dir.startswith("/") else (
            posixpath.join(directory, script_dir)
        )
    _, flags = _parse_flags(args)
    values = {k: v for k, v in flags}

    def one(key: str) -> str | None:
        got = values.get(key)
        return got[0] if got else None

    def num(key: str) -> int | None:
        got = one(key)
        return int(got) if got is not None and got.isdigit() else None

    return _Gen(
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


def _first(env: dict[str, str], names: Sequence[str]) -> str | None:
    for n in names:
        if env.get(n):
            return env[n]
    return None


def _parse_serve(launch: _Launch, warnings: list[str]) -> _Proc:
    where = f"{launch.file}: line {launch.line}"
    positional, raw_flags = _parse_flags(launch.args)
    model = positional[0] if positional else None
    for extra in positional[1:]:
        warnings.append(f"{where}: unexpected argument {extra!r} to vllm serve; ignored")
    flags: list[tuple[str, FlagValue]] = []
    port: int | None = None
    served: str | None = None
    kv: dict[str, Any] = {}
    dp_values: dict[str, str] = {}
    for raw_name, values in raw_flags:
        name = raw_name.replace("_", "-")  # vllm accepts --max_model_len as --max-model-len
        if len(values) > 1:
            warnings.append(
                f"{where}: --{name} has {len(values)} values {values!r}; only the first is kept"
            )
        text = values[0] if values else None
        if name == "port" and text is not None and text.isdigit():
            port = int(text)
        elif name == "served-model-name" and text is not None:
            served = text
        elif name == "model" and text is not None:
            model = text
        elif name == "kv-transfer-config" and text is not None:
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                warnings.append(f"{where}: --kv-transfer-config is not valid JSON ({exc})")
                parsed = None
            if isinstance(parsed, dict):
                kv = parsed
        elif name in DP_FLAGS and text is not None:
            dp_values[name] = text
        elif name in _RESERVED:
            warnings.append(f"{where}: --{name} without a usable value; ignored")
        else:
            flags.append((name, True if text is None else typed_value(text)))
    if port is None:
        warnings.append(f"{where}: no --port; vllm's default 8000 assumed")
        port = 8000
    env = dict(launch.env)
    kv_role = kv.get("kv_role")
    role: Role
    if kv_role == "kv_producer":
        role = "prefill"
    elif kv_role == "kv_consumer":
        role = "decode"
    else:
        role = "decode" if "decode" in launch.file.lower() else "prefill"
        warnings.append(
            f"{where}: kv_role is {kv_role!r}, not kv_producer/kv_consumer; taken as {role}"
            " from the file name"
        )
    dp: tuple[int, int, str, int] | None = None
    if "data-parallel-rank" in dp_values:
        try:
            dp = (
                int(dp_values.get("data-parallel-size", "1")),
                int(dp_values["data-parallel-rank"]),
                dp_values.get("data-parallel-address", ""),
                int(dp_values.get("data-parallel-rpc-port", "12345")),
            )
        except ValueError:
            warnings.append(f"{where}: data-parallel flags are not numbers; kept as flags")
    if dp is None:
        flags.extend((k, typed_value(v)) for k, v in dp_values.items())
    devices: list[int] | None = None
    visible = env.get(VISIBLE_DEVICES)
    if visible is not None:
        try:
            devices = parse_devices(visible)
        except ValueError:
            warnings.append(
                f"{where}: {VISIBLE_DEVICES}={visible!r} is not a device list; kept as is"
            )
    ip = _first(env, _IP_ENV) or _first(launch.variables, _IP_VARS)
    nic = _first(env, _NIC_ENV) or _first(launch.variables, _NIC_VARS)
    return _Proc(
        file=launch.file,
        line=launch.line,
        vllm=launch.head[0],
        model=model,
        served=served,
        env=env,
        flags=flags,
        port=port,
        kv=kv,
        role=role,
        ip=ip,
        nic=nic,
        devices=devices,
        dp=dp,
    )


@dataclass
class _Proxy:
    file: str
    line: int
    python: str
    script: str
    host: str
    port: int
    prefill: list[tuple[str, str]]
    decode: list[tuple[str, str]]
    args: dict[str, FlagValue]
    env: dict[str, str]


def _proxy_flag(name: str) -> str:
    if name in _PROXY_FLAGS:
        return name
    matches = [f for f in _PROXY_FLAGS if f.startswith(name)]
    return matches[0] if len(matches) == 1 else name


def _parse_proxy(launch: _Launch, warnings: list[str]) -> _Proxy:
    where = f"{launch.file}: line {launch.line}"
    _, raw_flags = _parse_flags(launch.args)
    values: dict[str, list[str]] = {}
    args: dict[str, FlagValue] = {}
    for name, vals in raw_flags:
        full = _proxy_flag(name)
        if full in _PROXY_FLAGS[:6]:
            values[full] = vals
        elif not vals:
            args[full] = True
        elif len(vals) == 1:
            args[full] = typed_value(vals[0])
        else:
            args[full] = [typed_value(v) for v in vals]
    lists: dict[str, list[tuple[str, str]]] = {}
    for word in ("prefiller", "decoder"):
        hosts = values.get(f"{word}-hosts", [])
        ports = values.get(f"{word}-ports", [])
        if len(hosts) != len(ports):
            warnings.append(
                f"{where}: the proxy gets {len(hosts)} {word} hosts but {len(ports)} {word}"
                f" ports; it stops with 'Number of {word} hosts must match number of {word}"
                " ports'"
            )
        lists[word] = list(zip(hosts, ports, strict=False))
    port_text = (values.get("port") or ["8000"])[0]
    # A proxy-only script's exports are the proxy's; next to vllm serve, only "K=V python".
    env = dict(launch.prefix_env) if launch.file_has_serve else dict(launch.env)
    return _Proxy(
        file=launch.file,
        line=launch.line,
        python=launch.head[0],
        script=launch.head[1],
        host=(values.get("host") or ["localhost"])[0],
        port=int(port_text) if port_text.isdigit() else 8000,
        prefill=lists["prefiller"],
        decode=lists["decoder"],
        args=args,
        env=env,
    )


# ---------------------------------------------------------------------------
# Building the spec.


@dataclass
class _Group:
    procs: list[_Proc]

    @property
    def head(self) -> _Proc:
        return self.procs[0]


def _group(procs: list[_Proc]) -> list[_Group]:
    """Data-parallel ranks of one instance (same node, settings, consecutive rank and port)."""
    groups: list[_Group] = []
    by_key: dict[str, list[_Proc]] = {}
    order: list[str] = []
    for p in procs:
        if p.dp is None:
            key = f"single:{p.order}"
        else:
            env = {k: v for k, v in p.env.items() if k != VISIBLE_DEVICES}
            key = json.dumps(
                [p.ip, p.role, p.dp[0], p.dp[2], p.dp[3], env, p.flags, p.kv, p.model,
                 p.served, p.vllm]
            )
        if key not in by_key:
            by_key[key] = []
            order.append(key)
        by_key[key].append(p)
    for key in order:
        members = sorted(by_key[key], key=lambda p: (p.dp[1] if p.dp else 0, p.port))
        run: list[_Proc] = []
        for p in members:
            if run and p.dp and run[-1].dp and (
                p.dp[1] != run[-1].dp[1] + 1 or p.port != run[-1].port + 1
            ):
                groups.append(_Group(run))
                run = []
            run.append(p)
        groups.append(_Group(run))
    groups.sort(key=lambda g: (g.head.role != "prefill", min(p.order for p in g.procs)))
    return groups


def _fill_ips(procs: list[_Proc], proxy: _Proxy | None, warnings: list[str]) -> None:
    claimed = {(p.ip, p.port) for p in procs if p.ip}
    for p in procs:
        if p.ip:
            continue
        if proxy is not None:
            backends = proxy.prefill if p.role == "prefill" else proxy.decode
            for host, port in backends:
                if port == str(p.port) and (host, p.port) not in claimed:
                    p.ip = host
                    claimed.add((host, p.port))
                    break
        if p.ip:
            warnings.append(
                f"{p.file}: line {p.line}: no HCCL_IF_IP, VLLM_HOST_IP or local_ip; node ip"
                f" {p.ip} taken from the proxy's {p.role} list"
            )
        else:
            p.ip = f"unknown-{p.order}"
            warnings.append(
                f"{p.file}: line {p.line}: no HCCL_IF_IP, VLLM_HOST_IP or local_ip; set the"
                f" node's host by hand (placeholder {p.ip!r})"
            )


def import_scripts(texts: dict[str, str], *, name: str = "imported") -> ImportResult:
    """Turn launch scripts (file name -> text) into a cluster spec plus warnings."""
    warnings: list[str] = []
    launches: list[_Launch] = []
    gens: list[_Gen] = []
    for file, text in texts.items():
        got, got_gens = _scan_file(file, text, warnings)
        launches.extend(got)
        gens.extend(got_gens)

    procs = [_parse_serve(la, warnings) for la in launches if la.kind == "serve"]
    if not procs:
        raise ScriptImportError(["no 'vllm serve' command found in " + ", ".join(texts)])
    for i, p in enumerate(procs):
        p.order = i
    proxies = [_parse_proxy(la, warnings) for la in launches if la.kind == "proxy"]
    for extra in proxies[1:]:
        warnings.append(f"{extra.file}: line {extra.line}: a second proxy command; ignored")
    proxy = proxies[0] if proxies else None
    gen = gens[0] if gens else None
    for extra_gen in gens[1:]:
        warnings.append(
            f"{extra_gen.file}: line {extra_gen.line}: a second gen_ranktable.sh call; ignored"
        )
    _fill_ips(procs, proxy, warnings)

    head = procs[0]
    for p in procs[1:]:
        if (p.model, p.served, p.vllm) != (head.model, head.served, head.vllm):
            warnings.append(
                f"{p.file}: line {p.line}: model {p.model!r} / served name {p.served!r} differs"
                f" from {head.file}'s; {head.file}'s is used"
            )
    model_path = head.model or "MODEL"
    if head.model is None:
        warnings.append(f"{head.file}: line {head.line}: vllm serve has no model argument")

    groups = _group(procs)

    # Nodes, in instance order, named by the role of their first instance.
    nodes: dict[str, dict[str, Any]] = {}
    role_count: Counter[str] = Counter()
    for g in groups:
        ip = g.head.ip
        assert ip is not None
        if ip not in nodes:
            role = g.head.role
            nodes[ip] = {"name": f"{role}-{role_count[role]}", "host": ip, "nic": None}
            role_count[role] += 1
        for p in g.procs:
            if p.nic and nodes[ip]["nic"] is None:
                nodes[ip]["nic"] = p.nic
    if gen is not None and gen.nic:
        for node in nodes.values():
            node["nic"] = node["nic"] or gen.nic
    npus = gen.npus if gen is not None and gen.npus else 16

    # Ranktable.
    rt_values = [p.env[RANKTABLE_ENV] for p in procs if RANKTABLE_ENV in p.env]
    rt_path = rt_values[0] if rt_values else None
    if len(set(rt_values)) > 1:
        warnings.append(f"{RANKTABLE_ENV} differs between the scripts: {sorted(set(rt_values))}")
    if gen is not None and gen.directory is not None:
        generated = posixpath.normpath(posixpath.join(gen.directory, "ranktable.json"))
        if rt_path is not None and not _same_path(generated, rt_path):
            src = next(p for p in procs if RANKTABLE_ENV in p.env)
            warnings.append(
                f"{gen.file}: line {gen.line}: gen_ranktable.sh writes {generated} but"
                f" {src.file} sets {RANKTABLE_ENV}={rt_path}; vllm will not find the"
                " ranktable"
            )
        if rt_path is None:
            rt_path = generated

    # Instances.
    instance_rows: list[dict[str, Any]] = []
    env_items: list[list[tuple[str, str]]] = []
    serve_items: list[list[tuple[str, FlagValue]]] = []
    used: dict[str, set[int]] = {}
    role_count = Counter()
    for g in groups:
        p0 = g.head
        assert p0.ip is not None
        node = nodes[p0.ip]
        env = {k: v for k, v in p0.env.items() if k != VISIBLE_DEVICES or p0.dp is None}
        devices: list[int] | None
        if p0.dp is not None:
            rank_devs = [p.devices for p in g.procs]
            devices = None if any(d is None for d in rank_devs) else [
                d for ds in rank_devs if ds is not None for d in ds
            ]
        else:
            devices = p0.devices
            if devices is not None and set(devices) != set(range(npus)):
                env.pop(VISIBLE_DEVICES, None)
        if devices is None:
            devices = _guess_devices(g, npus, used.setdefault(p0.ip, set()), warnings)
        used.setdefault(p0.ip, set()).update(devices)
        for key, value in list(env.items()):
            if value == p0.ip:
                env[key] = "{node.ip}"
            elif node["nic"] and value == node["nic"]:
                env[key] = "{node.nic}"
            elif key == RANKTABLE_ENV and rt_path is not None and value == rt_path:
                env[key] = "{ranktable.path}"
        env_items.append(list(env.items()))
        serve_items.append(list(p0.flags))
        row: dict[str, Any] = {
            "name": f"{p0.role}-{role_count[p0.role]}",
            "role": p0.role,
            "node": node["name"],
            "devices": format_devices(devices),
            "port": p0.port,
        }
        role_count[p0.role] += 1
        if p0.dp is not None:
            row["dp"] = {
                "size": p0.dp[0],
                "local": len(g.procs),
                "rank_start": p0.dp[1],
                "address": p0.dp[2],
                "rpc_port": p0.dp[3],
            }
        if p0.kv:
            row["kv_transfer"] = p0.kv
        instance_rows.append(row)
    shared_env, own_env = _split_common(env_items)
    shared_serve, own_serve = _split_common(serve_items)
    shared_serve = _stabilize(shared_serve)
    for row, e, s in zip(instance_rows, own_env, own_serve, strict=True):
        if e:
            row["env"] = e
        if s:
            row["serve"] = _stabilize(s)

    nics = {n["nic"] for n in nodes.values()}
    common_nic = nics.pop() if len(nics) == 1 else None
    defaults: dict[str, Any] = {}
    if common_nic:
        defaults["nic"] = common_nic
    if gen is not None and gen.npus:
        defaults["npus"] = gen.npus
    node_rows: list[dict[str, Any]] = []
    for n in nodes.values():
        row = {"name": n["name"], "host": n["host"]}
        if n["nic"] and not common_nic:
            row["nic"] = n["nic"]
        node_rows.append(row)

    data: dict[str, Any] = {
        "cluster": {
            "name": name,
            "description": "imported from " + ", ".join(texts),
        },
        "nodes": node_rows,
        "model": {
            "path": model_path,
            "served_name": head.served or model_path,
        },
        "env": shared_env,
        "serve": shared_serve,
        "instances": instance_rows,
    }
    if defaults:
        data["defaults"] = defaults
    if head.vllm != "vllm":
        data["model"]["vllm"] = head.vllm

    if rt_path is not None:
        pre = sum(len(parse_devices(r["devices"])) for r in instance_rows
                  if r["role"] == "prefill")
        dec = sum(len(parse_devices(r["devices"])) for r in instance_rows
                  if r["role"] == "decode")
        rt: dict[str, Any] = {
            "path": rt_path,
            "prefill_device_count": (gen.prefill if gen and gen.prefill else pre) or 1,
            "decode_device_count": (gen.decode if gen and gen.decode else dec) or 1,
        }
        if gen is not None and gen.local_ids:
            rt["local_device_ids"] = gen.local_ids
        data["ranktable"] = rt
    elif any(p.kv.get("kv_connector") == "LLMDataDistCMgrConnector" for p in procs):
        warnings.append(
            f"LLMDataDistCMgrConnector needs a ranktable, but no script sets {RANKTABLE_ENV}"
            " or runs gen_ranktable.sh"
        )

    if proxy is not None:
        data["proxy"] = _proxy_section(proxy, groups, nodes, node_rows, warnings)

    try:
        spec = parse_spec(data, "imported scripts")
    except ClusterError as exc:
        raise ScriptImportError(exc.problems) from None
    return ImportResult(spec=spec, warnings=warnings)


def _same_path(generated: str, env_path: str) -> bool:
    env_norm = posixpath.normpath(env_path)
    if posixpath.isabs(generated):
        return generated == env_norm
    return env_norm == generated or env_norm.endswith("/" + generated.lstrip("./"))


def _guess_devices(g: _Group, npus: int, used: set[int], warnings: list[str]) -> list[int]:
    p0 = g.head
    tp = next((v for k, v in p0.flags if k == "tensor-parallel-size"), 1)
    tp = tp if isinstance(tp, int) and not isinstance(tp, bool) and tp > 0 else 1
    want = tp * len(g.procs) if p0.dp is not None else (npus if not used else tp)
    free = [d for d in range(npus) if d not in used]
    devices = free[:want]
    if p0.dp is not None or used:
        warnings.append(
            f"{p0.file}: line {p0.line}: no {VISIBLE_DEVICES}; assuming devices"
            f" {format_devices(devices) or '(none)'}"
        )
    return devices


def _proxy_section(
    proxy: _Proxy,
    groups: list[_Group],
    nodes: dict[str, dict[str, Any]],
    node_rows: list[dict[str, Any]],
    warnings: list[str],
) -> dict[str, Any]:
    where = f"{proxy.file}: line {proxy.line}"
    section: dict[str, Any] = {"host": proxy.host, "port": proxy.port}
    if proxy.host in nodes:
        section["node"] = nodes[proxy.host]["name"]
    elif proxy.host in _WILDCARD_HOSTS:
        first = nodes[groups[0].head.ip or ""]["name"]
        section["node"] = first
        warnings.append(
            f"{where}: the proxy listens on {proxy.host!r}, which names no node; placed on"
            f" {first!r}"
        )
    else:
        node_rows.append({"name": "proxy-0", "host": proxy.host})
        section["node"] = "proxy-0"
    if proxy.python != "python":
        section["python"] = proxy.python
    if proxy.script != "load_balance_proxy_server_example.py":
        section["script"] = proxy.script
    if proxy.args:
        section["args"] = _stabilize(proxy.args)
    if proxy.env:
        section["env"] = proxy.env
    for role, word, key, listed in (
        ("prefill", "prefiller", "prefillers", proxy.prefill),
        ("decode", "decoder", "decoders", proxy.decode),
    ):
        derived = [
            f"{p.ip}:{p.port}" for g in groups if g.head.role == role for p in g.procs
        ]
        given = [f"{h}:{p}" for h, p in listed]
        for b in given:
            if b not in derived:
                warnings.append(
                    f"{where}: proxy {word} {b} matches no {role} instance"
                    f" ({', '.join(derived) or 'none'})"
                )
        for b in derived:
            if b not in given:
                warnings.append(
                    f"{where}: {role} instance {b} is missing from the proxy's {word} list;"
                    " pdtui's proxy command lists it"
                )
        if given != derived and sorted(given) == sorted(derived):
            section[key] = given
    return section
