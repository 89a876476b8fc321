"""benchmarks/common.py's block timer: blocks alternate between the functions, each block runs a
function ``calls_per_block`` times and waits once, and the result is milliseconds per call."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import common  # noqa: E402


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_block_ms_alternates_blocks_and_divides_by_the_calls(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(common.time, "perf_counter", clock.perf_counter)
    order: list[str] = []
    waits: list[str] = []

    def work(name: str, seconds: float):
        def call() -> str:
            order.append(name)
            clock.now += seconds
            return name

        return call

    times = common.block_ms(
        {"a": work("a", 0.003), "b": work("b", 0.005)},
        calls_per_block=4,
        blocks=3,
        sync=waits.append,
    )
    assert times == {"a": pytest.approx([3.0] * 3), "b": pytest.approx([5.0] * 3)}
    # one warm-up block each, then the timed blocks in turn: a a a a b b b b a a a a ...
    assert order == (["a"] * 4 + ["b"] * 4) * 4
    assert waits == ["a", "b"] * 4  # one wait per block, on its last call's result
