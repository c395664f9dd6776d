"""The cluster file as written: device lists and ranges."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pdtui import cluster as cl


@given(st.lists(st.integers(min_value=0, max_value=63), min_size=1, unique=True))
def test_device_ranges_round_trip(devices: list[int]) -> None:
    devices.sort()
    assert cl.parse_devices(cl.format_devices(devices)) == devices
