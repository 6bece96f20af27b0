"""The GRU regressors (:mod:`seq_models.networks.gru_regression`): seed 000's torchinfo tables, builders, batch
norm over valid steps only, the single-step and folded models equal to the batch model and scripted, bad input,
the zero head."""

from __future__ import annotations

import io

import pytest
import torch
from torchinfo import summary

from seq_models import (
    PaddedGRURegressor,
    PaddedLSTMRegression,
    SingleStepGRURegressor,
    SingleStepLSTMRegression,
    gru_regressor_large,
    gru_regressor_small,
)
from seq_models.data.series import SeriesRegressionData
from seq_models.inferers.streaming import run_single_step
from seq_models.networks.gru_regression import FoldedGRUStep
from tests.seq_models.small_models import trained_stats
from tests.seq_models.small_series import ar1_series
from tests.seq_models.torchinfo_rows import summary_rows, table_rows

# Seed 000's four tables (torchinfo 1.8.0); only the units label of the mult-adds line is normalised.
SMALL_BATCH = """
PaddedLSTMRegression                     [4, 5]                    --
├─BatchNorm1d: 1-1                       [20, 10]                  20
├─GRU: 1-2                               [4, 5, 64]                39,552
├─Linear: 1-3                            [4, 5, 1]                 65
Total params: 39,637
Trainable params: 39,637
Non-trainable params: 0
Total mult-adds (M): 0.79
Input size (MB): 0.00
Forward/backward pass size (MB): 0.01
Params size (MB): 0.16
Estimated Total Size (MB): 0.17
"""
SMALL_STEP = """
SingleStepLSTMRegression                 [4, 1]                    --
├─BatchNorm1d: 1-1                       [4, 10]                   20
├─GRU: 1-2                               [4, 1, 64]                39,552
├─Linear: 1-3                            [4, 1]                    65
Total params: 39,637
Trainable params: 39,637
Non-trainable params: 0
Total mult-adds (M): 0.16
Input size (MB): 0.00
Forward/backward pass size (MB): 0.00
Params size (MB): 0.16
Estimated Total Size (MB): 0.16
"""
LARGE_BATCH = """
PaddedLSTMRegression                     [1, 4000]                 --
├─BatchNorm1d: 1-1                       [4000, 148]               296
├─GRU: 1-2                               [1, 4000, 128]            304,896
├─Linear: 1-3                            [1, 4000, 1]              129
Total params: 305,321
Trainable params: 305,321
Non-trainable params: 0
Total mult-adds (G): 1.22
Input size (MB): 2.37
Forward/backward pass size (MB): 8.86
Params size (MB): 1.22
Estimated Total Size (MB): 12.45
"""
LARGE_STEP = """
SingleStepLSTMRegression                 [1, 1]                    --
├─BatchNorm1d: 1-1                       [1, 148]                  296
├─GRU: 1-2                               [1, 1, 128]               304,896
├─Linear: 1-3                            [1, 1]                    129
Total params: 305,321
Trainable params: 305,321
Non-trainable params: 0
Total mult-adds (M): 0.31
Input size (MB): 2.37
Forward/backward pass size (MB): 0.00
Params size (MB): 1.22
Estimated Total Size (MB): 3.59
"""


def test_small_tables_match_seed():
    x = torch.randn(4, 5, 10)
    batch = PaddedLSTMRegression(10, 64, 2)
    got = summary_rows(summary(batch, input_data=(x, torch.full((4,), 5)), device="cpu", verbose=0))
    assert got == table_rows(SMALL_BATCH)
    step = SingleStepLSTMRegression(10, 64, 2)
    got = summary_rows(summary(step, input_data=(x[:, 0], step.init_hidden(4)), device="cpu", verbose=0))
    assert got == table_rows(SMALL_STEP)


@pytest.mark.slow
def test_large_tables_match_seed():
    x = torch.randn(1, 4000, 148)
    batch = PaddedLSTMRegression(148, 128, 3)
    got = summary_rows(summary(batch, input_data=(x, torch.tensor([4000])), device="cpu", verbose=0))
    assert got == table_rows(LARGE_BATCH)
    step = SingleStepLSTMRegression(148, 128, 3)
    # the seed fed x[:, 0], a view of the whole series, hence its 2.37 MB input size
    got = summary_rows(summary(step, input_data=(x[:, 0], step.init_hidden(1)), device="cpu", verbose=0))
    assert got == table_rows(LARGE_STEP)


