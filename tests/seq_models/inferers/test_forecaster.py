"""The autoregressive forecaster (:mod:`seq_models.inferers.forecaster`): k calls with detached, clamped previous
predictions, gradients per step in training mode, bad input."""

from __future__ import annotations

import pytest
import torch

from seq_models.inferers import AutoregressiveForecaster, TiledForecaster
from seq_models.networks.iam4vp import IAM4VP
from tests.seq_models.small_models import small_iam4vp


class Recorder(torch.nn.Module):
    """Wraps a model and records what each call received."""

    def __init__(self, model: IAM4VP) -> None:
        super().__init__()
        self.model, self.calls = model, []
        self.shape_in = model.shape_in

    def forward(self, x, previous, t):
        self.calls.append((x.clone(), [p.clone() for p in previous], t.clone()))
        return self.model(x, previous, t)


def test_forecaster_calls_the_model_k_times_with_detached_clamped_previous_predictions():
    rec = Recorder(small_iam4vp())
    history = torch.rand(2, 5, 2, 16, 24)
    history[0, -1, 1, 3, 4] = float("nan")
    out = AutoregressiveForecaster(steps=3)(history, rec)
    assert out.shape == (2, 3, 2, 16, 24)
    assert out.min() >= 0 and out.max() <= 1
    assert [len(c[1]) for c in rec.calls] == [0, 1, 2]
    assert [c[2].tolist() for c in rec.calls] == [[0.0, 0.0], [100.0, 100.0], [200.0, 200.0]]
    x0 = rec.calls[0][0]
    assert x0.shape == (2, 3, 2, 16, 24)  # the last T of the 5 history frames
    torch.testing.assert_close(x0[1], history[1, -3:])
    assert x0[0, -1, 1, 3, 4] == 0 and not torch.isnan(x0).any()  # NaN set to 0
    # previous prediction k fed to call k+1 is output k (clamped)
    torch.testing.assert_close(rec.calls[2][1][0], out[:, 0])
    torch.testing.assert_close(rec.calls[2][1][1], out[:, 1])


def test_training_mode_forecaster_keeps_gradients_per_step_only():
    model = small_iam4vp().train()
    history = torch.rand(1, 3, 2, 16, 24, requires_grad=True)
    out = AutoregressiveForecaster(steps=2, clamp_output=False)(history, model)
    assert out.requires_grad
    (g_forecaster,) = torch.autograd.grad(out[:, 1].sum(), history)
    # by hand: the first prediction enters the second call detached
    p0 = model(history, [], torch.tensor([0.0])).detach().clamp(0, 1)
    (g_detached,) = torch.autograd.grad(model(history, [p0], torch.tensor([100.0])).sum(), history)
    p0_attached = model(history, [], torch.tensor([0.0])).clamp(0, 1)
    (g_attached,) = torch.autograd.grad(model(history, [p0_attached], torch.tensor([100.0])).sum(), history)
    torch.testing.assert_close(g_forecaster, g_detached)
    assert not torch.allclose(g_forecaster, g_attached)


@pytest.mark.parametrize(
    "shape, steps, message",
    [
        ((1, 3, 5, 16, 24), 2, "expected 2 channels, got 5"),
        ((1, 2, 2, 16, 24), 2, "expected a history of at least 3 steps, got 2"),
        ((1, 3, 2, 16, 24), 4, "expected 1 <= forecast steps <= 3 .* got 4"),
        ((3, 2, 16, 24), 1, "expected a history of shape \\(B, T, C, H, W\\)"),
    ],
)
def test_forecaster_bad_input(shape, steps, message):
    model = small_iam4vp()
    for forecaster in (AutoregressiveForecaster(steps=steps), TiledForecaster(steps=steps)):
        with pytest.raises(ValueError, match=message):
            forecaster(torch.rand(*shape), model)


def test_forecaster_rejects_all_nan_frames():
    history = torch.rand(2, 3, 2, 16, 24)
    history[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"all-NaN frame \(sample 1, step 2"):
        AutoregressiveForecaster(steps=1)(history, small_iam4vp())


def test_both_forecasters_read_the_model_geometry_in_one_place_through_a_wrapper():
    from seq_models.inferers.forecaster import model_geometry, model_shape_in

    model = small_iam4vp()
    wrapped = torch.nn.DataParallel(model)  # holds it as .module
    assert model_shape_in(wrapped) == model_shape_in(model) == tuple(int(v) for v in model.shape_in)
    assert model_geometry(wrapped) == model_shape_in(model)[:2]
    history = torch.rand(1, *model.shape_in)
    with torch.no_grad():
        torch.testing.assert_close(TiledForecaster(steps=2)(history, wrapped), TiledForecaster(steps=2)(history, model))
    for forecaster in (AutoregressiveForecaster(steps=2), TiledForecaster(steps=2)):
        with pytest.raises(TypeError, match=r"expected an IAM4VP network \(with .shape_in = \(T, C, H, W\)\), got Linear"):
            forecaster(history, torch.nn.Linear(2, 2))
