"""Startup stages of a vLLM / vLLM-Ascend process, each reached when its line first appears.

Every stage means what it says, on V0 and V1 engines, eager and graph mode:

- ``graphs`` is graph *capture finished* (``Graph capturing finished in 38 secs``); its start
  is the capture progress bar or V0's ``Capturing cudagraphs for decoding``. vLLM-Ascend's
  config-time lines that mention "ACL graph" (``Calculated maximum supported batch sizes for
  ACL graph``, seconds after start) are not capture and move nothing. Eager runs skip it.
- ``kv_cache`` is the KV cache sized or allocated (``GPU KV cache size``, V0's
  ``# npu blocks``, ``init engine (profile, create kv cache, ...)``); a negative
  ``Available KV cache memory`` is a failure, not this stage.
"""

from __future__ import annotations

import re

#: Startup stages in order: (key, title, pattern).
STAGES: list[tuple[str, str, re.Pattern[str]]] = [
    (
        "started",
        "process started",
        re.compile(
            r"is assigned as DP rank|vLLM API server version|non-default args"
            r"|Initializing a V[01] LLM engine"
        ),
    ),
    (
        "loading",
        "loading weights",
        re.compile(
            r"Loading safetensors checkpoint shards|Using model weights format"
            r"|Starting to load model"
        ),
    ),
    (
        "weights",
        "weights loaded",
        re.compile(r"Loading (?:model )?weights took|Model loading took"),
    ),
    (
        "kv_cache",
        "KV cache sized",
        re.compile(
            r"GPU KV cache size: [\d,]+ tokens|Available KV cache memory: \d"
            r"|# (?:npu|NPU|cuda|gpu|GPU) blocks: \d|init engine \(profile, create kv cache"
            r"|num_gpu_blocks is: \d"
        ),
    ),
    ("graphs", "graphs captured", re.compile(r"Graph capturing finished")),
    (
        "api",
        "API server up",
        re.compile(
            r"Starting vLLM (?:API )?server (?:\d+ )?on|Available routes are:"
            r"|Supported[_ ]tasks:|Uvicorn running on"
        ),
    ),
    ("ready", "ready", re.compile(r"Application startup complete\.")),
]
STAGE_ORDER = [s[0] for s in STAGES]
STAGE_TITLES = {s[0]: s[1] for s in STAGES}

#: Graph capture starting (V0 line, V0/V1 progress bars, torch's warning before capture).
CAPTURE_START = re.compile(
    r"Capturing cudagraphs for decoding|Capturing CUDA graphs? "
    r"|before starting graph capture"
)

#: Lines a process prints once per start: one seen again from the same process, or after
#: a fatal error, starts a new timeline (a restart inside one log).
START = re.compile(
    r"vLLM API server version|non-default args|Initializing a V[01] LLM engine"
    r"|is assigned as DP rank"
)

SHARDS = re.compile(r"Loading safetensors checkpoint shards:\s+(\d+)% Completed \| (\d+)/(\d+)")

#: ``grep -F`` pieces of every stage line (see fingerprints.FINGERPRINT_KEYS).
STAGE_KEYS: tuple[str, ...] = (
    "is assigned as DP rank",
    "vLLM API server version",
    "non-default args",
    "LLM engine (",
    "Loading safetensors checkpoint shards",
    "Using model weights format",
    "Starting to load model",
    "weights took",
    "Model loading took",
    "GPU KV cache size",
    "Available KV cache memory",
    " blocks: ",
    "init engine (profile",
    "num_gpu_blocks is",
    "Capturing cudagraphs",
    "Capturing CUDA graph",
    "before starting graph capture",
    "Graph capturing finished",
    "Starting vLLM ",
    "Available routes are",
    "upported_tasks:",
    "upported tasks:",
    "Uvicorn running on",
    "Application startup complete",
)
