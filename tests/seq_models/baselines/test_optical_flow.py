"""The optical-flow baseline (:mod:`seq_models.baselines.optical_flow`) on a moving blob."""

from __future__ import annotations

import numpy as np
import pytest

from seq_models.baselines import optical_flow_forecast


def test_optical_flow_extrapolates_a_moving_blob():
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)

    def blob(cx: float) -> np.ndarray:
        return np.exp(-((yy - 24) ** 2 + (xx - cx) ** 2) / (2 * 5.0**2)).astype(np.float32)

    history = np.stack([np.stack([blob(10 + 2 * t)] * 2) for t in range(3)])  # 2 px/step to the right
    out = optical_flow_forecast(history, 3)
    assert out.shape == (3, 2, 48, 48)
    for k in range(3):
        truth = blob(14 + 2 * (k + 1))
        flow_err = np.abs(out[k, 0] - truth).mean()
        persist_err = np.abs(history[-1, 0] - truth).mean()
        assert flow_err < 0.5 * persist_err
        assert abs(np.unravel_index(out[k, 0].argmax(), out[k, 0].shape)[1] - (14 + 2 * (k + 1))) <= 1
    with pytest.raises(ValueError, match="expected method"):
        optical_flow_forecast(history, 1, method="lk")