def test_builders_and_aliases():
    small, large = gru_regressor_small(), gru_regressor_large(single_step=True)
    assert isinstance(small, PaddedGRURegressor) and isinstance(large, SingleStepGRURegressor)
    assert sum(p.numel() for p in small.parameters()) == 39_637
    assert sum(p.numel() for p in large.parameters()) == 305_321
    assert (large.input_size, large.hidden_size, large.num_layers) == (148, 128, 3)
    assert issubclass(PaddedLSTMRegression, PaddedGRURegressor)
    assert issubclass(SingleStepLSTMRegression, SingleStepGRURegressor)


def test_batch_norm_sees_valid_steps_only():
    model = PaddedGRURegressor(3, 8, 1)
    model.batch_norm.momentum = 1.0  # running stats = statistics of the last batch
    x = torch.randn(3, 6, 3) * 2 + 4
    lengths = torch.tensor([6, 2, 4])
    x_padded = x.clone()
    for b, n in enumerate(lengths.tolist()):
        x_padded[b, n:] = 1e6  # huge padding would wreck the statistics if it leaked in
    model.train()
    y = model(x_padded, lengths)
    valid = torch.cat([x[b, :n] for b, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(model.batch_norm.running_mean, valid.mean(0))
    torch.testing.assert_close(model.batch_norm.running_var, valid.var(0, unbiased=True))
    assert y.shape == (3, 6)
    assert torch.all(y[1, 2:] == 0) and torch.all(y[2, 4:] == 0)
    # padded batch equals each sequence run alone (eval mode)
    model.eval()
    with torch.no_grad():
        y_batch = model(x_padded, lengths)
        for b, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(y_batch[b, :n], model(x[b : b + 1, :n])[0], atol=1e-6, rtol=1e-5)


def test_single_step_reproduces_batch_with_random_lengths():
    gen = torch.Generator().manual_seed(3)
    model = trained_stats(PaddedGRURegressor(5, 16, 2), 5)
    step = SingleStepGRURegressor(5, 16, 2)
    step.load_state_dict(model.state_dict())  # unchanged state dict
    step.eval()
    x = torch.randn(5, 12, 5, generator=gen) * 3 + 1.5
    lengths = torch.randint(1, 13, (5,), generator=gen)
    lengths[0] = 12
    with torch.no_grad():
        y_batch = model(x, lengths)
        y_step, h = run_single_step(step, x)
    assert h.shape == (2, 5, 16)
    for b, n in enumerate(lengths.tolist()):
        assert (y_step[b, :n] - y_batch[b, :n]).abs().max() <= 1e-5


def test_from_batch_model_and_init_hidden():
    model = trained_stats(PaddedGRURegressor(4, 8, 3), 4)
    step = SingleStepGRURegressor.from_batch_model(model)
    assert not step.training
    h = step.init_hidden(2)
    assert h.shape == (3, 2, 8) and torch.all(h == 0)
    y, h2 = step(torch.randn(2, 4), h)
    assert y.shape == (2, 1) and h2.shape == (3, 2, 8)


def test_torchscript_export_equal():
    model = trained_stats(PaddedGRURegressor(4, 8, 2), 4)
    step = SingleStepGRURegressor.from_batch_model(model)
    scripted = torch.jit.script(step)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    x = torch.randn(2, 9, 4) * 3 + 1.5
    with torch.no_grad():
        y_ref, h_ref = run_single_step(step, x)
        y_ts, h_ts = run_single_step(loaded, x)
    torch.testing.assert_close(y_ts, y_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(h_ts, h_ref, atol=1e-6, rtol=0)


def test_folded_step_equals_single_step_and_scripts():
    model = trained_stats(PaddedGRURegressor(6, 10, 3), 6)
    with torch.no_grad():
        model.batch_norm.weight.uniform_(0.5, 2.0)
        model.batch_norm.bias.uniform_(-1.0, 1.0)
    step = SingleStepGRURegressor.from_batch_model(model)
    folded = FoldedGRUStep.from_model(model)
    x = torch.randn(3, 11, 6) * 3 + 1.5
    with torch.no_grad():
        y_ref, _ = run_single_step(step, x)
        y_fold, _ = run_single_step(folded, x)
        y_ts, _ = run_single_step(torch.jit.script(folded), x)
    assert (y_fold - y_ref).abs().max() <= 1e-5
    assert (y_ts - y_ref).abs().max() <= 1e-5


class TestBadInput:
    model = PaddedGRURegressor(4, 8, 2)
    step = SingleStepGRURegressor(4, 8, 2)

    def test_length_above_t(self):
        with pytest.raises(ValueError, match=r"expected every length in \[1, 5\].*got min 2 and max 6"):
            self.model(torch.randn(2, 5, 4), torch.tensor([6, 2]))

    def test_length_below_one(self):
        with pytest.raises(ValueError, match=r"expected every length in \[1, 5\].*got min 0"):
            self.model(torch.randn(2, 5, 4), torch.tensor([0, 2]))

    def test_lengths_shape_and_dtype(self):
        with pytest.raises(ValueError, match=r"expected lengths of shape \(2,\)"):
            self.model(torch.randn(2, 5, 4), torch.tensor([5, 2, 1]))
        with pytest.raises(TypeError, match="expected integer lengths"):
            self.model(torch.randn(2, 5, 4), torch.tensor([5.0, 2.0]))

    def test_feature_count(self):
        with pytest.raises(ValueError, match=r"expected 4 features per step .* got 3"):
            self.model(torch.randn(2, 5, 3), torch.tensor([5, 2]))
        with pytest.raises(ValueError, match=r"expected one step of shape \[B, 4\], got \[2, 3\]"):
            self.step(torch.randn(2, 3), self.step.init_hidden(2))

    def test_rank(self):
        with pytest.raises(ValueError, match=r"expected padded features of shape \[B, T, 4\], got \(5, 4\)"):
            self.model(torch.randn(5, 4))

    def test_nan_features(self):
        x = torch.randn(2, 5, 4)
        x[0, 1, 2] = float("nan")
        with pytest.raises(ValueError, match="expected finite features in the valid steps, got NaN"):
            self.model(x, torch.tensor([5, 2]))
        x[0, 1, 2] = 0.0
        x[1, 4, 0] = float("nan")  # NaN in the padding is ignored
        assert torch.isfinite(self.model(x, torch.tensor([5, 2]))).all()
        with pytest.raises(ValueError, match="NaN"):
            self.step(torch.full((1, 4), float("nan")), self.step.init_hidden(1))

    def test_hidden_shape(self):
        with pytest.raises(ValueError, match=r"expected a hidden state of shape \[2, 3, 8\], got \[2, 1, 8\]"):
            self.step(torch.randn(3, 4), self.step.init_hidden(1))

    @pytest.mark.parametrize("scripted", [False, True])
    def test_folded_step_refuses_as_the_single_step(self, scripted):
        """One check (``check_gru_step``) serves both single-step models, plain and scripted."""
        folded = FoldedGRUStep.from_model(self.model.eval())
        folded = torch.jit.script(folded) if scripted else folded
        bad = [
            (torch.randn(2, 3), folded.init_hidden(2)),
            (torch.randn(3, 4), folded.init_hidden(1)),
            (torch.full((1, 4), float("nan")), folded.init_hidden(1)),
        ]
        for x_t, h in bad:
            with pytest.raises(ValueError) as step_error:
                self.step(x_t, h)
            with pytest.raises(Exception) as folded_error:
                folded(x_t, h)
            assert str(step_error.value) in str(folded_error.value)

    def test_run_single_step_refuses_a_step_for_a_series(self):
        with pytest.raises(ValueError, match=r"expected a sequence of shape \[B, T, F\], got \[2, 4\]"):
            run_single_step(self.step, torch.randn(2, 4))


@pytest.mark.parametrize("target", ["level", "change", "ar_residual"])
def test_zero_head_predicts_zero(target):
    data = SeriesRegressionData(ar1_series(60), test_size=10, target=target)
    net = PaddedGRURegressor(data.num_features, 4, 1, zero_head=True).eval()
    with torch.no_grad():
        out = net(torch.as_tensor(data.features)[None])[0]
    assert torch.count_nonzero(out) == 0
