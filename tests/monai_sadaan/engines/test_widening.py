from __future__ import annotations

import pytest
import torch

from monai_sadaan import SpatialAttentionMedicalSegmenter
from monai_sadaan.engines.model_setup import load_widened_network, widen_state_dict
from monai_glue import CheckpointError

NARROW = dict(features=(2, 4, 4, 4, 4), feature_channels=4)
# every level wider, and feature_channels (hence the hidden layers, feature_channels // 2) too
WIDE = dict(features=(3, 6, 5, 4, 8), feature_channels=6)
COMMON = dict(num_structures=3, spatial_size=(16, 16, 16), dropout=0.0, presence_fusion=True, presence_fusion_hidden_channels=4)
KEYS = ("segmentation_logits", "feature_responses", "attention_maps", "absence_logits", "confidence_scores")


def _trained_narrow(seed: int = 0) -> SpatialAttentionMedicalSegmenter:
    """A narrow network whose BatchNorm statistics and fusion are far from their initial values."""
    torch.manual_seed(seed)
    net = SpatialAttentionMedicalSegmenter(**NARROW, **COMMON)
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.5, 0.5)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
        for p in net.presence_fusion.parameters():
            p.normal_(0.0, 0.3)
    return net


def _save(net: torch.nn.Module, path) -> None:
    torch.save({"model": net.state_dict()}, path)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_widened_network_computes_what_the_narrow_one_computed(tmp_path, mode):
    narrow = _trained_narrow()
    _save(narrow, tmp_path / "narrow.pt")
    torch.manual_seed(1)
    wide = load_widened_network(SpatialAttentionMedicalSegmenter(**WIDE, **COMMON), tmp_path / "narrow.pt")
    assert wide.encoder.enc1[0].out_channels == 3 and wide.encoder.final_conv.out_channels == 6
    x = torch.randn(2, 1, 16, 16, 16)
    narrow.train(mode == "train")
    wide.train(mode == "train")
    with torch.no_grad():
        a, b = narrow(x), wide(x)
    for key in KEYS:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    if mode == "train":  # BatchNorm running statistics of the old channels moved exactly as the narrow ones
        torch.testing.assert_close(wide.encoder.dec1[1].running_mean[:2], narrow.encoder.dec1[1].running_mean)


def test_trained_weights_go_to_their_channels_and_new_inputs_of_old_channels_are_zero():
    narrow = _trained_narrow()
    torch.manual_seed(1)
    wide = SpatialAttentionMedicalSegmenter(**WIDE, **COMMON)
    fresh = {k: v.clone() for k, v in wide.state_dict().items()}
    state = widen_state_dict(wide, narrow.state_dict())
    old = narrow.state_dict()
    # dec1 reads [up1 (2 -> 3 channels), enc1 (2 -> 3 channels)]: old inputs 0, 1 | 2, 3 go to 0, 1 | 3, 4
    dec = state["encoder.dec1.0.weight"]
    assert dec.shape == (3, 6, 3, 3, 3)
    assert torch.equal(dec[:2, [0, 1, 3, 4]], old["encoder.dec1.0.weight"])
    assert not dec[:2, [2, 5]].any()
    assert torch.equal(dec[2:], fresh["encoder.dec1.0.weight"][2:])  # the new output keeps its initialisation
    # transposed convolution: weight [in, out, ...]; up1 reads enc2's width (4 -> 6) and writes 2 -> 3 channels
    up = state["encoder.up1.weight"]
    assert torch.equal(up[:4, :2], old["encoder.up1.weight"]) and not up[4:, :2].any()
    # presence classifier reads [pooled features (4 -> 6), alignment (1)]: the alignment input stays last
    lin = state["absence_detector.absence_classifiers.1.0.weight"]
    assert torch.equal(lin[:, [0, 1, 2, 3, 6]], old["absence_detector.absence_classifiers.1.0.weight"])
    assert not lin[:, 4:6].any()
    # per-channel vectors: old values first, the new channel's fresh ones after
    bn = state["encoder.enc1.1.running_var"]
    assert torch.equal(bn[:2], old["encoder.enc1.1.running_var"]) and bn[2] == fresh["encoder.enc1.1.running_var"][2]
    # untouched widths copy as they are
    assert torch.equal(state["attention_module.position_embeddings"], old["attention_module.position_embeddings"])


def test_zero_weights_get_gradients_so_the_new_channels_can_learn(tmp_path):
    _save(_trained_narrow(), tmp_path / "narrow.pt")
    wide = load_widened_network(SpatialAttentionMedicalSegmenter(**WIDE, **COMMON), tmp_path / "narrow.pt")
    wide.train()
    out = wide(torch.randn(2, 1, 16, 16, 16))
    (out["segmentation_logits"].square().mean() + out["absence_logits"].square().mean()).backward()
    grad = wide.encoder.final_conv.weight.grad  # [6, 3, 1, 1, 1]: old outputs' weights from the new enc channel
    assert grad[:4, 2].abs().sum() > 0
    assert wide.segmentation_head.feature_refine[0].weight.grad[:2, 4:].abs().sum() > 0


def test_a_wider_checkpoint_or_another_layout_is_refused(tmp_path):
    torch.manual_seed(0)
    _save(SpatialAttentionMedicalSegmenter(**WIDE, **COMMON), tmp_path / "wide.pt")
    with pytest.raises(CheckpointError, match=r"encoder\.enc1\.0\.weight no larger than .*\(2, 1, 3, 3, 3\), got \(3, 1, 3, 3, 3\)"):
        load_widened_network(SpatialAttentionMedicalSegmenter(**NARROW, **COMMON), tmp_path / "wide.pt")
    other = dict(COMMON, presence_fusion=False)
    _save(SpatialAttentionMedicalSegmenter(**NARROW, **other), tmp_path / "nofusion.pt")
    with pytest.raises(CheckpointError, match=r"missing keys \['presence_fusion"):
        load_widened_network(SpatialAttentionMedicalSegmenter(**WIDE, **COMMON), tmp_path / "nofusion.pt")
    other = dict(COMMON, spatial_size=(32, 16, 16))
    _save(SpatialAttentionMedicalSegmenter(**NARROW, **other), tmp_path / "bigger_fov.pt")
    with pytest.raises(CheckpointError, match="position_embeddings no larger"):
        load_widened_network(SpatialAttentionMedicalSegmenter(**WIDE, **COMMON), tmp_path / "bigger_fov.pt")
    with pytest.raises(CheckpointError, match="missing path"):
        load_widened_network(SpatialAttentionMedicalSegmenter(**WIDE, **COMMON), tmp_path / "none.pt")
