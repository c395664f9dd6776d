"""Sanitising untrusted text for the terminal, shared by the CLI and the TUI."""

from __future__ import annotations

from pdtui.text import plain, printable, words


def test_log_lines_lose_colour_codes_and_show_other_control_bytes() -> None:
    line = "\x1b[32mINFO\x1b[0m 12-01 ready \x1b]0;owned\x07\x00 \x1b[2J\tend"
    assert plain(line) == "INFO 12-01 ready \\x00 \tend"


def test_printable_shows_control_characters_and_keeps_tabs_and_newlines() -> None:
    assert printable("a\x1b[2Jb\r\n\tc\x7f\x9b") == "a\\x1b[2Jb\n\tc\\x7f\\x9b"


def test_words_never_shows_a_python_repr() -> None:
    assert words({"address": "10.0.0.1", "ok": True, "ports": [8000, 8001], "x": None}) == (
        "address 10.0.0.1, ok yes, ports 8000, 8001, x -"
    )
    assert words([]) == "none" and words(False) == "no" and words("a\x1b[2J") == "a\\x1b[2J"


def test_count_says_1_device_and_2_devices() -> None:
    from pdtui.text import count

    assert count(1, "device") == "1 device" and count(2, "device") == "2 devices"
    assert count(0, "node") == "0 nodes" and count(1, "process", "processes") == "1 process"
    assert count(3, "process", "processes") == "3 processes"
