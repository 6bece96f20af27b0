"""NIfTI in :mod:`monai_sadaan.io.nifti`: the reader in slabs and the chunked pre-flight scan give nibabel's values;
label and probability maps written at gzip level one read back with nibabel."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_sadaan.data.image_folder import InputImageError, check_volume_content, iter_nifti_data
from monai_sadaan.io import write_label_map_nifti, write_probability_maps
from monai_sadaan.io.nifti import GZIP_LEVEL, SADAAnSlabImageReader, read_nifti_array
from tests.monai_sadaan.io.small_case import AFFINE, small_labelmap


def _nifti(path, data, slope=None, inter=None, big_endian=False):
    img = nib.Nifti1Image(data, np.diag([0.8, 0.9, 2.5, 1.0]))
    if big_endian:
        img = nib.Nifti1Image(data.astype(data.dtype.newbyteorder(">")), img.affine, nib.Nifti1Header(endianness=">"))
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize(
    "name, data, kwargs",
    [
        ("i16.nii.gz", np.arange(-3000, 3000 - 8, dtype=np.int16)[: 19 * 23 * 13].reshape(19, 23, 13), {}),
        ("u8.nii", np.arange(19 * 23 * 13, dtype=np.uint8).reshape(19, 23, 13), {}),
        ("scaled.nii.gz", np.arange(19 * 23 * 13, dtype=np.int16).reshape(19, 23, 13), {"slope": 0.5, "inter": -1024}),
        ("f32.nii.gz", np.linspace(-1, 1, 19 * 23 * 13, dtype=np.float32).reshape(19, 23, 13), {}),
        ("big.nii.gz", np.arange(19 * 23 * 13, dtype=np.int16).reshape(19, 23, 13), {"big_endian": True}),
        ("four.nii.gz", np.arange(19 * 23 * 13, dtype=np.int16).reshape(19, 23, 13, 1), {}),
    ],
)
@pytest.mark.parametrize("slab_bytes", [1, 1000, 1 << 24])
def test_slab_reader_gives_nibabels_values_in_c_order(tmp_path, name, data, kwargs, slab_bytes):
    path = _nifti(tmp_path / name, data, **kwargs)
    expected = np.asanyarray(nib.load(str(path)).dataobj)
    got = read_nifti_array(nib.load(str(path)), slab_bytes=slab_bytes)
    assert got.shape == expected.shape and got.dtype == expected.dtype.newbyteorder("=")
    assert got.flags.c_contiguous  # MONAI's LoadImage would copy anything else
    np.testing.assert_array_equal(got, expected)


def test_bundle_reader_loads_into_c_order_without_a_copy(tmp_path):
    from monai.transforms import LoadImaged

    data = np.arange(20 * 21 * 22, dtype=np.int16).reshape(20, 21, 22)
    path = _nifti(tmp_path / "ct.nii.gz", data)
    image = LoadImaged("image", reader=SADAAnSlabImageReader(), dtype=None, image_only=True, ensure_channel_first=True)(
        {"image": str(path)}
    )["image"]
    assert image.dtype == torch.int16 and tuple(image.shape) == (1, 20, 21, 22)
    np.testing.assert_array_equal(image[0].numpy(), data)
    np.testing.assert_array_equal(image.affine.numpy(), nib.load(str(path)).affine)


def test_a_cut_gzip_stream_is_refused_by_the_scan_and_the_reader(tmp_path):
    noise = np.random.default_rng(0).integers(-1000, 1000, (40, 40, 40)).astype(np.int16)
    path = _nifti(tmp_path / "cut.nii.gz", noise)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputImageError, match="truncated or corrupt"):
        check_volume_content(path)
    with pytest.raises((EOFError, OSError)):
        read_nifti_array(nib.load(str(path)))
    short = tmp_path / "short.nii"
    _nifti(short, np.zeros((10, 10, 10), np.int16))
    short.write_bytes(short.read_bytes()[:-100])
    with pytest.raises(OSError, match="Expected 2000 bytes, got 1900"):
        list(iter_nifti_data(nib.load(str(short)), chunk_items=64))


def test_the_scan_reads_in_chunks_and_finds_nan_and_range(tmp_path):
    data = np.zeros((30, 30, 30), np.float32)
    data[29, 29, 29] = np.nan
    data[0, 0, 1] = np.inf
    with pytest.raises(InputImageError, match="got 1 NaN and 1 Inf voxels"):
        check_volume_content(_nifti(tmp_path / "nan.nii.gz", data))
    ok = _nifti(tmp_path / "ok.nii.gz", np.arange(27000, dtype=np.int16).reshape(30, 30, 30), slope=2.0, inter=-5)
    assert check_volume_content(ok) == (30, 30, 30)
    chunks = list(arr.copy() for arr in iter_nifti_data(nib.load(str(ok)), chunk_items=1000))
    assert len(chunks) == 27 and all(c.size == 1000 for c in chunks)
    stored = np.arange(27000, dtype=np.int16).reshape(30, 30, 30).ravel(order="F")  # NIfTI's file order
    np.testing.assert_array_equal(np.concatenate(chunks), stored)


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
