"""The GRU streaming inferer (:mod:`seq_models.inferers.streaming`): ticks equal to the batch model on the torch and
native backends, bad ticks refused without touching the state, the fallback without a compiler."""

from __future__ import annotations

import pytest
import torch

from seq_models import PaddedGRURegressor
from seq_models.inferers.streaming import GRUStreamingInferer
from tests.seq_models.small_models import trained_stats


def _native_available() -> bool:
    from seq_models.inferers.native import load_gru_tick_library

    return load_gru_tick_library() is not None


@pytest.mark.parametrize("batch_size,backend", [(1, "torch"), (3, "torch"), (1, "native")])
def test_streaming_inferer_equals_batch_model(batch_size, backend):
    if backend == "native" and not _native_available():
        pytest.skip("no C compiler for the native GRU tick")
    model = trained_stats(PaddedGRURegressor(6, 72, 3), 6)  # 3 * 72 = 216: vector blocks plus a scalar remainder
    x = torch.randn(batch_size, 15, 6) * 3 + 1.5
    with torch.no_grad():
        y_batch = model(x)
    streamer = GRUStreamingInferer(model, batch_size=batch_size, backend=backend)
    assert streamer.backend == backend
    y_stream = streamer.run(x)
    assert (y_stream - y_batch).abs().max() <= 1e-5
    # tick API continues from the carried state; reset starts over
    streamer.reset()
    first = streamer.step(x[:, 0]).clone()
    torch.testing.assert_close(first[:, 0], y_batch[:, 0], atol=1e-5, rtol=0)
    assert streamer.hidden.shape == (3, batch_size, 72)


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_streaming_inferer_refuses_bad_ticks_without_touching_state(backend):
    if backend == "native" and not _native_available():
        pytest.skip("no C compiler for the native GRU tick")
    model = trained_stats(PaddedGRURegressor(4, 8, 2), 4)
    streamer = GRUStreamingInferer(model, backend=backend)
    streamer.step(torch.randn(4))
    before = streamer.hidden
    with pytest.raises(ValueError, match=r"expected one tick of shape \[1, 4\], got \[1, 5\]"):
        streamer.step(torch.randn(1, 5))
    with pytest.raises(ValueError, match="NaN"):
        streamer.step(torch.tensor([1.0, float("nan"), 0.0, 0.0]))
    torch.testing.assert_close(streamer.hidden, before)
    with pytest.raises(ValueError, match=r"expected a hidden state of shape \[2, 1, 8\], got \[2, 8\]"):
        streamer.reset(torch.zeros(2, 8))
    # a restored state continues exactly like the original stream
    x = torch.randn(4)
    y_a = streamer.step(x).clone()
    streamer.reset(before)
    streamer.step(torch.randn(4))
    streamer.reset(before)
    torch.testing.assert_close(streamer.step(x), y_a)


def test_streaming_falls_back_to_torch_without_a_compiler(monkeypatch):
    import seq_models.inferers.native as native

    monkeypatch.setattr(native, "load_gru_tick_library", lambda: None)
    model = trained_stats(PaddedGRURegressor(4, 8, 2), 4)
    assert GRUStreamingInferer(model).backend == "torch"
    with pytest.raises(RuntimeError, match="expected a working C compiler"):
        GRUStreamingInferer(model, backend="native")
    with pytest.raises(ValueError, match="expected batch_size 1, float32 and CPU for the native backend"):
        GRUStreamingInferer(model, batch_size=2, backend="native")
    with pytest.raises(ValueError, match="expected backend 'auto', 'native' or 'torch', got 'gpu'"):
        GRUStreamingInferer(model, backend="gpu")
