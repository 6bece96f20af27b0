from __future__ import annotations

import pytest
import torch

from monai_sadaan import SpatialAttentionMedicalSegmenter
from monai_sadaan.engines.model_setup import load_pretrained_encoder, load_pretrained_network
from monai_glue import CheckpointError

TINY = dict(spatial_size=(16, 16, 16), features=(2, 4, 4, 4, 4), feature_channels=4)


def test_encoder_reused_heads_and_prior_fresh_for_another_structure_set(tmp_path):
    torch.manual_seed(0)
    pretrained = SpatialAttentionMedicalSegmenter(num_structures=5, **TINY)
    torch.save({"model": pretrained.state_dict()}, tmp_path / "model.pt")
    torch.manual_seed(1)
    new = SpatialAttentionMedicalSegmenter(num_structures=2, **TINY)
    fresh_heads = {k: v.clone() for k, v in new.state_dict().items() if not k.startswith("encoder.")}
    load_pretrained_encoder(new, tmp_path / "model.pt")
    for k, v in new.encoder.state_dict().items():
        assert torch.equal(v, pretrained.encoder.state_dict()[k]), k
    for k, v in new.state_dict().items():
        if not k.startswith("encoder."):
            assert torch.equal(v, fresh_heads[k]), k
    assert all(p.requires_grad for p in new.parameters())


def test_frozen_encoder_gets_no_gradient_and_keeps_bn_statistics(tmp_path):
    pretrained = SpatialAttentionMedicalSegmenter(num_structures=3, **TINY)
    torch.save(pretrained.state_dict(), tmp_path / "plain.pt")
    new = load_pretrained_encoder(SpatialAttentionMedicalSegmenter(num_structures=2, **TINY), tmp_path / "plain.pt", freeze_encoder=True)
    before = {k: v.clone() for k, v in new.encoder.state_dict().items()}
    new.train()
    out = new(torch.randn(2, 1, 16, 16, 16))
    out["segmentation_logits"].mean().backward()
    assert all(p.grad is None for p in new.encoder.parameters())
    assert new.segmentation_head.segmentation_layer.weight.grad is not None
    for k, v in new.encoder.state_dict().items():
        if "num_batches_tracked" not in k:
            assert torch.equal(v, before[k]), k


def test_encoder_of_another_width_is_refused_with_the_mismatch(tmp_path):
    torch.save(SpatialAttentionMedicalSegmenter(num_structures=2, spatial_size=(16, 16, 16), features=(4, 4, 4, 4, 4), feature_channels=4).state_dict(), tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=r"encoder\.enc1\.0\.weight: expected \(2, 1, 3, 3, 3\), got \(4, 1, 3, 3, 3\)"):
        load_pretrained_encoder(SpatialAttentionMedicalSegmenter(num_structures=2, **TINY), tmp_path / "w.pt")
    torch.save({"model": {"other.weight": torch.ones(1)}}, tmp_path / "noenc.pt")
    with pytest.raises(CheckpointError, match="expected encoder"):
        load_pretrained_encoder(SpatialAttentionMedicalSegmenter(num_structures=2, **TINY), tmp_path / "noenc.pt")


def test_warm_start_loads_every_weight_and_reinitialises_the_named_modules(tmp_path):
    torch.manual_seed(0)
    pretrained = SpatialAttentionMedicalSegmenter(num_structures=3, **TINY)
    with torch.no_grad():
        for p in pretrained.parameters():
            p.add_(1.0)  # far from any fresh initialisation
    torch.save({"model": pretrained.state_dict()}, tmp_path / "model.pt")
    new = load_pretrained_network(
        SpatialAttentionMedicalSegmenter(num_structures=3, **TINY),
        tmp_path / "model.pt",
        reinitialise=["absence_detector.absence_classifiers"],
    )
    reset = "absence_detector.absence_classifiers."
    for k, v in new.state_dict().items():
        if not k.startswith(reset):
            assert torch.equal(v, pretrained.state_dict()[k]), k
    # default Linear init is uniform in +-1/sqrt(fan_in): the +1 shift of the pretrained weights is gone
    for layer in new.absence_detector.absence_classifiers.modules():
        if isinstance(layer, torch.nn.Linear):
            bound = layer.in_features**-0.5
            assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
    assert not torch.equal(
        new.absence_detector.absence_classifiers[0][0].weight,
        pretrained.absence_detector.absence_classifiers[0][0].weight,
    )
    # nothing to reset: an exact copy
    same = load_pretrained_network(SpatialAttentionMedicalSegmenter(num_structures=3, **TINY), tmp_path / "model.pt")
    for k, v in same.state_dict().items():
        assert torch.equal(v, pretrained.state_dict()[k]), k


def test_warm_start_refuses_another_structure_set_and_unknown_modules(tmp_path):
    torch.save(SpatialAttentionMedicalSegmenter(num_structures=3, **TINY).state_dict(), tmp_path / "three.pt")
    with pytest.raises(CheckpointError, match=r"another configuration.*shape mismatches"):
        load_pretrained_network(SpatialAttentionMedicalSegmenter(num_structures=2, **TINY), tmp_path / "three.pt")
    with pytest.raises(ValueError, match=r"unknown \['absence_detector.classifierz'\]"):
        load_pretrained_network(
            SpatialAttentionMedicalSegmenter(num_structures=3, **TINY), tmp_path / "three.pt",
            reinitialise=["absence_detector.classifierz"],
        )
