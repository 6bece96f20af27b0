"""NIfTI reading in :mod:`monai_sadaan.data.readers`: the reader in slabs and the chunked pre-flight scan of
:mod:`monai_sadaan.data.image_folder` give nibabel's values; the bundle's reader loads C-ordered with nibabel's
affine."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_sadaan.data.image_folder import InputImageError, check_volume_content, iter_nifti_data
from monai_sadaan.data.readers import SADAAnImageReader, read_nifti_array


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
    image = LoadImaged("image", reader=SADAAnImageReader(), dtype=None, image_only=True, ensure_channel_first=True)(
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
