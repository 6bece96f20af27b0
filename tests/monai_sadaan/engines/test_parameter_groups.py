"""presence_head_parameter_groups: the presence MLPs at their own learning rate."""

from __future__ import annotations

import pytest
import torch

from monai_sadaan.engines import presence_head_parameter_groups
from monai_sadaan.networks import SpatialAttentionMedicalSegmenter

TINY = {"features": (4, 8, 8, 8, 8), "feature_channels": 8, "spatial_size": (16, 16, 16), "num_structures": 2}


def test_groups_split_every_parameter_once_and_set_the_head_rate():
    net = SpatialAttentionMedicalSegmenter(**TINY)
    body, head = presence_head_parameter_groups(net, 1e-4)
    head_ids = {id(p) for p in net.absence_detector.parameters()}
    assert {id(p) for p in head["params"]} == head_ids
    assert not head_ids & {id(p) for p in body["params"]}
    assert len(body["params"]) + len(head["params"]) == len(list(net.parameters()))
    optimizer = torch.optim.AdamW([body, head], lr=1e-2)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-2, 1e-4]


def test_frozen_parameters_are_left_out():
    net = SpatialAttentionMedicalSegmenter(**TINY)
    for p in net.encoder.parameters():
        p.requires_grad_(False)
    body, head = presence_head_parameter_groups(net, 1e-4)
    assert not {id(p) for p in net.encoder.parameters()} & {id(p) for p in body["params"]}
    assert len(body["params"]) == len([p for p in net.parameters() if p.requires_grad]) - len(head["params"])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="expected a SADAAn network with an absence_detector, got Linear"):
        presence_head_parameter_groups(torch.nn.Linear(2, 2), 1e-3)
    with pytest.raises(ValueError, match="expected a positive head_learning_rate, got 0"):
        presence_head_parameter_groups(SpatialAttentionMedicalSegmenter(**TINY), 0)
