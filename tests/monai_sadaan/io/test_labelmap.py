"""Label maps and affines of :mod:`monai_sadaan.io.labelmap`: accepted forms, refusals and label counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_sadaan.io import labelmap_and_affine
from monai_sadaan.io.labelmap import label_counts
from tests.monai_sadaan.io.small_case import AFFINE, small_labelmap


# ---------------------------------------------------------------- label map input forms


def test_labelmap_and_affine_accepts_metatensor_channel_first_float():
    lm = small_labelmap()
    mt = MetaTensor(torch.from_numpy(lm[None].astype(np.float32)), affine=torch.from_numpy(AFFINE))
    out, aff = labelmap_and_affine(mt)
    assert out.dtype == np.uint8 and out.shape == lm.shape
    np.testing.assert_array_equal(out, lm)
    np.testing.assert_allclose(aff, AFFINE)


@pytest.mark.parametrize(
    "labelmap, affine, message",
    [
        (np.zeros((5, 5)), AFFINE, r"got shape \(5, 5\)"),
        (np.zeros((2, 4, 4, 4)), AFFINE, r"got shape \(2, 4, 4, 4\)"),
        (np.full((3, 3, 3), 1.5), AFFINE, "whole-number"),
        (np.full((3, 3, 3), -1), AFFINE, "non-negative"),
        (np.zeros((3, 3, 3)), None, "expected an affine"),
        (np.zeros((3, 3, 3)), np.eye(3), r"4x4 .* got shape \(3, 3\)"),
        (np.zeros((3, 3, 3)), np.diag([1.0, 0.0, 1.0, 1.0]), "invertible"),
    ],
)
def test_labelmap_and_affine_rejects_bad_input(labelmap, affine, message):
    with pytest.raises(ValueError, match=message):
        labelmap_and_affine(labelmap, affine)


def test_label_counts_equal_bincount_in_any_memory_order():
    rng = np.random.default_rng(1)
    for order in "CF":
        lm = np.asarray(rng.integers(0, 6, (31, 17, 9)), dtype=np.uint8, order=order)
        lm[lm < 3] = 0
        np.testing.assert_array_equal(label_counts(lm, minlength=8), np.bincount(lm.ravel(), minlength=8))
    assert label_counts(np.zeros((3, 3, 3), np.uint8), minlength=4).tolist() == [27, 0, 0, 0]
