"""What the benchmarks print of a list of timings: nearest-rank percentiles, the maximum and the count."""

from __future__ import annotations

from collections.abc import Sequence


def percentiles(
    samples: Sequence[float], ranks: Sequence[int] = (50, 95), *, scale: float = 1.0, digits: int = 3, unit: str = "",
) -> dict[str, float]:
    """``{"p50<unit>": ..., ..., "max<unit>": ..., "n": ...}`` of ``samples`` times ``scale``, rounded to ``digits``.

    The p-th percentile is by nearest rank: the smallest sample with at least p% of the
    samples at or below it (of 20 samples, p95 is the 19th smallest and p50 the 10th), so
    every figure printed is a time that was measured.
    """
    if not samples:
        raise ValueError("no samples to summarize")
    ordered = sorted(samples)
    count = len(ordered)

    def at(rank: int) -> float:
        return ordered[max(0, -(-rank * count // 100) - 1)]  # ceil(rank * count / 100), in integers

    summary: dict[str, float] = {f"p{rank}{unit}": round(at(rank) * scale, digits) for rank in ranks}
    return summary | {f"max{unit}": round(ordered[-1] * scale, digits), "n": count}
