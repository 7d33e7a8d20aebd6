"""95% bootstrap intervals over probes (numpy): resample the probes with replacement, recompute the
statistic, take the 2.5th and 97.5th percentiles.

Every statistic here is a function of the column sums of a per-probe table (one row a probe), so
one vectorised resampling serves means (one column), ratios of sums (markers per 100 characters:
markers, characters) and marker diversity (one column a marker).
"""

from __future__ import annotations

from typing import Callable, Sequence

RESAMPLES = 2000

Statistic = Callable[["object", int], "object"]   # (sums: resamples x columns, probes) -> one value a resample


def mean(sums, n):
    return sums[:, 0] / n


def ratio(scale: float = 1.0) -> Statistic:
    def statistic(sums, n):
        import numpy as np

        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sums[:, 1] > 0, scale * sums[:, 0] / np.where(sums[:, 1] > 0, sums[:, 1], 1), np.nan)
    return statistic


def diversity(sums, n):
    """Distinct markers used / marker uses (1: every use a different marker; near 0: one catch-phrase)."""
    import numpy as np

    used = sums.sum(axis=1)
    return np.where(used > 0, (sums > 0).sum(axis=1) / np.where(used > 0, used, 1), np.nan)


def interval(rows: Sequence[Sequence[float]] | Sequence[float], statistic: Statistic = mean, *, seed: int = 0,
             resamples: int = RESAMPLES) -> dict | None:
    """{"mean", "low", "high", "n"} of `statistic` over the probe rows; None when there are none
    (or the statistic is undefined on the whole sample, e.g. no marker was ever used)."""
    import numpy as np

    table = np.asarray(rows, dtype=float)
    if table.size == 0:
        return None
    table = table.reshape(len(table), -1)
    n = len(table)
    point = float(statistic(table.sum(axis=0)[None, :], n)[0])
    if np.isnan(point):
        return None
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    values = statistic(table[picks].sum(axis=1), n)
    values = values[~np.isnan(values)]
    low, high = np.percentile(values, [2.5, 97.5]) if len(values) else (point, point)
    return {"mean": point, "low": float(low), "high": float(high), "n": n}
