"""The legacy LLMDataDist PD ranktable: generate it centrally, lint it, diff it, sync it.

- `build`: generate the file exactly as vllm-ascend's ``gen_ranktable.py`` would, read and
  write its text;
- `lint`: the rules the ``LLMDataDistCMgrConnector`` applies at runtime, checked against the
  cluster file, live NPU data and the copies on each node when given;
- `compare`: unified and one-line-per-change diffs;
- `sync`: read every node's copy and push the file atomically (the only part that uses SSH).

No Textual: stdlib plus pdtui's plain data models.
"""

from __future__ import annotations

from pdtui.ranktable.build import (
    DEVICE_KEYS,
    LISTS,
    STATUS,
    SUPER_KEYS,
    TOP_KEYS,
    VERSION,
    RanktableError,
    dumps,
    generate,
    loads,
)
from pdtui.ranktable.compare import diff, summary_diff
from pdtui.ranktable.lint import Finding, Severity, lint

__all__ = [
    "DEVICE_KEYS",
    "LISTS",
    "STATUS",
    "SUPER_KEYS",
    "TOP_KEYS",
    "VERSION",
    "Finding",
    "RanktableError",
    "Severity",
    "diff",
    "dumps",
    "generate",
    "lint",
    "loads",
    "summary_diff",
]
