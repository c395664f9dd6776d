"""A small tokenizer for the bash these scripts use: words (literal text, ``$var``
references, source kept as is) grouped into commands."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Part = tuple[str, str]  # ("lit", text) | ("var", name) | ("raw", source text kept as is)


@dataclass
class Word:
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
class Command:
    words: list[Word]
    line: int
    end_line: int


class Tokenizer:
    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n")
        self.i = 0
        self.line = 1
        self.commands: list[Command] = []
        self.words: list[Word] = []
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
                self.words.append(Word(self.parts, self.word_line))
            self.parts = None

    def _end_command(self) -> None:
        self._end_word()
        self.drop_next = False
        if self.words:
            self.commands.append(Command(self.words, self.words[0].line, self.line))
        self.words = []

    def run(self) -> list[Command]:
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


def tokenize(text: str) -> list[Command]:
    return Tokenizer(text).run()
