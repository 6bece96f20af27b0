"""Real series shipped with statsmodels (no network), turned into GRU regression inputs.

:func:`load_statsmodels_series` reads one of the datasets statsmodels bundles with the package (and
:func:`load_statsmodels_exog` the other series of a multivariate one, macrodata);
:class:`SeriesRegressionData` standardises it with training-part statistics and builds per-step features and a
``horizon``-ahead target, split into a training head and a held-out tail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seq_models.data.windows import SlidingWindowDataset

__all__ = [
    "MULTIVARIATE_SERIES", "STATSMODELS_SERIES", "TARGETS", "load_statsmodels_exog", "load_statsmodels_series",
    "SeriesRegressionData",
]

#: name → seasonal period or None
STATSMODELS_SERIES: dict[str, int | None] = {"sunspots": None, "elnino": 12, "nile": None, "co2": 52, "macrodata": None}

#: what the network predicts (see :class:`SeriesRegressionData`)
TARGETS: tuple[str, ...] = ("level", "change", "ar_residual")

#: multivariate datasets: name → (target column, exogenous columns)
MULTIVARIATE_SERIES: dict[str, tuple[str, tuple[str, ...]]] = {"macrodata": ("infl", ("unemp", "tbilrate"))}


def load_statsmodels_series(name: str) -> np.ndarray:
    """A real series as a float64 array [N].

    Args:
        name: ``"sunspots"`` (yearly sunspot activity 1700-2008, 309 values), ``"elnino"`` (monthly sea surface
            temperature 1950-2010, 732 values), ``"nile"`` (yearly Nile flow 1871-1970, 100 values) or ``"co2"``
            (weekly Mauna Loa CO2 1958-2001, 2284 values; its missing weeks linearly interpolated) or
            ``"macrodata"`` (quarterly US inflation, ``infl``, 1959Q1-2009Q3, 203 values; its other series come from
            :func:`load_statsmodels_exog`).

    Raises:
        ValueError: an unknown name.
    """
    import statsmodels.api as sm

    if name == "sunspots":
        y = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
    elif name == "elnino":
        y = sm.datasets.elnino.load_pandas().data.iloc[:, 1:].to_numpy().reshape(-1)
    elif name == "nile":
        y = sm.datasets.nile.load_pandas().data["volume"].to_numpy()
    elif name == "co2":
        y = sm.datasets.co2.load_pandas().data["co2"].interpolate().bfill().to_numpy()
    elif name in MULTIVARIATE_SERIES:
        y = sm.datasets.macrodata.load_pandas().data[MULTIVARIATE_SERIES[name][0]].to_numpy()
    else:
        raise ValueError(f"expected one of {sorted(STATSMODELS_SERIES)}, got {name!r}")
    return np.asarray(y, dtype=np.float64)


def load_statsmodels_exog(name: str) -> np.ndarray | None:
    """The other series of a multivariate dataset, float64 ``[N, E]`` (macrodata: unemployment rate and 3-month
    treasury bill rate, the Phillips-curve companions of inflation), or ``None`` for a univariate one."""
    if name not in MULTIVARIATE_SERIES:
        if name not in STATSMODELS_SERIES:
            raise ValueError(f"expected one of {sorted(STATSMODELS_SERIES)}, got {name!r}")
        return None
    import statsmodels.api as sm

    frame = sm.datasets.macrodata.load_pandas().data
    return frame[list(MULTIVARIATE_SERIES[name][1])].to_numpy(dtype=np.float64)


@dataclass
class SeriesRegressionData:
    """Features, targets and a train / held-out split for one-series regression.

    Features at step t (all standardised with the training part's mean and std):
    ``[z_t, z_t - z_{t-1}]`` plus ``[sin, cos](2 pi t / period)`` when ``period`` is set, plus the exogenous
    series at step t (each standardised with its own training-part mean and std) when ``exog`` is given.
    Target at step t: ``z_{t + horizon}`` (``target="level"``), the change ``z_{t + horizon} - z_t``
    (``target="change"``, for trending series whose tail leaves the training range, such as co2), or the residual of
    a linear AR model's forecast (``target="ar_residual"``, the "AR + network" hybrid): ``(y_{t + horizon} - a_t) /
    std`` where ``a_t`` is the forecast of ``y_{t + horizon}`` made at ``t`` by a
    :class:`~seq_models.baselines.autoregressive.LinearARForecaster` fitted on the training part only (order by AIC,
    up to ``ar_max_order``, as the benchmark's AR baseline; for a series with a ``period``, the seasonal-anomaly AR:
    the head's phase means removed first and added back to the forecast; the target alone, exogenous series are GRU
    inputs only); the standardised forecast ``(a_t - mean) / std`` is then one more feature (after the calendar
    features, before the exogenous series). The last ``horizon`` steps have no target and are never used.
    :meth:`to_values` turns per-step predictions of any kind into raw values.

    Args:
        series: [N] raw values.
        test_size: length of the held-out tail (targets ``N - test_size .. N - 1`` are scored).
        horizon: steps ahead (>= 1).
        period: seasonal period for the calendar features, or ``None``.
        exog: ``[N, E]`` other series observed at the same steps (known at step t when predicting t + horizon),
            or ``None``.
        target: ``"level"``, ``"change"`` or ``"ar_residual"``.
        ar_max_order: largest AR order the AIC selection tries (``target="ar_residual"`` only).
    """

    series: np.ndarray
    test_size: int
    horizon: int = 1
    period: int | None = None
    exog: np.ndarray | None = None
    target: str = "level"
    ar_max_order: int = 30
    mean: float = field(init=False)
    std: float = field(init=False)
    features: np.ndarray = field(init=False)
    targets: np.ndarray = field(init=False)
    ar_forecast: np.ndarray | None = field(init=False, default=None)
    ar_order: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        y = np.asarray(self.series, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError(f"expected a 1-D series, got shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError(f"expected a finite series, got {int((~np.isfinite(y)).sum())} non-finite value(s)")
        if self.target not in TARGETS:
            raise ValueError(f"expected target 'level', 'change' or 'ar_residual', got {self.target!r}")
        if self.horizon < 1:
            raise ValueError(f"expected horizon >= 1, got {self.horizon}")
        if not 1 <= self.test_size < len(y) - self.horizon - 2:
            raise ValueError(
                f"expected test_size in [1, {len(y) - self.horizon - 3}] for {len(y)} values, got {self.test_size}"
            )
        self.series = y
        train = y[: len(y) - self.test_size]
        self.mean, self.std = float(train.mean()), float(train.std()) or 1.0
        z = self.scale(y)
        feats = [z, np.r_[0.0, np.diff(z)]]
        if self.period:
            t = np.arange(len(y))
            feats += [np.sin(2 * np.pi * t / self.period), np.cos(2 * np.pi * t / self.period)]
        if self.target == "ar_residual":
            from seq_models.baselines.autoregressive import LinearARForecaster

            ar = LinearARForecaster(max_order=self.ar_max_order, horizon=self.horizon, period=self.period).fit(train)
            self.ar_order, self.ar_forecast = int(ar.order), ar.forecast_each_step(y)
            feats.append(self.scale(self.ar_forecast))
        if self.exog is not None:
            x = np.asarray(self.exog, dtype=np.float64)
            x = x[:, None] if x.ndim == 1 else x
            if x.ndim != 2 or x.shape[0] != len(y) or not np.isfinite(x).all():
                raise ValueError(f"expected finite exog of shape ({len(y)}, E), got shape {x.shape}")
            head = x[: len(y) - self.test_size]
            std = head.std(axis=0)
            self.exog = x
            feats += list(((x - head.mean(axis=0)) / np.where(std > 0, std, 1.0)).T)
        self.features = np.stack(feats, axis=1).astype(np.float32)
        ahead = np.r_[z[self.horizon :], np.zeros(self.horizon)]
        if self.target == "change":
            ahead = np.r_[z[self.horizon :] - z[: len(z) - self.horizon], np.zeros(self.horizon)]
        elif self.target == "ar_residual":
            base = self.scale(self.ar_forecast)[: len(z) - self.horizon]
            ahead = np.r_[z[self.horizon :] - base, np.zeros(self.horizon)]
        self.targets = ahead.astype(np.float32)

    @property
    def train_end(self) -> int:
        """First step whose target lies in the held-out tail: training uses steps ``< train_end`` only."""
        return len(self.series) - self.test_size - self.horizon

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])

    def scale(self, values: np.ndarray) -> np.ndarray:
        """Raw values → standardised."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std

    def unscale(self, values: np.ndarray) -> np.ndarray:
        """Standardised → raw values."""
        return np.asarray(values, dtype=np.float64) * self.std + self.mean

    def test_truth(self) -> np.ndarray:
        """Raw values of the held-out tail [test_size]."""
        return self.series[-self.test_size :]

    def to_values(self, per_step_prediction: np.ndarray) -> np.ndarray:
        """Raw values of ``series[t + horizon]`` from the network's per-step outputs [N] (standardised levels;
        changes added to ``z_t`` for ``target="change"``; residuals, in units of the training std, added to the AR
        forecast for ``target="ar_residual"``)."""
        p = np.asarray(per_step_prediction, dtype=np.float64)
        if p.shape != (len(self.series),):
            raise ValueError(f"expected one prediction per step, shape ({len(self.series)},), got {p.shape}")
        if self.target == "change":
            p = p + self.scale(self.series)
        elif self.target == "ar_residual":
            return self.ar_forecast + p * self.std
        return self.unscale(p)

    def test_predictions(self, per_step_prediction: np.ndarray) -> np.ndarray:
        """From per-step network outputs [N] (see :meth:`to_values`), those whose target is the tail; raw units."""
        return self.to_values(per_step_prediction)[self.train_end : self.train_end + self.test_size]

    @classmethod
    def from_statsmodels(
        cls, name: str, test_size: int, horizon: int = 1, period: int | None = -1, target: str = "level",
        ar_max_order: int = 30,
    ) -> SeriesRegressionData:
        """Load ``name`` with :func:`load_statsmodels_series` (and its exogenous series, for macrodata);
        ``period=-1`` takes the dataset's own period."""
        if period == -1:
            period = STATSMODELS_SERIES.get(name)
        return cls(
            load_statsmodels_series(name), test_size=test_size, horizon=horizon, period=period,
            exog=load_statsmodels_exog(name), target=target, ar_max_order=ar_max_order,
        )

    def train_windows(self, window: int, stride: int, val_size: int = 0) -> SlidingWindowDataset:
        """Training windows (dict items) over steps ``[0, train_end - val_size)``; a short tail window is padded."""
        end = self.train_end - val_size
        if end < window:
            raise ValueError(f"expected at least window = {window} training steps, got {end}")
        return SlidingWindowDataset(
            self.features[:end], window, stride=stride, targets=self.targets[:end], drop_last=False, as_dict=True
        )

    def val_windows(self, window: int, val_size: int) -> SlidingWindowDataset:
        """Validation windows over the last ``val_size`` training steps, each with ``window // 2`` steps of lead-in
        before it (the lead-in's targets are inside the training range and also counted)."""
        if not 1 <= val_size < self.train_end - window:
            raise ValueError(f"expected val_size in [1, {self.train_end - window - 1}], got {val_size}")
        start = max(0, self.train_end - val_size - window // 2)
        feats, tg = self.features[start : self.train_end], self.targets[start : self.train_end]
        return SlidingWindowDataset(
            feats, min(window, len(feats)), stride=max(1, window // 2), targets=tg, drop_last=False, as_dict=True
        )
