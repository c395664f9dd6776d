"""Deterministic, plausible-looking text and a tiny tokenizer for the fake vLLM.

Tokenizer (not a real BPE, documented so tests and the console can predict counts):
a token is a run of word characters (``\\w+``) or one non-space, non-word character, i.e.
``re.findall(r"\\w+|[^\\w\\s]", text)``. "Who are you?" is 4 tokens. Token ids are a stable
FNV-1a hash of the token text, in ``100..151099``.

Generation: English-like sentences from a small word list, driven by a `random.Random` seeded
with a SHA-256 of (prompt, seed). The token stream for a prompt is fixed, so asking for fewer
tokens gives a prefix of asking for more. A reply ends naturally ("stop") at the first
sentence end after a prompt-dependent length of 24..72 tokens, unless ``max_tokens`` cuts it
first ("length").
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")

_DET = ("the", "a", "every", "this", "each", "our", "that")
_ADJ = (
    "quiet",
    "distributed",
    "careful",
    "bright",
    "simple",
    "remote",
    "steady",
    "small",
    "patient",
    "modern",
    "parallel",
    "curious",
    "reliable",
    "gentle",
    "rapid",
    "ancient",
)
_NOUN = (
    "model",
    "river",
    "server",
    "garden",
    "cluster",
    "engineer",
    "signal",
    "library",
    "network",
    "teacher",
    "city",
    "decoder",
    "question",
    "answer",
    "machine",
    "story",
    "village",
    "kernel",
    "device",
    "traveler",
    "window",
    "mountain",
    "request",
    "cache",
)
_VERB = (
    "builds",
    "watches",
    "explains",
    "carries",
    "finds",
    "answers",
    "follows",
    "shapes",
    "remembers",
    "measures",
    "connects",
    "describes",
    "prepares",
    "reaches",
    "balances",
)
_PREP = ("near", "across", "beyond", "inside", "under", "with", "behind", "toward")
_ADV = ("slowly", "clearly", "quietly", "often", "always", "rarely", "gladly", "soon")
_CONJ = ("and", "while", "because", "although", "so")
_OPEN = ("I think", "In short", "Of course", "Honestly", "As a rule", "For example")


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def token_id(token: str) -> int:
    h = 2166136261
    for b in token.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return 100 + h % 151_000


def token_ids(text: str) -> list[int]:
    return [token_id(t) for t in tokenize(text)]


def count_tokens(text: str) -> int:
    return len(tokenize(text))


def seed_for(prompt: str, seed: int | None = None) -> int:
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _sentence(rng: random.Random) -> list[str]:
    words: list[str] = []
    if rng.random() < 0.2:
        words += [*rng.choice(_OPEN).split(), ","]
    words += [rng.choice(_DET)]
    if rng.random() < 0.7:
        words.append(rng.choice(_ADJ))
    words += [rng.choice(_NOUN)]
    if rng.random() < 0.3:
        words.append(rng.choice(_ADV))
    words += [rng.choice(_VERB), rng.choice(_DET)]
    if rng.random() < 0.5:
        words.append(rng.choice(_ADJ))
    words.append(rng.choice(_NOUN))
    if rng.random() < 0.5:
        words += [rng.choice(_PREP), rng.choice(_DET), rng.choice(_NOUN)]
    if rng.random() < 0.3:
        words += [
            ",",
            rng.choice(_CONJ),
            rng.choice(_DET),
            rng.choice(_NOUN),
            rng.choice(_VERB),
            rng.choice(_ADV),
        ]
    words.append("." if rng.random() < 0.85 else "!")
    return words


def token_stream(prompt: str, seed: int | None = None) -> Iterator[str]:
    """Endless tokens as text pieces (a leading space before words, none before punctuation)."""
    rng = random.Random(seed_for(prompt, seed))
    while True:
        words = _sentence(rng)
        for i, w in enumerate(words):
            if i == 0:
                w = w[0].upper() + w[1:]
            yield w if w in ",.!" else " " + w


def natural_length(prompt: str, seed: int | None = None) -> int:
    return 24 + seed_for(prompt + "\x01len", seed) % 49


def reply(prompt: str, max_tokens: int | None, seed: int | None = None) -> tuple[list[str], str]:
    """The reply tokens and finish reason (``"stop"`` or ``"length"``)."""
    target = natural_length(prompt, seed)
    out: list[str] = []
    for tok in token_stream(prompt, seed):
        if max_tokens is not None and len(out) >= max_tokens:
            return out, "length"
        out.append(tok)
        if len(out) >= target and tok in (".", "!"):
            return out, "stop"
    raise AssertionError("unreachable")  # pragma: no cover


def reply_text(prompt: str, max_tokens: int | None, seed: int | None = None) -> str:
    return "".join(reply(prompt, max_tokens, seed)[0])
