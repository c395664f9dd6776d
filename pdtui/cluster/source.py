"""A cluster file read and parsed as TOML, not yet validated (no pydantic here).

What can go wrong before validation (a missing or unreadable file, TOML that does not parse)
is found by :func:`read_source` alone, cheaply: the app reports it before its first frame and
validates the rest (``pdtui.cluster.io.build``) after it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdtui.files import read_text


class ClusterError(Exception):
    """A cluster file could not be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ClusterSource:
    """A cluster file's TOML: ``source`` names it in problems, ``path`` anchors relative paths."""

    data: dict[str, Any]
    source: str
    path: Path | None


def read_source(path: str | os.PathLike[str]) -> ClusterSource:
    """Read and parse a cluster file (``ClusterError`` names the file and what is wrong)."""
    p = Path(path)
    try:
        text = read_text(p)
    except FileNotFoundError:
        raise ClusterError([f"{p}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClusterError([f"{p}: cannot read: {exc}"]) from None
    return parse_source(text, source=p.name, path=p)


def parse_source(text: str, *, source: str, path: Path | None) -> ClusterSource:
    """Parse a cluster file's text as TOML (``ClusterError`` with one line on failure)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClusterError([f"{source}: not valid TOML: {exc}"]) from None
    except ValueError:  # Python's int-conversion limit, not a TOML syntax error
        raise ClusterError(
            [f"{source}: not a cluster file: a number longer than 4300 digits"]
        ) from None
    except RecursionError:
        raise ClusterError([f"{source}: not a cluster file: values nested too deeply"]) from None
    return ClusterSource(data, source, path)
