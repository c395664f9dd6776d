"""The user's own settings (theme, last cluster) in ``$XDG_CONFIG_HOME/pdtui/settings.toml``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w
from pydantic import BaseModel, ConfigDict, ValidationError

from pdtui.files import atomic_write, read_text
from pdtui.files import config_dir as config_dir  # re-exported: callers import it from here


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    theme: str = "pdtui-dark"
    last_cluster: str | None = None


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def load_settings() -> tuple[Settings, str | None]:
    """The settings, and a warning if the file was unreadable (defaults are used then)."""
    path = settings_path()
    try:
        data = tomllib.loads(read_text(path))
        return Settings.model_validate(data), None
    except FileNotFoundError:
        return Settings(), None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        return Settings(), f"{path}: ignored ({first})"


def save_settings(settings: Settings) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, tomli_w.dumps(settings.model_dump(exclude_none=True)))
    return path
