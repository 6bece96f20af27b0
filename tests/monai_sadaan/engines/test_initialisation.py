from __future__ import annotations

import math

import pytest
import torch

from monai_sadaan import SpatialAttentionMedicalSegmenter
from monai_sadaan.engines.model_setup import init_output_priors


def test_prior_sets_initial_foreground_probability():
    net = init_output_priors(
        SpatialAttentionMedicalSegmenter(num_structures=2, spatial_size=(16, 16, 16), features=(2, 2, 2, 2, 2), feature_channels=4),
        0.05,
    )
    assert torch.allclose(net.segmentation_head.segmentation_layer.bias, torch.full((2,), math.log(0.05 / 0.95)))
    net.eval()
    with torch.no_grad():
        probs = net(torch.randn(1, 1, 16, 16, 16))["segmentation_probs"]
    # attention scales only the weight term, so probabilities start near the prior, well below 0.5
    assert probs.mean().item() < 0.2


@pytest.mark.parametrize("prior", [0.0, 1.0, -0.1])
def test_prior_outside_unit_interval_is_refused(prior):
    with pytest.raises(ValueError, match=r"expected a segmentation prior in \(0, 1\)"):
        init_output_priors(torch.nn.Linear(2, 2), prior)


def test_model_without_segmentation_layer_is_refused():
    with pytest.raises(ValueError, match="expected a SADAAn model"):
        init_output_priors(torch.nn.Linear(2, 2), 0.05)
