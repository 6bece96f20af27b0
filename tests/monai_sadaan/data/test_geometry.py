"""Orientation codes, orientation affines, RAS <-> LPS, ITK geometry, voxel volume and reorientation of
:mod:`monai_sadaan.data.geometry`."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_sadaan.data import orientation_affine, parse_orientation
from monai_sadaan.data.geometry import (
    affine_to_itk_geometry,
    all_orientation_codes,
    extent_to_box,
    itk_geometry_to_affine,
    ras_to_lps,
    reorient_from_ras,
    voxel_volume_ml,
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


def _oblique_affine(code: str) -> np.ndarray:
    """An orientation affine turned by a few degrees about each axis: no axis is aligned with the world's."""
    from monai_sadaan.data.geometry import rotation_matrix

    aff = orientation_affine(code, (0.8, 1.5, 2.5), (-12.0, 40.0, 7.5))
    aff[:3, :3] = rotation_matrix(0.1, -0.2, 0.3) @ aff[:3, :3]
    return aff


def test_ras_to_lps_negates_x_and_y_and_is_its_own_inverse():
    aff = _oblique_affine("PLI")
    lps = ras_to_lps(aff)
    assert lps.shape == (4, 4) and lps.dtype == np.float64
    np.testing.assert_array_equal(lps, np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff)
    np.testing.assert_array_equal(ras_to_lps(lps), aff)
    ijk = np.array([3.0, 1.0, 4.0, 1.0])
    x, y, z, _ = aff @ ijk
    np.testing.assert_allclose(lps @ ijk, [-x, -y, z, 1.0])
    np.testing.assert_array_equal(ras_to_lps(torch.from_numpy(aff)), lps)  # a tensor affine (MetaTensor.affine)


def test_affine_to_itk_geometry_agrees_with_ras_to_lps():
    """ITK's (spacing, origin, direction) of an affine are its LPS affine's column norms, last column and normalised
    columns, for every orientation and an oblique grid; SimpleITK maps indices with it to the LPS affine's points."""
    import SimpleITK as sitk

    for code in all_orientation_codes():
        aff = _oblique_affine(code)
        lps = ras_to_lps(aff)
        spacing, origin, direction = affine_to_itk_geometry(aff)
        np.testing.assert_allclose(origin, lps[:3, 3], atol=1e-12)
        np.testing.assert_allclose(np.reshape(direction, (3, 3)) @ np.diag(spacing), lps[:3, :3], atol=1e-12)
        np.testing.assert_allclose(itk_geometry_to_affine(spacing, origin, direction), aff, atol=1e-12)
        image = sitk.Image([5, 4, 3], sitk.sitkUInt8)
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        image.SetDirection(direction)
        for ijk in ((0, 0, 0), (4, 3, 2), (1, 2, 0)):
            np.testing.assert_allclose(image.TransformIndexToPhysicalPoint(ijk), (lps @ [*ijk, 1])[:3], atol=1e-9)


def test_voxel_volume_ml_is_the_voxel_size_in_any_orientation():
    assert voxel_volume_ml(orientation_affine("RAS", (2.0, 3.0, 4.0), (0.0, 0.0, 0.0))) == pytest.approx(0.024)
    for code in ("PLI", "SAR", "LPS"):
        aff = _oblique_affine(code)
        assert voxel_volume_ml(aff) == pytest.approx(0.8 * 1.5 * 2.5 / 1000.0)
        assert voxel_volume_ml(ras_to_lps(aff)) == pytest.approx(voxel_volume_ml(aff))


def test_geometry_refuses_what_is_no_4x4_affine_or_itk_geometry():
    for f in (ras_to_lps, voxel_volume_ml, affine_to_itk_geometry):
        with pytest.raises(ValueError, match=r"expected a 4x4 voxel-to-world affine, got shape \(3, 3\)"):
            f(np.eye(3))
    with pytest.raises(ValueError, match="expected an affine with non-zero columns"):
        affine_to_itk_geometry(np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="expected 3 spacing, 3 origin and 9 direction values, got 2, 3 and 9"):
        itk_geometry_to_affine((1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3).ravel())


def test_grid_geometry_has_one_home():
    """``monai_sadaan.io`` and ``monai_sadaan.data`` hand out the functions of :mod:`monai_sadaan.data.geometry`;
    the label-map module of io holds no geometry of its own."""
    import monai_sadaan.data
    import monai_sadaan.data.geometry as geometry
    import monai_sadaan.io
    import monai_sadaan.io.nifti

    for name in ("ras_to_lps", "voxel_volume_ml"):
        assert getattr(monai_sadaan.io, name) is getattr(geometry, name)
        assert getattr(monai_sadaan.data, name) is getattr(geometry, name)
        assert not hasattr(monai_sadaan.io.nifti, name)


def test_extent_to_box_keeps_the_voxel_centres_inside_the_extent_bounds_included():
    axes = (np.arange(5.0), np.arange(4.0) * 2.0, np.array([-1.0, 0.5]))
    assert extent_to_box(axes, [(1.0, 3.0), (1.0, 4.0), (-5.0, 5.0)]) == (slice(1, 4), slice(1, 3), slice(0, 2))
    assert extent_to_box(axes, [(1.2, 1.8), (0.0, 6.0), (-1.0, 0.5)]) is None  # no x centre inside


def test_both_phantom_canvases_cut_boxes_with_extent_to_box():
    """The abdominal canvas and the trunk canvas (no roll, no pad) give the box of ``extent_to_box``."""
    from monai_sadaan.data.phantoms import _Canvas
    from monai_sadaan.data.trunk.canvas import Canvas

    xs, ys, zs = np.linspace(-50, 50, 11), np.linspace(-40, 40, 9), np.linspace(0, 60, 7)
    extent = np.array([[-12.0, 31.0], [-40.0, -5.0], [10.0, 60.0]])
    expected = extent_to_box((xs, ys, zs), extent)
    assert expected == (slice(4, 9), slice(0, 4), slice(1, 7))
    assert _Canvas(xs, ys, zs, {}).box(extent) == expected
    assert Canvas(xs, ys, zs, {}).box(extent) == expected
    assert Canvas(xs, ys, zs, {}).box(np.array([[60.0, 70.0], [0.0, 1.0], [0.0, 1.0]])) is None
