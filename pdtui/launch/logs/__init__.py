"""Reading vLLM, vLLM-Ascend, CANN plog and proxy logs: stages, known failures, engine stats.

- :mod:`.lines`: records, process prefixes, every time stamp shape;
- :mod:`.stages`: the startup stages and what marks each;
- :mod:`.fingerprints`: the table of known failures (stable ids, meaning, fix, source);
- :mod:`.plog`: CANN's own logs (``ASCEND_PROCESS_LOG_PATH``) and their records;
- :mod:`.watcher`: ``LogWatcher``, which follows one process's lines;
- :mod:`.diagnose`: the offline analysis of saved files (``pdtui diagnose``).
"""

from __future__ import annotations

from pdtui.launch.logs.fingerprints import (
    FINGERPRINT_KEYS,
    FINGERPRINTS,
    GENERIC,
    Fingerprint,
    cann_codes,
    matches,
)
from pdtui.launch.logs.lines import Stamp, line_time, stamp_of
from pdtui.launch.logs.stages import STAGE_KEYS, STAGE_ORDER, STAGE_TITLES, STAGES
from pdtui.launch.logs.watcher import (
    STATS_KEY,
    EngineStats,
    Finding,
    LogWatcher,
    Mark,
    Timeline,
    parse_stats,
)

#: Literal pieces of every stage and fingerprint line, for ``grep -F`` on the node: reading a
#: long-running server's status needs these lines from the whole log, not its last megabytes.
GREP_KEYS: tuple[str, ...] = STAGE_KEYS + FINGERPRINT_KEYS

__all__ = [
    "FINGERPRINTS",
    "FINGERPRINT_KEYS",
    "GENERIC",
    "GREP_KEYS",
    "STAGES",
    "STAGE_KEYS",
    "STAGE_ORDER",
    "STAGE_TITLES",
    "STATS_KEY",
    "EngineStats",
    "Finding",
    "Fingerprint",
    "LogWatcher",
    "Mark",
    "Stamp",
    "Timeline",
    "cann_codes",
    "line_time",
    "matches",
    "parse_stats",
    "stamp_of",
]
