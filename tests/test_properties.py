"""Property-based tests (hypothesis) over shapes, structure counts and presence patterns for the SADAAn network,
loss and label transform, and over sequence lengths for the GRU regressor: finite outputs, documented shapes and
documented errors. Few examples each (tiny networks) to keep the run short."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIZES = st.sampled_from([16, 32])


@SETTINGS
@given(
    d=SIZES, h=SIZES, w=st.just(16), s=st.integers(1, 4), b=st.integers(1, 2), c=st.integers(1, 2),
    seed=st.integers(0, 2**16), threshold=st.floats(0.0, 1.0),
)  # fmt: skip
def test_sadaan_network_shapes_and_ranges(d, h, w, s, b, c, seed, threshold):
    from monai_sadaan import SpatialAttentionMedicalSegmenter

    torch.manual_seed(seed)
    net = SpatialAttentionMedicalSegmenter(
        in_channels=c, num_structures=s, spatial_size=(d, h, w), features=(2, 4, 4, 4, 4), feature_channels=4
    ).eval()
    with torch.no_grad():
        out = net(torch.randn(b, c, d, h, w) * 100, presence_threshold=threshold)
    vol, per = (b, s, d, h, w), (b, s)
    expected = {
        "attention_maps": vol, "feature_responses": vol, "alignment_scores": per, "position_priors": vol,
        "absence_logits": (b, s, 2), "presence_probs": per, "confidence_scores": per, "segmentation_logits": vol,
        "segmentation_probs": vol, "presence_calls": per, "segmentation_masks": vol,
    }  # fmt: skip
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert all(bool(torch.isfinite(v).all()) for v in out.values())
    for k in ("attention_maps", "alignment_scores", "presence_probs", "segmentation_probs"):
        assert float(out[k].min()) >= 0.0 and float(out[k].max()) <= 1.0, k
    assert torch.equal(out["presence_calls"], (out["presence_probs"] >= threshold).float())
    absent = out["presence_calls"] == 0
    assert float(out["segmentation_masks"][absent].abs().sum()) == 0.0  # absent structures have empty masks


@SETTINGS
@given(size=st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40)).filter(lambda t: t != (16, 16, 16)))
def test_sadaan_network_refuses_other_sizes_naming_both(size):
    from monai_sadaan import SpatialAttentionMedicalSegmenter

    net = SpatialAttentionMedicalSegmenter(spatial_size=(16, 16, 16), features=(2, 4, 4, 4, 4), feature_channels=4)
    got = rf"\(1, 1, {size[0]}, {size[1]}, {size[2]}\)"
    with pytest.raises(ValueError, match=rf"expected input of shape \(B, 1, 16, 16, 16\), got {got}"):
        net(torch.zeros(1, 1, *size))


@SETTINGS
@given(
    presence=st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=1, max_size=3),
    scale=st.floats(0.0, 50.0), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_loss_finite_for_any_presence_pattern(presence, scale, seed):
    from monai_sadaan import SpatialAttentionLoss

    g = torch.Generator().manual_seed(seed)
    b, s = len(presence), 3
    pres = torch.tensor(presence, dtype=torch.float32)
    seg = (torch.rand(b, s, 4, 4, 4, generator=g) > 0.5).float() * pres[..., None, None, None]
    outputs = {
        "segmentation_logits": torch.randn(b, s, 4, 4, 4, generator=g) * scale,
        "attention_maps": torch.rand(b, s, 4, 4, 4, generator=g),
        "absence_logits": torch.randn(b, s, 2, generator=g) * scale,
        "confidence_scores": torch.rand(b, s, generator=g),
    }
    for v in outputs.values():
        v.requires_grad_(True)
    parts = SpatialAttentionLoss(["a", "b", "c"])(outputs, {"segmentation_targets": seg, "presence_targets": pres})
    assert "total" in parts and all(p.ndim == 0 and bool(torch.isfinite(p)) for p in parts.values())
    assert all(float(p) >= 0.0 for p in parts.values())
    parts["total"].backward()
    assert all(bool(torch.isfinite(v.grad).all()) for v in outputs.values() if v.grad is not None)


@SETTINGS
@given(
    values=st.lists(st.integers(1, 9), min_size=1, max_size=4, unique=True),
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
    min_voxels=st.integers(1, 5), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_label_map_to_structures_masks_presence_agree(values, shape, min_voxels, seed):
    from monai_sadaan.transforms import LabelMapToStructures

    label = np.random.default_rng(seed).integers(0, 10, size=(1, *shape)).astype(np.int16)
    masks, presence, attention = LabelMapToStructures(values, min_voxels=min_voxels)(label)
    s = len(values)
    assert masks.shape == (s, *shape) and attention.shape == (s, *shape) and presence.shape == (s,)
    for i, v in enumerate(values):
        count = int((label[0] == v).sum())
        assert presence[i] == float(count >= min_voxels)
        np.testing.assert_array_equal(masks[i], (label[0] == v) if count >= min_voxels else 0)
    assert np.isfinite(attention).all() and attention.min() >= 0 and attention.max() <= 1
    assert (attention >= masks).all()


@SETTINGS
@given(
    lengths=st.lists(st.integers(1, 7), min_size=1, max_size=4), extra=st.integers(0, 3), seed=st.integers(0, 2**16)
)
def test_gru_padding_does_not_change_predictions(lengths, extra, seed):
    """Any padding after each sequence's length leaves the prediction unchanged and finite."""
    from seq_models.networks.gru_regression import PaddedGRURegressor

    torch.manual_seed(seed)
    model = PaddedGRURegressor(input_size=3, hidden_size=5, num_layers=2).eval()
    t = max(lengths) + extra
    x = torch.randn(len(lengths), t, 3)
    noisy = x.clone()
    for i, n in enumerate(lengths):
        noisy[i, n:] = 1e3
    lens = torch.tensor(lengths)
    with torch.no_grad():
        a, b = model(x, lens), model(noisy, lens)
    assert a.shape[0] == len(lengths) and bool(torch.isfinite(a).all())
    torch.testing.assert_close(a, b)


@SETTINGS
@given(lengths=st.lists(st.integers(-3, 12), min_size=1, max_size=4).filter(lambda v: min(v) < 1 or max(v) > 8))
def test_gru_lengths_outside_range_are_refused(lengths):
    from seq_models.networks.gru_regression import PaddedGRURegressor

    model = PaddedGRURegressor(input_size=3, hidden_size=5, num_layers=1)
    message = rf"expected every length in \[1, 8\].*got min {min(lengths)} and max {max(lengths)}"
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(len(lengths), 8, 3), torch.tensor(lengths))
