"""NIfTI outputs and the label-map checks of :mod:`monai_sadaan.io.nifti`: label and probability maps written at gzip
level one read back with nibabel; label maps and affines: accepted forms, refusals and label counts."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_sadaan.io import labelmap_and_affine, write_label_map_nifti, write_probability_maps
from monai_sadaan.io.nifti import GZIP_LEVEL, label_counts
from tests.monai_sadaan.io.small_case import AFFINE, small_labelmap


def test_outputs_use_gzip_level_one():
    from nibabel.openers import Opener

    from monai_sadaan.io.slicer_segmentation import write_slicer_segmentation

    assert GZIP_LEVEL == 1 and Opener.default_compresslevel == GZIP_LEVEL
    assert write_slicer_segmentation.__defaults__[-1] == GZIP_LEVEL


def test_gzip_level_one_output_reads_back(tmp_path):
    from monai_sadaan.io import write_label_map_nifti

    lm = np.zeros((40, 40, 40), np.uint8, order="F")
    lm[5:30, 10:20, :] = 2
    path = write_label_map_nifti(lm, np.eye(4), tmp_path / "l.nii.gz")
    with gzip.open(path) as f:
        assert len(f.read()) > lm.size
    np.testing.assert_array_equal(np.asarray(nib.load(path).dataobj), lm)


# ---------------------------------------------------------------- NIfTI


def test_label_map_nifti_round_trip(tmp_path):
    lm = small_labelmap()
    path = write_label_map_nifti(torch.from_numpy(lm.astype(np.int64)), AFFINE, tmp_path / "case_labels.nii.gz")
    img = nib.load(path)
    assert img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(img.dataobj), lm)
    np.testing.assert_allclose(img.affine, AFFINE, atol=1e-6)
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["case_labels.nii.gz"]  # no temporary left


def test_label_map_nifti_uses_uint16_above_255(tmp_path):
    lm = np.zeros((3, 3, 3), dtype=np.int32)
    lm[0, 0, 0] = 300
    img = nib.load(write_label_map_nifti(lm, AFFINE, tmp_path / "big.nii.gz"))
    assert img.get_data_dtype() == np.uint16 and int(np.asarray(img.dataobj)[0, 0, 0]) == 300


def test_label_map_nifti_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(img, filename):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_label_map_nifti(small_labelmap(), AFFINE, tmp_path / "x.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_probability_maps_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    probs = rng.random((5, 6, 7, 8)).astype(np.float32)
    img = nib.load(write_probability_maps(probs, AFFINE, tmp_path / "p.nii.gz"))
    assert img.shape == (6, 7, 8, 5)
    data = img.get_fdata()
    np.testing.assert_allclose(data[..., 2], probs[2], atol=1e-7)
    np.testing.assert_allclose(img.affine, AFFINE, atol=1e-6)
    img8 = nib.load(write_probability_maps(probs, AFFINE, tmp_path / "p8.nii.gz", dtype=np.uint8))
    assert img8.get_data_dtype() == np.uint8
    np.testing.assert_allclose(img8.get_fdata()[..., 4], probs[4], atol=1.0 / 510 + 1e-6)
    # a resampling overshoot within 1e-3 is clipped to [0, 1]
    probs[0, 0, 0, 0], probs[1, 0, 0, 0] = 1.0004, -0.0004
    clipped = nib.load(write_probability_maps(probs, AFFINE, tmp_path / "pc.nii.gz")).get_fdata()
    assert clipped[0, 0, 0, 0] == 1.0 and clipped[0, 0, 0, 1] == 0.0


@pytest.mark.parametrize(
    "probs, message",
    [
        (np.zeros((6, 7, 8)), r"\[S, X, Y, Z\]"),
        (np.full((2, 3, 3, 3), 1.5), r"in \[0, 1\]"),
        (np.full((2, 3, 3, 3), -0.01), r"in \[0, 1\]"),
        (np.full((2, 3, 3, 3), np.nan), r"in \[0, 1\]"),
    ],
)
def test_probability_maps_reject_bad_input(tmp_path, probs, message):
    with pytest.raises(ValueError, match=message):
        write_probability_maps(probs, AFFINE, tmp_path / "p.nii.gz")
    assert list(tmp_path.iterdir()) == []


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
