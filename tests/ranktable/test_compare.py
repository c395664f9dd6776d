"""Ranktable diffs: unified text diffs and one line per changed value."""

from __future__ import annotations

import copy

from pdtui.ranktable import (
    diff,
    dumps,
    loads,
    summary_diff,
)

from .common import (
    FIXTURES,
)

# =========================================================================== diffs


def test_diff_and_summary() -> None:
    old_text = (FIXTURES / "example_a2.json").read_text()
    old = loads(old_text)
    new = copy.deepcopy(old)
    new["decode_device_list"][0]["device_ip"] = "29.1.170.150"
    new["decode_device_list"] += [
        dict(new["decode_device_list"][1], cluster_id="5"),
        dict(new["decode_device_list"][1], cluster_id="6"),
    ]
    new["server_count"] = "3"
    new_text = dumps(new)
    out = diff(old_text, new_text, "node-a:/work/ranktable.json", "ranktable.json")
    assert out.startswith("--- node-a:/work/ranktable.json\n+++ ranktable.json\n@@ ")
    assert '-            "device_ip": "29.1.170.140",\n' in out
    assert '+            "device_ip": "29.1.170.150",\n' in out
    # json.dump writes no final newline: marked like diff -u does when it is in a hunk.
    tail = diff(old_text, old_text.replace('"completed"', '"x"'), "a", "b")
    assert tail.endswith('+    "status": "x"\n }\n\\ No newline at end of file\n')  # = diff -u
    assert all(line.endswith("\n") for line in out.splitlines(keepends=True))
    assert diff(old_text, old_text, "a", "b") == ""
    assert summary_diff(old, new) == [
        "server_count: 2 -> 3",
        "decode_device_list[0].device_ip: 29.1.170.140 -> 29.1.170.150",
        "decode_device_list: 2 entries added",
    ]
    assert summary_diff(new, old)[-1] == "decode_device_list: 2 entries removed"
    gone = copy.deepcopy(old)
    del gone["prefill_device_list"][0]["device_ip"]
    assert summary_diff(old, gone) == [
        "prefill_device_list[0].device_ip: 29.1.137.205 -> (missing)"
    ]
    assert summary_diff(old, old) == []
