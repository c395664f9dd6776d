"""Theme files: a strict check of every field, one problem line per bad file, and no pydantic."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import pytest
from procs import loads_pydantic

from pdtui.themes import ThemeSpec, load_themes

ROOT = Path(__file__).resolve().parent.parent


def _load_one(folder: Path, text: str) -> tuple[list[ThemeSpec], list[str], Path]:
    path = folder / "theme.toml"
    path.write_text(text)
    specs, problems = load_themes([folder])
    return specs, problems, path


def test_a_minimal_theme_gets_the_defaults(tmp_path: Path) -> None:
    specs, problems, _ = _load_one(tmp_path, 'name = "mine"\nprimary = "#112233"\n')
    assert problems == []
    assert specs == [ThemeSpec(name="mine", primary="#112233")]
    spec = specs[0]
    assert spec.secondary is None and spec.boost is None
    assert spec.dark is True and spec.variables == {}


def test_every_field_is_read(tmp_path: Path) -> None:
    """Each field set to a value that is not its default comes back as written: a field added to
    ``ThemeSpec`` but not to its check would fail here."""
    text = (
        'name = "full"\nprimary = "#000001"\nsecondary = "#000002"\naccent = "#000003"\n'
        'warning = "#000004"\nerror = "#000005"\nsuccess = "#000006"\n'
        'foreground = "#000007"\nbackground = "#000008"\nsurface = "#000009"\n'
        'panel = "#00000a"\nboost = "#00000b"\ndark = false\n'
        '[variables]\nnpu-unknown = "#123456"\n"block-cursor-text-style" = "bold"\n'
    )
    specs, problems, _ = _load_one(tmp_path, text)
    assert problems == []
    table = asdict(specs[0])
    assert set(table) == {f.name for f in fields(ThemeSpec)}
    assert table["boost"] == "#00000b" and table["dark"] is False
    assert table["variables"] == {"npu-unknown": "#123456", "block-cursor-text-style": "bold"}
    assert all(value is not None for value in table.values())


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('primary = "#fff"\n', "name: Field required"),
        ('name = "x"\n', "primary: Field required"),
        ('name = "x"\nprimary = 3\n', "primary: Input should be a valid string"),
        ('name = "x"\nprimary = true\n', "primary: Input should be a valid string"),
        ('name = 1.5\nprimary = "#fff"\n', "name: Input should be a valid string"),
        ('name = "x"\nprimary = "#fff"\naccent = 3\n', "accent: Input should be a valid string"),
        ('name = "x"\nprimary = "#fff"\nboost = [1]\n', "boost: Input should be a valid string"),
        ('name = "x"\nprimary = "#fff"\ndark = 1\n', "dark: Input should be a valid boolean"),
        ('name = "x"\nprimary = "#fff"\ndark = "true"\n', "dark: Input should be a valid boolean"),
        (
            'name = "x"\nprimary = "#fff"\nvariables = "a"\n',
            "variables: Input should be a valid dictionary",
        ),
        (
            'name = "x"\nprimary = "#fff"\nvariables = ["a"]\n',
            "variables: Input should be a valid dictionary",
        ),
        (
            'name = "x"\nprimary = "#fff"\n[variables]\na = "b"\nc = 3\n',
            "variables.c: Input should be a valid string",
        ),
        (
            'name = "x"\nprimary = "#fff"\nprimay = "#000"\n',
            "primay: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_theme_is_reported_with_its_key(tmp_path: Path, text: str, problem: str) -> None:
    specs, problems, path = _load_one(tmp_path, text)
    assert specs == []
    assert problems == [f"{path}: {problem}"]


def test_one_line_per_bad_file_naming_the_first_field_in_order(tmp_path: Path) -> None:
    """Fields are checked in their order and unknown keys last, as pydantic reported them."""
    specs, problems, path = _load_one(tmp_path, 'colour = "red"\nprimary = 3\n')
    assert specs == [] and problems == [f"{path}: name: Field required"]
    specs, problems, path = _load_one(tmp_path, 'colour = "red"\nname = "x"\nprimary = "#fff"\n')
    assert specs == [] and problems == [f"{path}: colour: Extra inputs are not permitted"]


def test_a_bad_file_does_not_hide_the_good_ones(tmp_path: Path) -> None:
    (tmp_path / "a-broken.toml").write_text("name = \n")
    (tmp_path / "b-good.toml").write_text('name = "good"\nprimary = "#fff"\n')
    (tmp_path / "c-latin1.toml").write_bytes(b'name = "caf\xe9"\nprimary = "#fff"\n')
    specs, problems = load_themes([tmp_path])
    assert [s.name for s in specs] == ["good"]
    assert len(problems) == 2
    assert problems[0].startswith(f"{tmp_path / 'a-broken.toml'}: ")
    assert problems[1].startswith(f"{tmp_path / 'c-latin1.toml'}: ")


def test_a_later_folder_overrides_a_theme_of_the_same_name(tmp_path: Path) -> None:
    shipped, mine = tmp_path / "shipped", tmp_path / "mine"
    shipped.mkdir()
    mine.mkdir()
    (shipped / "t.toml").write_text('name = "t"\nprimary = "#111111"\n')
    (mine / "t.toml").write_text('name = "t"\nprimary = "#222222"\ndark = false\n')
    specs, problems = load_themes([shipped, mine])
    assert problems == []
    assert specs == [ThemeSpec(name="t", primary="#222222", dark=False)]


def test_importing_the_themes_does_not_load_pydantic() -> None:
    """Start-up: the themes are loaded before the first frame; pydantic is left for later."""
    assert not loads_pydantic("import pdtui.themes; pdtui.themes.load_themes()")
