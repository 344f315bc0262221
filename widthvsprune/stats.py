"""Statistics over seeds (pure: NumPy and SciPy, no TensorFlow)."""

import math

import numpy as np
from scipy import stats as _stats


def summary(values, confidence=0.95):
    """Mean, sample std, n and a Student's t interval of the mean.

    With one value the interval is that value's point (std and half-width NaN).

    Returns:
        A dict ``mean, std, n, ci_low, ci_high``.
    """
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(values.size)
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "n": 0, "ci_low": nan, "ci_high": nan}
    mean = float(values.mean())
    if n == 1:
        return {"mean": mean, "std": float("nan"), "n": 1, "ci_low": float("nan"), "ci_high": float("nan")}
    std = float(values.std(ddof=1))
    half = float(_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci_low": mean - half, "ci_high": mean + half}


def welch_interval(a, b, confidence=0.95):
    """Welch's interval for ``mean(a) - mean(b)``; ``(nan, nan)`` with fewer than 2 each.

    Uses the Welch–Satterthwaite degrees of freedom. When both samples have
    zero variance the interval is the difference itself.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        return float("nan"), float("nan")
    delta = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return delta, delta
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(_stats.t.ppf(0.5 + confidence / 2, df)) * se
    return delta - half, delta + half


def verdict(pruned, narrow, tie_margin=0.005, confidence=0.95):
    """Who wins at one size: ``"pruned"``, ``"narrow"`` or ``"tie"``.

    The rule: with at least two seeds on each side, a side wins only when the
    Welch interval of ``mean(pruned) - mean(narrow)`` excludes zero; otherwise
    (one seed) a side wins when the difference exceeds ``tie_margin``.

    Returns:
        ``(verdict, delta, ci_low, ci_high)``.
    """
    pruned = [v for v in pruned if v is not None and math.isfinite(v)]
    narrow = [v for v in narrow if v is not None and math.isfinite(v)]
    if not pruned or not narrow:
        return "no-data", float("nan"), float("nan"), float("nan")
    delta = float(np.mean(pruned) - np.mean(narrow))
    low, high = welch_interval(pruned, narrow, confidence)
    if math.isfinite(low):
        if low > 0:
            return "pruned", delta, low, high
        if high < 0:
            return "narrow", delta, low, high
        return "tie", delta, low, high
    if delta > tie_margin:
        return "pruned", delta, low, high
    if delta < -tie_margin:
        return "narrow", delta, low, high
    return "tie", delta, low, high


def pareto_flags(sizes, scores):
    """True for each point that no other point beats: smaller-or-equal and more accurate,
    or smaller and at least as accurate."""
    sizes = np.asarray(sizes, dtype=float)
    scores = np.asarray(scores, dtype=float)
    flags = []
    for i in range(sizes.size):
        dominated = np.any(
            ((sizes <= sizes[i]) & (scores > scores[i])) | ((sizes < sizes[i]) & (scores >= scores[i]))
        )
        flags.append(not bool(dominated))
    return flags
