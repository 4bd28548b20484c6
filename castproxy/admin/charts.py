"""The admin page's small charts, as geometry for inline SVG (no script, nothing loaded from elsewhere).

One chart per tool: the last 60 minutes, a bar per minute for its calls (the failed part darker) and a
line for the mean latency of that minute, each scaled to its own maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

from castproxy.observe.stats import Minute

__all__ = ["chart"]

WIDTH = 240
HEIGHT = 48
PAD = 2


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    calls_y: float
    calls_height: float
    errors_y: float
    errors_height: float
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    latency: str  # SVG polyline points ("" when no call in the hour)
    peak_calls: int
    peak_ms: float


def chart(minutes: list[Minute]) -> Chart:
    count = max(1, len(minutes))
    step = (WIDTH - 2 * PAD) / count
    inner = HEIGHT - 2 * PAD
    peak_calls = max((m.calls for m in minutes), default=0)
    means = [m.seconds * 1000 / m.calls if m.calls else None for m in minutes]
    peak_ms = max((value for value in means if value is not None), default=0.0)
    bars = []
    points = []
    for index, (minute, mean) in enumerate(zip(minutes, means, strict=True)):
        x = PAD + index * step
        if minute.calls:
            height = inner * minute.calls / peak_calls
            errors = inner * minute.errors / peak_calls
            ago = len(minutes) - 1 - index
            title = (f"{minute.calls} call{'s' if minute.calls != 1 else ''}, {minute.errors} failed, "
                     f"mean {mean or 0:.1f} ms, {ago} min ago")
            bars.append(Bar(round(x, 2), round(max(step - 1, 1), 2), round(PAD + inner - height, 2),
                            round(height, 2), round(PAD + inner - errors, 2), round(errors, 2), title))
        if mean is not None and peak_ms > 0:
            points.append(f"{x + step / 2:.1f},{PAD + inner - inner * mean / peak_ms:.1f}")
    return Chart(WIDTH, HEIGHT, tuple(bars), " ".join(points), peak_calls, round(peak_ms, 1))
