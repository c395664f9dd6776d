"""Reading and writing cluster files, with one clear line per problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from pdtui.cluster.model import Cluster
from pdtui.cluster.resolve import resolve
from pdtui.cluster.source import ClusterError, ClusterSource, parse_source, read_source
from pdtui.cluster.spec import ClusterSpec
from pdtui.files import atomic_write


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in {"list[int]"}:
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _value_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def _describe(err: Mapping[str, Any], raw: Any) -> str:
    kind = err["type"]
    loc: tuple[int | str, ...] = tuple(err["loc"])
    given = err.get("input", _value_at(raw, loc))
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see the README's cluster-file reference)"
    if kind == "missing":
        return "missing required key"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {_show(given)}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}, got {_show(given)}"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        ctx = err.get("ctx", {})
        bound = next(iter(ctx.values())) if ctx else "?"
        word = {
            "greater_than_equal": "at least",
            "less_than_equal": "at most",
            "greater_than": "more than",
            "less_than": "less than",
        }[kind]
        return f"expected a value {word} {bound}, got {_show(given)}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "value_error":
        msg = str(err.get("msg", ""))
        return msg.removeprefix("Value error, ")
    return f"{err.get('msg', kind)} (got {_show(given)})"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list" if len(repr(value)) > 40 else repr(value)
    return repr(value)


def parse_spec(data: dict[str, Any], source: str) -> ClusterSpec:
    """Validate raw TOML data; raise ``ClusterError`` with one line per problem."""
    try:
        return ClusterSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(f"{source}: {_loc(loc)}: {_describe(err, data)}")
        raise ClusterError(problems) from None


def load(path: str | os.PathLike[str]) -> Cluster:
    """Read, validate and resolve a cluster file."""
    return build(read_source(path))


def loads(text: str, *, source: str = "cluster.toml", path: Path | None = None) -> Cluster:
    return build(parse_source(text, source=source, path=path))


def build(parsed: ClusterSource) -> Cluster:
    """Validate and resolve a cluster file already read (:func:`read_source`)."""
    try:
        spec = parse_spec(parsed.data, parsed.source)
    except RecursionError:
        raise ClusterError(
            [f"{parsed.source}: not a cluster file: values nested too deeply"]
        ) from None
    return resolve(spec, source=parsed.source, path=parsed.path)


def dump_spec(spec: ClusterSpec) -> str:
    """TOML text for a spec, leaving out unset keys."""
    data = spec.model_dump(mode="python", exclude_none=True, exclude_defaults=True)
    # `cluster`, `nodes` and `model` are required, keep them even if they equal defaults.
    data.setdefault("cluster", spec.cluster.model_dump(exclude_defaults=True))
    first = ("name", "host", "ip", "role", "node")
    for key in ("nodes", "instances"):
        data[key] = [
            {
                **{k: v for k, v in item.items() if k in first},
                **{k: v for k, v in item.items() if k not in first},
            }
            for item in data.get(key, [])
        ]
    if not data["instances"]:
        del data["instances"]
    return tomli_w.dumps(_prune(data))


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            pv = _prune(v)
            if pv == {} and k in {"ssh", "tools", "defaults"}:
                continue
            out[k] = pv
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def save(spec: ClusterSpec, path: str | os.PathLike[str]) -> Path | None:
    """Validate then atomically write a cluster file; the previous file is kept as ``.bak``."""
    text = dump_spec(spec)
    loads(text, source=Path(path).name)  # never write a file we could not read back
    return atomic_write(Path(path), text)
