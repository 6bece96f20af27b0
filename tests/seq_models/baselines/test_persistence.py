"""The persistence baseline (:mod:`seq_models.baselines.persistence`)."""

from __future__ import annotations

import torch

from seq_models.baselines import persistence_forecast


def test_persistence_repeats_the_last_frame():
    history = torch.rand(2, 4, 3, 5, 6)
    out = persistence_forecast(history, 3)
    assert out.shape == (2, 3, 3, 5, 6)
    for k in range(3):
        torch.testing.assert_close(out[:, k], history[:, -1])
    assert persistence_forecast(history[0].numpy(), 2).shape == (2, 3, 5, 6)
