"""Side-by-side timing: the contenders run interleaved in one process (A, B, A, B, ...) and each
gets the median of its rounds, so load from other processes on a shared machine falls on all
sides alike. Ratios are what the benchmarks record; absolute times are only indicative."""

import statistics
import time
from collections.abc import Callable


def interleaved_medians(contenders: dict[str, Callable[[], object]], rounds: int, warmup: bool = True) -> dict[str, float]:
    """Median seconds per call of each contender over `rounds` interleaved rounds."""
    if warmup:
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def record_ratios(benchmark, medians: dict[str, float], ours: str = "ours", label: str = "") -> dict[str, float]:
    """extra_info: each contender's median seconds and speedup_vs_<name> = theirs / ours; printed
    too (visible with -s)."""
    info = {f"{name}_s": s for name, s in medians.items()}
    info.update({f"speedup_vs_{name}": s / medians[ours] for name, s in medians.items() if name != ours})
    benchmark.extra_info.update(info)
    print(f"\n{label}: " + ", ".join(f"{k} {v:.3g}" for k, v in info.items()))
    return info
