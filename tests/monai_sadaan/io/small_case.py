"""A small labelled case shared by the tests of the writers of :mod:`monai_sadaan.io`: a flipped, anisotropic
affine, a 6 x 7 x 8 label map and the presence rows of the five default structures."""

from __future__ import annotations

import numpy as np

# an oblique-free but flipped, anisotropic geometry: i runs towards -R (i.e. L), j towards A, k towards S
AFFINE = np.array(
    [[-0.8, 0.0, 0.0, 10.0], [0.0, 0.9, 0.0, -20.0], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], dtype=np.float64
)
VOXEL_ML = 0.8 * 0.9 * 2.5 / 1000.0


def small_labelmap() -> np.ndarray:
    lm = np.zeros((6, 7, 8), dtype=np.uint8)
    lm[1:3, 1:3, 1:3] = 1  # left kidney, 8 voxels
    lm[3:6, 0:2, 0:1] = 3  # liver, 6 voxels
    lm[5, 6, 7] = 5  # pancreas, 1 voxel in the far corner
    return lm


PRESENCE = [
    {"structure": "left_kidney", "present": True, "presence_probability": 0.97, "confidence": 0.9},
    {"structure": "right_kidney", "present": False, "presence_probability": 0.04, "confidence": 0.8},
    {"structure": "liver", "present": True, "presence_probability": 0.99, "confidence": 0.95},
    {"structure": "spleen", "present": False, "presence_probability": 0.12, "confidence": 0.7},
    {"structure": "pancreas", "present": True, "presence_probability": 0.61, "confidence": 0.4},
]
