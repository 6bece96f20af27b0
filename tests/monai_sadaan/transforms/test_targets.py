"""``monai_sadaan.transforms.targets``: masks, presence and attention targets from a label map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_sadaan.transforms import LabelMapToStructures, LabelMapToStructuresd, LabelMapToStructuresDict
from tests.monai_sadaan.transforms.tiny_volumes import STRUCTURES, tiny_label_map


# ---------------------------------------------------------------- LabelMapToStructures


@pytest.mark.parametrize("kind", ["numpy", "torch", "meta"])
def test_label_map_to_structures_counts_presence_and_types(kind):
    label = tiny_label_map()
    inp = {"numpy": label, "torch": torch.as_tensor(label), "meta": MetaTensor(torch.as_tensor(label))}[kind]
    masks, presence, attention = LabelMapToStructures(STRUCTURES, min_voxels=2)(inp)
    assert tuple(masks.shape) == (3, 10, 8, 8) and tuple(attention.shape) == (3, 10, 8, 8)
    assert type(masks) is type(inp) and type(attention) is type(inp)
    assert isinstance(presence, np.ndarray if kind == "numpy" else torch.Tensor)
    assert not isinstance(presence, MetaTensor)
    masks, presence, attention = (np.asarray(x) for x in (masks, presence, attention))
    np.testing.assert_array_equal(masks.reshape(3, -1).sum(1), [24, 80, 0])  # kidney: 1 voxel < 2 -> zeroed
    np.testing.assert_array_equal(presence, [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(masks[0], (label[0] == 1).astype(np.float32))
    assert masks.dtype == np.float32 and presence.dtype == np.float32


def test_attention_targets_are_mask_with_soft_halo():
    label = tiny_label_map()
    masks, _, attention = LabelMapToStructures(STRUCTURES, attention_sigma=1.0)(label)
    assert attention.min() >= 0.0 and attention.max() <= 1.0
    np.testing.assert_array_equal(attention[masks > 0], 1.0)  # 1 on the structure
    # halo: a voxel next to the spleen is between 0 and 1, and it decays with distance
    near, far = attention[1, 6, 2, 4], attention[1, 6, 0, 4]
    assert 0.0 < far < near < 1.0
    assert attention[1, 0, 0, 0] == pytest.approx(0.0, abs=1e-6)
    # sigma 0: the mask itself; absent structures: all zero
    masks0, _, attention0 = LabelMapToStructures(STRUCTURES, min_voxels=2, attention_sigma=0.0)(label)
    np.testing.assert_array_equal(attention0, masks0)
    _, _, attention_absent = LabelMapToStructures(STRUCTURES, min_voxels=2, attention_sigma=1.0)(label)
    assert attention_absent[2].max() == 0.0


def test_label_map_to_structures_accepts_float_maps_and_sequences():
    label = tiny_label_map()
    by_seq = LabelMapToStructures([1, 2, 3])(label.astype(np.float32))
    by_map = LabelMapToStructures(STRUCTURES)(label)
    for a, b in zip(by_seq, by_map):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sigma", [0.0, 0.7, 2.0])
def test_label_map_to_structures_cpu_path_equals_whole_volume_torch_path(sigma):
    """The CPU path works inside grown bounding boxes; the device path blurs whole volumes: same values."""
    rng = np.random.default_rng(3)
    label = rng.integers(0, 4, size=(1, 12, 9, 7)) * (rng.random((1, 12, 9, 7)) < 0.05)
    label[0, 0, 0, 0] = 5  # one voxel, under min_voxels
    label[0, 6:9, 2:8, 1:5] = 2  # a block touching nothing in particular
    t = LabelMapToStructures([2, 1, 5, 3, 7], min_voxels=2, attention_sigma=sigma)
    got = t(label)
    want = t._targets_torch(torch.as_tensor(label[0]))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-6)
    expected = [float((label == v).sum() >= 2) for v in (2, 1, 5, 3, 7)]
    assert expected[0] == 1.0 and expected[2] == 0.0 and expected[4] == 0.0
    np.testing.assert_array_equal(got[1], expected)


def test_label_map_to_structures_errors():
    with pytest.raises(ValueError, match=r"expected a label map of shape \(1, D, H, W\), got \(64, 64\)"):
        LabelMapToStructures(STRUCTURES)(np.zeros((64, 64)))
    with pytest.raises(ValueError, match=r"got \(2, 4, 4, 4\)"):
        LabelMapToStructures(STRUCTURES)(np.zeros((2, 4, 4, 4)))
    with pytest.raises(ValueError, match="background"):
        LabelMapToStructures([0, 1])
    with pytest.raises(ValueError, match="distinct"):
        LabelMapToStructures([1, 1])
    with pytest.raises(ValueError, match="min_voxels"):
        LabelMapToStructures([1], min_voxels=0)
    with pytest.raises(ValueError, match="non-empty"):
        LabelMapToStructures([])


def test_label_map_to_structures_dict_matches_array():
    label = tiny_label_map()
    d = LabelMapToStructuresd("label", STRUCTURES, min_voxels=2, attention_sigma=1.0)({"label": label, "x": 1})
    masks, presence, attention = LabelMapToStructures(STRUCTURES, min_voxels=2, attention_sigma=1.0)(label)
    np.testing.assert_array_equal(d["segmentation_targets"], masks)
    np.testing.assert_array_equal(d["presence_targets"], presence)
    np.testing.assert_array_equal(d["attention_targets"], attention)
    assert d["label"] is label and d["x"] == 1
    d = LabelMapToStructuresDict("seg", [1, 2], attention_key=None, presence_key="p")({"seg": label})
    assert "attention_targets" not in d and d["p"].tolist() == [1.0, 1.0]
