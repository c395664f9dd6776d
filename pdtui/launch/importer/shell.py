"""A small tokenizer for the bash these scripts use: words (literal text, ``$var``
references, source kept as is) grouped into commands."""

from __future__ import annotations

import re
from collections.abc import Callable
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
    """Splits a script into commands of words, one pass over the text."""

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
        while self.i < len(self.text):
            _HANDLERS.get(self.text[self.i], Tokenizer._char)(self)
        self._end_command()
        return self.commands

    # one handler per character that means something to the shell; the rest is literal
    def _char(self) -> None:
        self._lit(self.text[self.i])
        self.i += 1

    def _backslash(self) -> None:
        nxt = self.text[self.i + 1 : self.i + 2]
        if nxt == "\n":
            self.line += 1  # a continuation line
        else:
            self._lit(nxt or "\\")
        self.i += 2

    def _newline(self) -> None:
        self._end_command()
        self.line += 1
        self.i += 1

    def _blank(self) -> None:
        self._end_word()
        self.i += 1

    def _hash(self) -> None:
        if self.parts is not None:  # inside a word: literal
            self._char()
            return
        end = self.text.find("\n", self.i)
        self.i = len(self.text) if end < 0 else end

    def _separator(self) -> None:
        self._end_command()
        self.i += 1
        while self.i < len(self.text) and self.text[self.i] in "&|;":
            self.i += 1

    def _single_quoted(self) -> None:
        t = self.text
        end = t.find("'", self.i + 1)
        end = len(t) if end < 0 else end
        seg = t[self.i + 1 : end]
        self._lit(seg)
        self.line += seg.count("\n")
        self.i = end + 1

    def _backquoted(self) -> None:
        t = self.text
        end = t.find("`", self.i + 1)
        end = len(t) if end < 0 else end
        self._raw(t[self.i : end + 1])
        self.i = end + 1

    def _raw(self, seg: str) -> None:
        self._start().append(("raw", seg))
        self.line += seg.count("\n")

    def _redirect(self) -> None:
        t = self.text
        parts = self.parts
        if (
            parts is not None
            and len(parts) == 1
            and parts[0][0] == "lit"
            and (parts[0][1].isdigit())
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
        nxt = t[i + 1 : i + 2]
        if nxt == "{":
            self._braced()
        elif nxt == "(":
            self._substitution()
        elif m := _NAME_RE.match(t, i + 1):
            self._start().append(("var", m.group(0)))
            self.i = m.end()
        elif nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            self._start().append(("raw", t[i : i + 2]))
            self.i = i + 2
        else:
            self._lit("$")
            self.i += 1

    def _braced(self) -> None:
        """``${name}`` is a variable; any other ``${...}`` is kept as text."""
        t = self.text
        i = self.i
        end = t.find("}", i)
        end = len(t) - 1 if end < 0 else end
        inner = t[i + 2 : end]
        if _NAME_RE.fullmatch(inner):
            self._start().append(("var", "{" + inner + "}"))
        else:
            self._start().append(("raw", t[i : end + 1]))
        self.i = end + 1

    def _substitution(self) -> None:
        """``$(...)``, nested parentheses included, kept as text."""
        t = self.text
        depth = 0
        j = self.i + 1
        while j < len(t):
            if t[j] == "(":
                depth += 1
            elif t[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        self._raw(t[self.i : j + 1])
        self.i = j + 1


_HANDLERS: dict[str, Callable[[Tokenizer], None]] = {
    "\\": Tokenizer._backslash,
    "\n": Tokenizer._newline,
    " ": Tokenizer._blank,
    "\t": Tokenizer._blank,
    "\r": Tokenizer._blank,
    "#": Tokenizer._hash,
    ";": Tokenizer._separator,
    "&": Tokenizer._separator,
    "|": Tokenizer._separator,
    "<": Tokenizer._redirect,
    ">": Tokenizer._redirect,
    "'": Tokenizer._single_quoted,
    '"': Tokenizer._double_quoted,
    "$": Tokenizer._dollar,
    "`": Tokenizer._backquoted,
}


def tokenize(text: str) -> list[Command]:
    return Tokenizer(text).run()
