"""Progress of a wait: a rewritten line on a terminal, plain lines when piped."""

from __future__ import annotations

import io

from pdtui.cli.progress import Progress, clock_text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_piped_output_is_one_plain_line_per_stage_with_the_elapsed_time() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(out, tty=False, clock=clock)
    p.stage("decode-0: started")
    clock.now += 41
    p.stage("decode-0: loading weights")
    p.stage("decode-0: loading weights")  # the same stage again: not repeated
    p.draw()
    p.done()
    assert out.getvalue() == " 0:00 decode-0: started\n 0:41 decode-0: loading weights\n"


def test_a_terminal_gets_the_stage_lines_and_a_progress_line_rewritten_in_place() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(out, tty=True, clock=clock)
    p.stage("decode-0: loading weights", "prefill-0 ready  decode-0 loading weights")
    clock.now += 5
    p.draw()
    p.line("✓ done")
    text = out.getvalue()
    assert text.startswith(" 0:00 decode-0: loading weights\n")
    assert "\r\x1b[K◌ prefill-0 ready  decode-0 loading weights 0:05" in text
    assert text.endswith("\r\x1b[K✓ done\n")  # the progress line is cleared before a line


def test_text_from_nodes_cannot_reach_the_terminal_as_control_sequences() -> None:
    out = io.StringIO()
    Progress(out, tty=False, clock=Clock()).stage("n: \x1b[2Jgone")
    assert "\x1b" not in out.getvalue() and "\\x1b[2J" in out.getvalue()


def test_clock_text() -> None:
    assert [clock_text(s) for s in (0, 41, 61, 3725)] == ["0:00", "0:41", "1:01", "1:02:05"]
