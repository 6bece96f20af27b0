"""A small series shared by the seq_models tests."""

from __future__ import annotations

import numpy as np


def ar1_series(n: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    y[0] = 10.0
    for t in range(1, n):  # y_t = 2 + 0.8 y_{t-1} + noise, mean 10
        y[t] = 2.0 + 0.8 * y[t - 1] + rng.normal()
    return y
