"""Answer pdtui's framed probe scripts inside the simulator, without starting a process per call.

A real node runs the probe's ~150 tool calls on its own CPUs. On the simulator every fake
node shares this machine's cores, and with real ``bash`` each call costs a subshell, a
``timeout`` and a wrapper start (about 4.5 ms of CPU): a 32-node sweep is then bound by this
machine's CPU, not by the tools' latency. This is a "simulated handler" (the server
answers a command itself instead of running it) for exactly one kind of command.

The fake node hands a ``bash -s`` script here first. It is answered in-process only if it is,
byte for byte, a script that :func:`pdtui.npu.probe.framed_script` generates (it is parsed,
regenerated and compared). Anything else runs in real ``bash``. The answer is produced the way
the script would produce it:

* ``command -v`` for each tool word, as ``bash`` resolves it on the node's ``PATH``;
* each call under the script's timeout (rc 124 when it expires, as ``timeout`` exits), at most
  ``CAP`` groups at once, the calls of a group together;
* the fake tools (the node's wrappers) are answered by the :class:`ToolServer`, the same code
  and latency as over the wrapper's socket; ``cat`` of a readable file is read here; any other
  command runs as a real process under ``timeout``;
* frames are printed in the script's order: tool frames, then each job's header, stdout,
  trailer and stderr, then the end frame;
* the node's clock starts when its script arrives: time spent answering counts as elapsed;
* an answer is remembered (split around the nonce) while the state, the node's tools folder
  and the files it read are unchanged; answers that ran real processes are not.

``tests/sim/test_inproc.py`` runs the same probes (healthy and with every fault) both ways and
compares the bytes.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import re
import shlex
import shutil
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

from pdtui.npu.probe import framed_script
from pdtui.sim.faults import TOOL_NAMES
from pdtui.sim.toolserver import ToolServer

__all__ = ["FramedScript", "InprocShell", "parse_framed_script"]

_TIMEOUT_RC = 124  # what coreutils `timeout` exits with when the command timed out
_MAX_SCRIPT = 4 << 20


@dataclass(frozen=True)
class FramedScript:
    nonce: str
    cap: int
    timeout: int
    tools: list[str]
    jobs: list[tuple[str, list[str]]]
    #: groups that run beside the capped ones
    free: tuple[str, ...] = ()


_RUN = re.compile(r"^    run (.+) &$", re.M)
_NONCE = re.compile(r"^N=(.*)$", re.M)
_PLAIN = re.compile(r"[\w@%+=:,./-]+(?: [\w@%+=:,./-]+)*", re.ASCII)


def parse_framed_script(text: str) -> FramedScript | None:
    """The jobs of a script that ``framed_script`` generated, or None for any other text."""
    try:
        nonce = shlex.split(_line(text, "N="))[0]
        cap = int(_line(text, "CAP="))
        timeout = int(_line(text, "TO="))
        loop = _line(text, "for t in ")
        if not loop.endswith("; do"):
            return None
        tools = shlex.split(loop[: -len("; do")])
        jobs = []
        free: list[str] = []
        for m in _RUN.finditer(text):
            line = m.group(1)
            # shlex.join leaves plain words bare: split those without the (slow) lexer
            words = line.split(" ") if _PLAIN.fullmatch(line) else shlex.split(line)
            jobs.append((words[0], words[1:]))
            group = words[0].split(".", 1)[0]
            before = text[max(0, m.start() - 8) : m.start()]
            if (
                before.endswith("\n(\n")
                and not before.endswith("\ngate\n(\n")
                and group not in free
            ):
                free.append(group)  # a block without "gate" before it
        # The frames are printed in the order of the jobs as given, kept by the `cat` line.
        cat = _line(text, 'cat "$T"/').removesuffix(" 2>/dev/null")
        if cat.startswith("{") and cat.endswith("}.{a,o,m,e}"):  # "$T"/{k1,k2,...}.{a,o,m,e}
            order = cat[1 : -len("}.{a,o,m,e}")].split(",")
        else:
            order = [
                shlex.split(f)[0][: -len(".a")] for f in cat.split(' "$T"/') if f.endswith(".a")
            ]
        by_key = dict(jobs)
        if len(by_key) != len(jobs) or sorted(order) != sorted(by_key):
            return None
        jobs = [(key, by_key[key]) for key in order]
    except (ValueError, IndexError):
        return None
    if not jobs or any(not argv for _, argv in jobs):
        return None
    parsed = FramedScript(nonce, cap, timeout, tools, jobs, tuple(free))
    try:
        again = framed_script(jobs, nonce, tools=tools, cap=cap, timeout=timeout, free=parsed.free)
    except ValueError:
        return None
    return parsed if again == text else None


@dataclass
class _Plan:
    """One group's answers (None: still to run as a process) and its length in ms."""

    answers: list[tuple[int, bytes, bytes] | None]
    ms: int = 0
    others: list[tuple[int, list[str]]] = field(default_factory=list)
    #: files read for ``cat``: (path, mtime_ns, size)
    reads: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass
