"""Device ids as a cluster file writes them: ``[0, 1, 2]`` or ``"0-7,12"`` (no pydantic here,
so a view can format a range without loading the cluster file's model)."""

from __future__ import annotations

#: The most NPUs a node may have (``npus``); a device id past it is a typo.
MAX_NPUS = 64


def _device_range(part: str, value: str) -> range:
    """One ``"4"`` or ``"0-7"`` item of a device range string (checked before expanding)."""
    lo, sep, hi = part.partition("-")
    if not lo.isascii() or not lo.isdigit() or (sep and not (hi.isascii() and hi.isdigit())):
        raise ValueError(f"expected device ids like '0-15' or '0,2,4', got {value!r}")
    if max(len(lo), len(hi)) > 3 or max(int(lo), int(hi or 0)) >= MAX_NPUS:
        raise ValueError(
            f"device range {part!r} goes past the largest node ({MAX_NPUS} NPUs), in {value[:60]!r}"
        )
    start, end = int(lo), int(hi) if sep else int(lo)
    if end < start:
        raise ValueError(f"device range {part!r} runs backwards")
    return range(start, end + 1)


def parse_devices(value: object) -> list[int]:
    """Accept ``[0, 1, 2]`` or a range string like ``"0-7,12,14-15"``."""
    if isinstance(value, str):
        out: list[int] = []
        for part in value.replace(" ", "").split(","):
            if not part:
                raise ValueError(f"expected device ids like '0-15' or '0,2,4', got {value!r}")
            out.extend(_device_range(part, value))
        return out
    if isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"expected a list of device ids (integers), got {value!r}")
        return list(value)
    raise ValueError(f"expected a list of device ids or a range string, got {value!r}")


def format_devices(devices: list[int]) -> str:
    """``[0,1,2,3,8]`` -> ``"0-3,8"``."""
    parts: list[str] = []
    i = 0
    while i < len(devices):
        j = i
        while j + 1 < len(devices) and devices[j + 1] == devices[j] + 1:
            j += 1
        parts.append(str(devices[i]) if i == j else f"{devices[i]}-{devices[j]}")
        i = j + 1
    return ",".join(parts)
