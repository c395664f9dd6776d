"""Colour themes from ``themes/*.toml``: validated here, turned into Textual themes by the TUI."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pdtui.files import config_dir, read_text

#: Custom variables the TCSS uses, with defaults so that every theme (also Textual's own) works.
HEALTH_VARIABLES = {
    "npu-unknown": "#7f7f7f",
    "npu-stale": "#5f5f87",
}


class ThemeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    variables: dict[str, str] = Field(default_factory=dict)


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
                spec = ThemeSpec.model_validate(tomllib.loads(read_text(path)))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                problems.append(f"{path}: {exc}")
                continue
            except ValidationError as exc:
                err = exc.errors()[0]
                key = ".".join(str(p) for p in err["loc"])
                problems.append(f"{path}: {key}: {err['msg']}")
                continue
            themes[spec.name] = spec
    return list(themes.values()), problems
