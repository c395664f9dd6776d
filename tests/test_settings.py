"""The user's settings file: defaults, a strict check of what is read, and the round trip."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from procs import loads_pydantic

from pdtui.settings import Settings, load_settings, save_settings, settings_path

ROOT = Path(__file__).resolve().parent.parent


def _write(text: str) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_compare_equal_and_can_be_changed() -> None:
    settings = Settings()
    assert settings == Settings()
    assert (settings.theme, settings.last_cluster) == ("pdtui-dark", None)
    settings.theme = "pdtui-light"
    assert settings != Settings() and settings == Settings(theme="pdtui-light")


def test_a_missing_file_gives_the_defaults_without_a_warning() -> None:
    assert load_settings() == (Settings(), None)


def test_keys_pdtui_does_not_know_are_ignored() -> None:
    _write('theme = "pdtui-light"\nfuture = 3\n[later]\nx = "y"\n')
    assert load_settings() == (Settings(theme="pdtui-light"), None)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("theme = 3\n", "theme"),
        ("theme = true\n", "theme"),
        ('theme = ["pdtui-dark"]\n', "theme"),
        ('theme = "pdtui-light"\nlast_cluster = 1.5\n', "last_cluster"),
        ("[theme]\nname = 'x'\n", "theme"),
    ],
)
def test_a_value_of_the_wrong_type_gives_the_defaults_and_says_which(text: str, key: str) -> None:
    path = _write(text)
    settings, warning = load_settings()
    assert settings == Settings()
    assert warning == f"{path}: ignored ({key}: Input should be a valid string)"


def test_a_broken_toml_file_gives_the_defaults_and_a_warning() -> None:
    path = _write("theme = \n")
    settings, warning = load_settings()
    assert settings == Settings()
    assert warning is not None and warning.startswith(f"{path}: ignored (")


def test_save_then_load_round_trips() -> None:
    path = save_settings(Settings(theme="pdtui-colorblind", last_cluster="/srv/pd.toml"))
    assert path == settings_path()
    assert tomllib.loads(path.read_text()) == {
        "theme": "pdtui-colorblind",
        "last_cluster": "/srv/pd.toml",
    }
    assert load_settings() == (
        Settings(theme="pdtui-colorblind", last_cluster="/srv/pd.toml"),
        None,
    )


def test_save_leaves_out_an_unset_last_cluster_and_keeps_a_backup() -> None:
    save_settings(Settings())
    path = save_settings(Settings(theme="pdtui-light"))
    assert tomllib.loads(path.read_text()) == {"theme": "pdtui-light"}
    assert tomllib.loads(path.with_name("settings.toml.bak").read_text()) == {"theme": "pdtui-dark"}
    assert load_settings() == (Settings(theme="pdtui-light"), None)


def test_importing_the_settings_does_not_load_pydantic() -> None:
    """Start-up: the settings are read before the first frame; pydantic is left for later."""
    assert not loads_pydantic("import pdtui.settings")
