"""pdtui.launch.follow: what a followed log hands a pane per tick."""

from __future__ import annotations

from pdtui.launch.follow import LogFeed


def lines(a: int, b: int) -> list[str]:
    return [f"line {i}" for i in range(a, b)]


def test_a_burst_up_to_keep_passes_whole_then_the_rate_caps_and_counts() -> None:
    now = [0.0]
    feed = LogFeed(keep=100, rate=50, clock=lambda: now[0])
    feed.push(lines(0, 60))
    feed.push(lines(60, 100))
    assert feed.take() == (0, lines(0, 100))  # a burst: all of it
    now[0] += 0.5  # 25 lines of budget
    feed.push(lines(100, 140))
    assert feed.take() == (15, lines(115, 140))  # the newest 25, 15 skipped
    now[0] += 10.0  # the budget refills up to keep, not beyond
    feed.push(lines(140, 150))
    assert feed.take() == (0, lines(140, 150))
    assert feed.take() == (0, [])


def test_held_lines_stay_bounded_and_clear_forgets() -> None:
    now = [0.0]
    feed = LogFeed(keep=10, rate=1000, clock=lambda: now[0])
    for i in range(0, 100, 5):  # a stalled screen: nobody takes
        feed.push(lines(i, i + 5))
    assert len(feed) == 10
    assert feed.take() == (90, lines(90, 100))
    feed.push(lines(0, 3))
    feed.clear()
    assert feed.take() == (0, [])
