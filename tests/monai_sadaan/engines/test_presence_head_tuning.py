from __future__ import annotations

import pytest
import torch

from monai_sadaan import SpatialAttentionLoss, SpatialAttentionMedicalSegmenter
from monai_sadaan.engines.model_setup import PresenceHeadTuning

TINY = dict(num_structures=3, spatial_size=(16, 16, 16), features=(2, 4, 4, 4, 4), feature_channels=4)


def _trained_like_model() -> SpatialAttentionMedicalSegmenter:
    torch.manual_seed(0)
    model = SpatialAttentionMedicalSegmenter(**TINY)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics away from their initial values
            model(torch.randn(2, 1, 16, 16, 16) * 2 + 1)
    return model


def test_only_the_head_learns_and_batchnorm_statistics_stay():
    model = _trained_like_model()
    wrapper = PresenceHeadTuning(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head = {id(p) for p in model.absence_detector.parameters()}
    assert {id(p) for p in wrapper.trainable_parameters()} == head
    optimizer = torch.optim.AdamW(wrapper.trainable_parameters(), lr=1e-2)
    loss = SpatialAttentionLoss(["a", "b", "c"])
    targets = {
        "segmentation_targets": (torch.rand(2, 3, 16, 16, 16) > 0.8).float(),
        "presence_targets": torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),
    }
    wrapper.train()
    assert model.absence_detector.training and not model.encoder.training
    optimizer.zero_grad()
    loss(wrapper(torch.randn(2, 1, 16, 16, 16)), targets)["total"].backward()
    optimizer.step()
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("absence_detector.") for k in changed), sorted(changed)
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("absence_detector."))


def test_training_mode_sees_the_eval_features():
    model = _trained_like_model()
    x = torch.randn(2, 1, 16, 16, 16)
    model.eval()
    with torch.no_grad():
        reference = model(x)
    wrapper = PresenceHeadTuning(model)
    wrapper.train()
    out = wrapper(x)
    for key in ("segmentation_probs", "alignment_scores", "attention_maps"):
        torch.testing.assert_close(out[key], reference[key], rtol=1e-4, atol=1e-5)
    assert out["absence_logits"].requires_grad and not out["segmentation_probs"].requires_grad
    wrapper.eval()
    assert not model.absence_detector.training


def test_state_dict_is_the_bare_networks():
    model = _trained_like_model()
    wrapper = PresenceHeadTuning(model)
    assert list(wrapper.state_dict()) == list(model.state_dict())
    fresh = SpatialAttentionMedicalSegmenter(**TINY)
    fresh.load_state_dict(wrapper.state_dict())
    other = SpatialAttentionMedicalSegmenter(**TINY)
    wrapper.load_state_dict(other.state_dict())
    assert torch.equal(model.encoder.enc1[0].weight, other.encoder.enc1[0].weight)


def test_bad_submodule_names_are_refused():
    model = SpatialAttentionMedicalSegmenter(**TINY)
    with pytest.raises(ValueError, match=r"to tune, got \['absence_head'\]"):
        PresenceHeadTuning(model, trainable=["absence_head"])
    with pytest.raises(ValueError, match="without any"):
        PresenceHeadTuning(model, trainable=["absence_detector.global_pool"])
    with pytest.raises(ValueError, match="to tune, got \\[\\]"):
        PresenceHeadTuning(model, trainable=[])
