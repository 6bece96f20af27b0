"""Orientation codes, orientation affines, ITK geometry and reorientation of :mod:`monai_sadaan.data.geometry`."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from monai_sadaan.data import orientation_affine, parse_orientation
from monai_sadaan.data.geometry import (
    affine_to_itk_geometry,
    all_orientation_codes,
    itk_geometry_to_affine,
    reorient_from_ras,
)


def test_orientation_helpers():
    codes = all_orientation_codes()
    assert len(codes) == 48 and len(set(codes)) == 48 and codes[0] == "RAS"
    assert parse_orientation("PLI") == ((1, -1), (0, -1), (2, -1))
    aff = orientation_affine("PLI", (2.0, 3.0, 4.0), (10.0, 20.0, 30.0))
    np.testing.assert_array_equal(aff[:3, :3], [[0, -3, 0], [-2, 0, 0], [0, 0, -4]])
    assert nib.aff2axcodes(aff) == ("P", "L", "I")
    np.testing.assert_allclose(itk_geometry_to_affine(*affine_to_itk_geometry(aff)), aff)
    arr = np.arange(24).reshape(2, 3, 4)
    out = reorient_from_ras(arr, "PLI")
    assert out.shape == (3, 2, 4)
    assert out[0, 0, 0] == arr[1, 2, 3]  # most Posterior, Left, Inferior voxel of the RAS array
