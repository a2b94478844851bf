"""Load level over time (users, or requests per second) as piecewise-linear segments.

The same profile drives both models: closed-loop runs ask `level_at(t)` for a user count; open-loop
runs invert the cumulative level (expected arrivals so far) to place each arrival in time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.spec.load import Shape


@dataclass(frozen=True)
class Segment:
    duration_s: float
    start: float
    end: float

    def level(self, t: float) -> float:
        return self.start + (self.end - self.start) * (t / self.duration_s)

    def area(self, t: float) -> float:
        """Integral of the level from 0 to t (t within the segment)."""
        slope = (self.end - self.start) / self.duration_s
        return self.start * t + slope * t * t / 2

    def inverse(self, x: float) -> float:
        """The t in [0, duration] where area(t) == x (x within the segment's area)."""
        if x <= 0:
            return 0.0
        a = self.start
        slope = (self.end - self.start) / self.duration_s
        if slope == 0:
            return x / a if a > 0 else math.inf
        if slope > 0:  # sqrt(a^2 + 2 slope x) without underflow for a tiny a or x
            return 2 * x / (a + math.hypot(a, math.sqrt(2 * slope) * math.sqrt(x)))
        # x is within the segment's area, so disc >= 0 but for rounding: a segment falling to 0
        # has disc == 0 exactly at its end, which float arithmetic may put a hair below.
        disc = max(0.0, a * a + 2 * slope * x)
        # 2x / (a + sqrt(.)) is the stable form of (-a + sqrt(.)) / slope.
        denom = a + math.sqrt(disc)
        return 2 * x / denom if denom > 0 else math.inf


@dataclass(frozen=True)
class Profile:
    segments: tuple[Segment, ...]

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)

    @property
    def peak(self) -> float:
        return max(max(s.start, s.end) for s in self.segments)

    def level_at(self, t: float) -> float:
        if t < 0:
            return 0.0
        for s in self.segments:
            if t < s.duration_s:
                return s.level(t)
            t -= s.duration_s
        return 0.0

    def cumulative(self, t: float) -> float:
        total = 0.0
        for s in self.segments:
            if t <= s.duration_s:
                return total + s.area(max(t, 0.0))
            total += s.area(s.duration_s)
            t -= s.duration_s
        return total

    def total(self) -> float:
        return self.cumulative(self.duration_s)

    def time_of(self, x: float) -> float | None:
        """When the cumulative level reaches x; None when it never does within the profile."""
        offset = 0.0
        for s in self.segments:
            area = s.area(s.duration_s)
            if x <= area + 1e-9 * max(1.0, area):
                t = s.inverse(x)
                # x is within this segment, so t is too: float rounding (cancellation on a
                # segment falling to 0) may put it past the end, never by more than rounding.
                if math.isfinite(t):
                    return offset + min(t, s.duration_s)
            x -= area
            offset += s.duration_s
        return None


def _segments(parts: list[tuple[float, float, float]]) -> Profile:
    return Profile(tuple(Segment(d, a, b) for d, a, b in parts if d > 1e-9))


def build_profile(shape: Shape, level: float, duration_s: float) -> Profile:
    """The profile of `shape` around `level` (users or req/s) over `duration_s`."""
    d = duration_s
    if shape.kind == "steady":
        return _segments([(d, level, level)])
    if shape.kind == "ramp":
        r = min(shape.ramp_s or d, d)
        return _segments([(r, level * shape.start_fraction, level), (d - r, level, level)])
    if shape.kind == "step":
        k = shape.steps
        return _segments([(d / k, level * (i + 1) / k, level * (i + 1) / k) for i in range(k)])
    # spike
    at = shape.spike_at_s if shape.spike_at_s is not None else d / 3
    length = min(shape.spike_s if shape.spike_s is not None else d / 3, d - at)
    base = level * shape.base_fraction
    peak = level * shape.spike_multiplier
    return _segments([(at, base, base), (length, peak, peak), (d - at - length, base, base)])