class _Answer:
    """A script's frames split around the nonce, how long they take, and what they relied on
    (to answer the same script again while nothing changed)."""

    pieces: list[bytes]
    seconds: float
    token: tuple[object, int]
    reads: list[tuple[str, int, int]]
    cacheable: bool

    def valid(self, token: tuple[object, int]) -> bool:
        if token[0] is not self.token[0] or token[1] != self.token[1]:
            return False
        for path, mtime, size in self.reads:
            try:
                st = os.stat(path)
            except OSError:
                return False
            if (st.st_mtime_ns, st.st_size) != (mtime, size):
                return False
        return True


def _makespan(durations: list[int], cap: int) -> int:
    """When the last of ``durations`` ends, started in order, at most ``cap`` at once, each
    as soon as any earlier one ends (the script's ``gate``: ``wait -n``)."""
    ends: list[int] = []
    for d in durations:
        start = 0
        if len(ends) >= max(cap, 1):
            start = heapq.heappop(ends)
        heapq.heappush(ends, start + d)
    return max(ends, default=0)


def _line(text: str, prefix: str) -> str:
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :]
    raise ValueError(prefix)


class InprocShell:
    """One fake node's in-process answers to framed probe scripts."""

    def __init__(
        self, node: str, tools: ToolServer, bin_dir: Path, env: Mapping[str, str], cwd: str | None
    ) -> None:
        self.node = node
        self.tools = tools
        self.bin_dir = Path(bin_dir).resolve()
        self.env = {**os.environ, **env}
        self.cwd = cwd
        #: scripts answered here (the rest went to bash)
        self.answered = 0
        self._templates: dict[str, FramedScript | None] = {}
        self._done: dict[str, _Answer] = {}

    def _parse(self, text: str) -> tuple[str, FramedScript] | None:
        """``parse_framed_script``, remembered for scripts that differ only in their nonce;
        with the script's text for nonce ``@`` (the key for remembered answers)."""
        m = _NONCE.search(text)
        if m is None:
            return None
        template = text[: m.start(1)] + "@" + text[m.end(1) :]
        if template not in self._templates:
            if len(self._templates) >= 64:
                self._templates.clear()
            self._templates[template] = parse_framed_script(template)
        parsed = self._templates[template]
        if parsed is None:
            return None
        try:
            nonce = shlex.split(m.group(1))
        except ValueError:
            return None
        if len(nonce) != 1 or shlex.quote(nonce[0]) != m.group(1):
            return None
        return template, replace(parsed, nonce=nonce[0])

    def _which(self, word: str) -> str | None:
        return shutil.which(word, path=self.env.get("PATH", os.defpath))

    def _resolve(
        self, word: str, seen: dict[str, tuple[str | None, str | None]]
    ) -> tuple[str | None, str | None]:
        """``(path, fake tool name or None)`` of a command word, looked up once per script."""
        if word not in seen:
            path = self._which(word)
            fake = None
            if path is not None:
                p = Path(path).resolve()
                if p.parent == self.bin_dir and p.name in TOOL_NAMES:
                    fake = p.name
            seen[word] = (path, fake)
        return seen[word]

    async def answer(self, script: bytes) -> tuple[int, bytes] | None:
        """``(rc, stdout)`` for a framed probe script; None: not ours, run it in bash."""
        started = time.monotonic()  # the node's clock starts when its script arrives
        if len(script) > _MAX_SCRIPT:
            return None
        try:
            text = script.decode()
        except UnicodeDecodeError:
            return None
        found = self._parse(text)
        if found is None:
            return None
        template, parsed = found
        self.answered += 1
        token = self._token()
        done = self._done.get(template)
        if done is None or not done.valid(token):
            done = await self._answer(parsed, token)
            if done.cacheable:
                if len(self._done) >= 64:
                    self._done.clear()
                self._done[template] = done
        # a real node's CPUs are its own: our time spent answering counts as elapsed
        left = done.seconds - (time.monotonic() - started)
        if left > 0:
            await asyncio.sleep(left)
        return 0, parsed.nonce.encode().join(done.pieces)

    def _token(self) -> tuple[object, int]:
        """What the answers depend on besides files read: the state and the node's tools."""
        try:
            tools = os.stat(self.bin_dir).st_mtime_ns
        except OSError:
            tools = -1
        return self.tools.current_state(), tools

    async def _answer(self, parsed: FramedScript, token: tuple[object, int]) -> _Answer:
        """Every frame of the script, split around the nonce, and how long it takes."""

        def frame(header: str, body: bytes) -> None:
            pieces[-1] += b"\n@@"
            pieces.append(header.encode() + body)

        pieces = [b""]
        seen: dict[str, tuple[str | None, str | None]] = {}
        for t in parsed.tools:
            rc = 0 if self._resolve(t, seen)[0] is not None else 127
            frame(f" tool.{t.rsplit('/', 1)[-1]} {rc} out\n", b"")
        groups: dict[str, list[tuple[str, list[str]]]] = {}
        for key, argv in parsed.jobs:
            groups.setdefault(key.split(".", 1)[0], []).append((key, argv))
        plans = {
            g: self._plan([argv for _, argv in m], parsed.timeout, seen) for g, m in groups.items()
        }
        run_here = any(plan.others for plan in plans.values())
        seconds = 0.0
        if run_here:  # real processes: their time is real, and nothing is remembered
            await self._run_groups(plans, parsed.free, parsed.cap, parsed.timeout)
        else:  # nothing to wait for but the fake tools' time: as long as bash would take
            free = [plans[g].ms for g in groups if g in parsed.free]
            gated = [plans[g].ms for g in groups if g not in parsed.free]
            seconds = max([*free, _makespan(gated, parsed.cap)]) / 1000
        results = {
            key: a
            for name, members in groups.items()
            for (key, _), a in zip(members, plans[name].answers, strict=True)
        }
        for key, _ in parsed.jobs:
            rc, o, e = results[key] or (1, b"", b"")
            frame(f" {key} - out\n", o)
            frame(f" {key} {rc} err\n", e)
        frame(" end - out\n", b"")
        reads = [r for plan in plans.values() for r in plan.reads]
        return _Answer(pieces, seconds, token, reads, cacheable=not run_here)

    def _plan(
        self, calls: list[list[str]], timeout: int, seen: dict[str, tuple[str | None, str | None]]
    ) -> _Plan:
        """Answer one group's calls now where no process is needed: fake tools, ``cat``,
        commands not found. The group lasts as long as its slowest call (at most
        ``timeout``; a call past it gets rc 124, as from ``timeout``)."""
        plan = _Plan([None] * len(calls))
        for i, argv in enumerate(calls):
            path, fake = self._resolve(argv[0], seen)
            if path is None:
                plan.answers[i] = (
                    127,
                    b"",
                    (
                        f"timeout: failed to run command '{argv[0]}': No such file or directory\n"
                    ).encode(),
                )
            elif fake is not None:
                call = self.tools.prepare(self.node, fake, argv[1:])
                if call.hangs or call.delay_ms > timeout * 1000:
                    plan.answers[i] = (_TIMEOUT_RC, b"", b"")
                    plan.ms = timeout * 1000
                else:
                    plan.answers[i] = call.result
                    plan.ms = max(plan.ms, call.delay_ms)
            elif Path(path).name == "cat" and len(argv) == 2 and os.access(argv[1], os.R_OK):
                try:
                    st = os.stat(argv[1])
                    plan.answers[i] = (0, Path(argv[1]).read_bytes(), b"")
                    plan.reads.append((argv[1], st.st_mtime_ns, st.st_size))
                except OSError:  # a directory, a race: let the real cat say it
                    plan.others.append((i, argv))
            else:
                plan.others.append((i, argv))
        return plan

    async def _run_groups(
        self, plans: dict[str, _Plan], free: tuple[str, ...], cap: int, timeout: int
    ) -> None:
        """Groups that need real processes: run them, at most ``cap`` gated groups at once."""
        gate = asyncio.Semaphore(max(cap, 1))

        async def one(name: str) -> None:
            plan = plans[name]
            waits: list[Awaitable[object]] = [
                self._process(argv, timeout) for _, argv in plan.others
            ]
            if plan.ms:
                waits.append(asyncio.sleep(plan.ms / 1000))
            if name in free:
                done = await asyncio.gather(*waits)
            else:
                async with gate:
                    done = await asyncio.gather(*waits)
            for (i, _), result in zip(plan.others, done, strict=False):
                plan.answers[i] = cast(tuple[int, bytes, bytes], result)

        await asyncio.gather(*(one(g) for g in plans))

    async def _process(self, argv: list[str], timeout: int) -> tuple[int, bytes, bytes]:
        sub = await asyncio.create_subprocess_exec(
            "timeout",
            "-k",
            "2",
            str(timeout),
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, "LC_ALL": "C"},
            cwd=self.cwd,
            start_new_session=True,
        )
        o, e = await sub.communicate()
        rc = sub.returncode if sub.returncode is not None else 1
        return (rc if rc >= 0 else 128 - rc), o, e
