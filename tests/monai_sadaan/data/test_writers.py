"""Phantom writers (NIfTI, NRRD, MetaImage, DICOM series) read back with SimpleITK and MONAI's loaders to the same geometry."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from monai_sadaan.data import generate_phantom, save_phantom, save_phantom_dicom_series


def test_nifti_nrrd_mha_share_geometry(tmp_path):
    p = generate_phantom("normal", 6, shape=(24, 20, 18), orientation="PLI")
    save_phantom(p, tmp_path / "a.nii.gz", tmp_path / "a_label.nrrd")
    save_phantom(p, tmp_path / "a.mha")
    nii, nrrd, mha = (sitk.ReadImage(str(tmp_path / n)) for n in ("a.nii.gz", "a_label.nrrd", "a.mha"))
    for other in (nrrd, mha):
        np.testing.assert_allclose(other.GetOrigin(), nii.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(other.GetDirection(), nii.GetDirection(), atol=1e-6)
        np.testing.assert_allclose(other.GetSpacing(), nii.GetSpacing(), rtol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(nrrd), p.label.transpose(2, 1, 0))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mha), p.image.transpose(2, 1, 0))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(nii), p.image.transpose(2, 1, 0))
    with pytest.raises(ValueError, match="expected a file name ending in"):
        save_phantom(p, tmp_path / "a.mhd")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.mha", "a.nii.gz", "a_label.nrrd"]  # no temporaries


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "PLI", "LPI", "RPS"])  # the last two are left-handed
def test_dicom_series_reads_back_to_same_geometry(tmp_path, orientation):
    p = generate_phantom("nephrectomy_left", 2, shape=(20, 18, 12), orientation=orientation)
    files = save_phantom_dicom_series(p, tmp_path / "series")
    assert len(files) == 12 and all(f.exists() for f in files)
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(tmp_path / "series"))
    assert len(series) == 1
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path / "series"), series[0]))
    reader.MetaDataDictionaryArrayUpdateOn()
    read = reader.Execute()
    assert reader.GetMetaData(0, "0008|0060").strip() == "CT"
    assert reader.GetMetaData(0, "0020|000e").strip() == series[0]
    # same voxels at the same world positions: compare in one common orientation
    from monai_sadaan.data.writers import phantom_to_sitk

    original = sitk.DICOMOrient(phantom_to_sitk(p.image, p.affine), "LPS")
    read = sitk.DICOMOrient(read, "LPS")
    assert read.GetSize() == original.GetSize()
    np.testing.assert_allclose(read.GetSpacing(), original.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(read.GetOrigin(), original.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(read.GetDirection(), original.GetDirection(), atol=1e-5)
    diff = sitk.GetArrayFromImage(read).astype(np.float32) - sitk.GetArrayFromImage(original)
    assert np.abs(diff).max() <= 0.5 + 1e-3  # HU rounded to integers
    with pytest.raises(FileExistsError, match="non-empty"):
        save_phantom_dicom_series(p, tmp_path / "series")


def test_monai_loaders_agree_on_nifti_and_dicom(tmp_path):
    """The bundle's path: MONAI LoadImage (ITK reader) on the DICOM folder and on the NIfTI file, then RAS."""
    from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Orientation

    p = generate_phantom("nephrectomy_right", 4, shape=(20, 18, 12), orientation="ASL")
    save_phantom(p, tmp_path / "img.nii.gz")
    save_phantom_dicom_series(p, tmp_path / "dicom")
    load = Compose([LoadImage(image_only=True, reader="ITKReader"), EnsureChannelFirst(), Orientation(axcodes="RAS")])
    from_nifti, from_dicom = load(str(tmp_path / "img.nii.gz")), load(str(tmp_path / "dicom"))
    assert from_nifti.shape == from_dicom.shape == (1, 12, 20, 18)  # ASL (20, 18, 12) laid out as R, A, S
    np.testing.assert_allclose(from_dicom.affine.numpy(), from_nifti.affine.numpy(), atol=1e-4)
    assert float((from_dicom - from_nifti).abs().max()) <= 0.5 + 1e-3
