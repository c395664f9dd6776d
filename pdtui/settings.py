"""The user's own settings (theme, last cluster) in ``$XDG_CONFIG_HOME/pdtui/settings.toml``.

A plain dataclass checked by hand, not a pydantic model: this module is imported before the
app's first frame, and importing pydantic alone would take a good part of the start-up budget.
pydantic stays for the cluster file, which is loaded after the first frame.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

import tomli_w

from pdtui.files import atomic_write, read_text
from pdtui.files import config_dir as config_dir  # re-exported: callers import it from here


@dataclass(kw_only=True)
class Settings:
    theme: str = "pdtui-dark"
    last_cluster: str | None = None


class _Invalid(ValueError):
    """A settings table with a value of the wrong type; the message is ``"{key}: {reason}"``."""


def _optional_str(data: dict[str, object], key: str) -> str | None:
    """``data[key]`` if it is a string, ``None`` if it is absent (TOML has no null); any other
    value is refused."""
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str):
        raise _Invalid(f"{key}: Input should be a valid string")
    return value


def _settings_from(data: dict[str, object]) -> Settings:
    """The settings in a parsed TOML table. Keys pdtui does not know are ignored, so that a
    settings file written by a newer pdtui still loads."""
    theme = _optional_str(data, "theme")
    settings = Settings(last_cluster=_optional_str(data, "last_cluster"))
    if theme is not None:
        settings.theme = theme
    return settings


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def load_settings() -> tuple[Settings, str | None]:
    """The settings, and a warning if the file was unreadable (defaults are used then)."""
    path = settings_path()
    try:
        return _settings_from(tomllib.loads(read_text(path))), None
    except FileNotFoundError:
        return Settings(), None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, _Invalid) as exc:
        first = str(exc).splitlines()[0]
        return Settings(), f"{path}: ignored ({first})"


def save_settings(settings: Settings) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    table = {key: value for key, value in asdict(settings).items() if value is not None}
    atomic_write(path, tomli_w.dumps(table))
    return path
