"""``monai_sadaan.transforms.post``: the voxel volume predicted volumes are scored with. (The label-map transforms,
``InputGridLabelMapd`` and ``PresenceAwareLabelMapd``, are pinned to each other in ``test_spatial.py``.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_sadaan.transforms import VoxelVolumed, VoxelVolumeD


def test_voxel_volume_is_the_affines_determinant_in_ml():
    affine = torch.tensor([[0.0, -2.0, 0.0, 5.0], [3.0, 0.0, 0.0, 1.0], [0.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    d = VoxelVolumed("image")({"image": MetaTensor(torch.zeros(1, 2, 2, 2), affine=affine), "label": 7})
    assert d["voxel_volume_ml"] == pytest.approx(2.0 * 3.0 * 4.0 / 1000.0)  # 24 mm^3, axes swapped and flipped
    assert d["label"] == 7 and VoxelVolumeD is VoxelVolumed
    out = VoxelVolumed("image", output_key="vv")({"image": MetaTensor(torch.zeros(1, 2, 2, 2))})
    assert out["vv"] == pytest.approx(1e-3)  # identity affine: 1 mm^3


def test_voxel_volume_refuses_an_array_without_affine():
    with pytest.raises(ValueError, match="expected a MetaTensor with an affine under 'image', got ndarray"):
        VoxelVolumed("image")({"image": np.zeros((1, 2, 2, 2))})
