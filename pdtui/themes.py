"""Colour themes from ``themes/*.toml``: validated here, turned into Textual themes by the TUI.

``ThemeSpec`` is a plain dataclass checked by hand, not a pydantic model: the themes are loaded
before the app's first frame, and importing pydantic alone would take a good part of the
start-up budget. pydantic stays for the cluster file, which is loaded after the first frame.
The check is strict (a string must be a string, ``dark`` a true/false, no unknown keys) and its
messages are worded as pydantic's, which pdtui uses for its other files.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from pdtui.files import config_dir, read_text

#: Custom variables the TCSS uses, with defaults so that every theme (also Textual's own) works.
HEALTH_VARIABLES = {
    "npu-unknown": "#7f7f7f",
    "npu-stale": "#5f5f87",
}


@dataclass(kw_only=True)
class ThemeSpec:
    name: str
    primary: str
    secondary: str | None = None
    accent: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    boost: str | None = None
    dark: bool = True
    variables: dict[str, str] = field(default_factory=dict)


class _Invalid(ValueError):
    """A theme table that does not fit ``ThemeSpec``; the message is ``"{key}: {reason}"``."""


_NOT_A_STRING = "Input should be a valid string"


def _required_str(data: dict[str, object], key: str) -> str:
    if key not in data:
        raise _Invalid(f"{key}: Field required")
    value = data[key]
    if not isinstance(value, str):
        raise _Invalid(f"{key}: {_NOT_A_STRING}")
    return value


def _optional_str(data: dict[str, object], key: str) -> str | None:
    """``None`` when absent (TOML has no null)."""
    return _required_str(data, key) if key in data else None


def _bool(data: dict[str, object], key: str, default: bool) -> bool:
    """A real TOML true/false: ``1`` or ``"yes"`` is refused, not guessed at."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _Invalid(f"{key}: Input should be a valid boolean")
    return value


def _str_table(data: dict[str, object], key: str) -> dict[str, str]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _Invalid(f"{key}: Input should be a valid dictionary")
    table: dict[str, str] = {}
    for name, item in value.items():  # TOML table keys are always strings
        if not isinstance(item, str):
            raise _Invalid(f"{key}.{name}: {_NOT_A_STRING}")
        table[str(name)] = item
    return table


def _spec_from(data: dict[str, object]) -> ThemeSpec:
    """The theme in a parsed TOML table. Fields are checked in their order, then unknown keys
    are refused (a misspelt colour would otherwise be dropped without a word)."""
    spec = ThemeSpec(
        name=_required_str(data, "name"),
        primary=_required_str(data, "primary"),
        secondary=_optional_str(data, "secondary"),
        accent=_optional_str(data, "accent"),
        warning=_optional_str(data, "warning"),
        error=_optional_str(data, "error"),
        success=_optional_str(data, "success"),
        foreground=_optional_str(data, "foreground"),
        background=_optional_str(data, "background"),
        surface=_optional_str(data, "surface"),
        panel=_optional_str(data, "panel"),
        boost=_optional_str(data, "boost"),
        dark=_bool(data, "dark", True),
        variables=_str_table(data, "variables"),
    )
    known = {f.name for f in fields(ThemeSpec)}
    for key in data:
        if key not in known:
            raise _Invalid(f"{key}: Extra inputs are not permitted")
    return spec


def theme_dirs() -> list[Path]:
    """Shipped themes first, then the user's (``~/.config/pdtui/themes``), which may override."""
    here = Path(__file__).resolve().parent
    dirs = [here / "themes", here.parent / "themes", config_dir() / "themes"]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def load_themes(dirs: list[Path] | None = None) -> tuple[list[ThemeSpec], list[str]]:
    """Every valid theme file, and one problem line per invalid one."""
    themes: dict[str, ThemeSpec] = {}
    problems: list[str] = []
    for d in theme_dirs() if dirs is None else dirs:
        for path in sorted(d.glob("*.toml")):
            try:
                spec = _spec_from(tomllib.loads(read_text(path)))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, _Invalid) as exc:
                problems.append(f"{path}: {exc}")
                continue
            themes[spec.name] = spec
    return list(themes.values()), problems
