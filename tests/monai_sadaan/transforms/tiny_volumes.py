"""Tiny label maps shared by the transform tests."""

from __future__ import annotations

import numpy as np

STRUCTURES = {"liver": 1, "spleen": 2, "kidney": 3}


def tiny_label_map() -> np.ndarray:
    """[1, 10, 8, 8]: liver 2*3*4 = 24 voxels at the top (D 0-1), spleen 5*4*4 = 80 voxels below, one kidney voxel."""
    label = np.zeros((1, 10, 8, 8), np.int64)
    label[0, 0:2, 2:5, 2:6] = 1
    label[0, 4:9, 3:7, 3:7] = 2
    label[0, 9, 0, 0] = 3
    return label
