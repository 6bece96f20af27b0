"""The history batches of the baselines (:mod:`seq_models.baselines.utils`): one sample or a batch, tensor or array,
checked on the way in and given back in the same form; the baselines refuse alike through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seq_models.baselines import optical_flow_forecast
from seq_models.baselines.utils import as_history_batch, restore_history_batch


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_a_history_goes_in_as_a_batch_and_the_forecast_comes_back_alike(batched, as_tensor):
    values = np.random.default_rng(0).uniform(size=(2, 3, 1, 4, 5)).astype(np.float32)
    values = values if batched else values[0]
    history = torch.from_numpy(values) if as_tensor else values
    arr, single, device = as_history_batch(history, steps=2, min_steps=3)
    assert arr.shape == (2 if batched else 1, 3, 1, 4, 5) and single is not batched
    np.testing.assert_array_equal(arr if batched else arr[0], values)
    assert device == (torch.device("cpu") if as_tensor else None)
    back = restore_history_batch(arr[:, -2:], single, device)
    assert isinstance(back, torch.Tensor) is as_tensor
    np.testing.assert_array_equal(np.asarray(back), values[..., -2:, :, :, :] if batched else values[-2:])


def test_too_few_frames_a_wrong_rank_or_no_steps_are_refused():
    history = np.zeros((1, 1, 4, 5), np.float32)
    with pytest.raises(ValueError, match=r"expected a history \(B, T>=2, C, H, W\) or \(T>=2, C, H, W\), got shape \(1, 1, 4, 5\)"):
        as_history_batch(history, steps=1, min_steps=2)
    with pytest.raises(ValueError, match=r"got shape \(4, 5\)"):
        as_history_batch(history[0, 0], steps=1)
    with pytest.raises(ValueError, match="expected at least one forecast step, got 0"):
        as_history_batch(history, steps=0)
    with pytest.raises(ValueError, match=r"T>=2.*got shape \(1, 1, 4, 5\)"):  # a baseline refuses through it
        optical_flow_forecast(history, 1)
