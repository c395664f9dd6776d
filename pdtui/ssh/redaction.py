"""Mask secrets (tokens, passwords, keys) in command lines and log text before they are shown."""

from __future__ import annotations

import re

_SECRET_WORD = r"(?:token|secret|pass(?:word)?|key|auth|cookie|credential)"
_ENV_NAME = rf"(?=[A-Za-z_])[A-Za-z0-9_]*?{_SECRET_WORD}[A-Za-z0-9_]*"
_UNQUOTED_VALUE = r"""(?:'[^']*'|"(?:[^"\\]|\\.)*"|[^\s;&|'"<>()])+"""
# In a shlex-quoted pair ('KEY=v a l'), the value runs to the closing quote; an embedded quote is
# encoded by shlex.quote as '"'"'.
_IN_QUOTE_VALUE = r"""[^']*(?:'"'"'[^']*)*"""
_ENV_RE = re.compile(
    rf"(?i)(?P<q>')?(?P<k>\b{_ENV_NAME})=(?P<v>(?(q){_IN_QUOTE_VALUE}|{_UNQUOTED_VALUE}))"
)
_OPT_RE = re.compile(
    rf"(?i)(?P<k>--[A-Za-z0-9-]*{_SECRET_WORD}[A-Za-z0-9-]*)(?P<sep>=|\s+)(?P<v>{_UNQUOTED_VALUE})"
)
_JSON_RE = re.compile(rf'(?i)(?P<k>"[A-Za-z0-9_-]*{_SECRET_WORD}[A-Za-z0-9_-]*"\s*:\s*)"[^"]*"')
_TOKEN_RES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bhf_[A-Za-z0-9]{8,}"), "hf_***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-***"),
    (re.compile(r"(?i)\bBearer\s+(?!\*\*\*)[^\s'\"]+"), "Bearer ***"),
    (re.compile(r"(?i)\bBasic\s+(?!\*\*\*)[A-Za-z0-9+/=]{8,}"), "Basic ***"),
)
_MASK = "***"


def redact(text: str) -> str:
    """Mask secrets in a command line or log text.

    Masks the values of ``KEY=VALUE`` pairs (env style, also inside shlex quoting) and of
    ``--some-key VALUE`` options whose name matches
    ``(?i)(token|secret|pass(word)?|key|auth|cookie|credential)``, JSON ``"api_key": "..."``
    members, and token shapes ``hf_...``, ``sk-...``, ``Bearer X``, ``Basic X``.  Idempotent.
    """

    def env_sub(m: re.Match[str]) -> str:
        return f"{m.group('q') or ''}{m.group('k')}={_MASK}"

    text = _ENV_RE.sub(env_sub, text)
    text = _OPT_RE.sub(lambda m: f"{m.group('k')}{m.group('sep')}{_MASK}", text)
    text = _JSON_RE.sub(lambda m: f'{m.group("k")}"{_MASK}"', text)
    for pattern, replacement in _TOKEN_RES:
        text = pattern.sub(replacement, text)
    return text
