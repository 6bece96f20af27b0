"""Write phantoms to disk: NIfTI (nibabel), NRRD / MetaImage (SimpleITK) and a CT DICOM series (SimpleITK).

Every format keeps the phantom's geometry: NIfTI stores the RAS affine as qform and sform; NRRD, MHA and DICOM get
the same voxels in ITK's LPS convention (see :mod:`monai_sadaan.data.geometry`). Files are written atomically
(temporary name, then rename); a DICOM series is written into a temporary folder renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import numpy as np

from monai_glue import atomic_directory, atomic_write_with
from .geometry import affine_to_itk_geometry
from .phantoms import Phantom

__all__ = ["NIFTI_SUFFIXES", "ITK_SUFFIXES", "save_phantom", "save_volume", "phantom_to_sitk", "save_phantom_dicom_series"]

NIFTI_SUFFIXES = (".nii.gz", ".nii")
ITK_SUFFIXES = (".nrrd", ".mha")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in NIFTI_SUFFIXES + ITK_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise ValueError(
        f"expected a file name ending in {', '.join(NIFTI_SUFFIXES + ITK_SUFFIXES)}, got {path.name!r} "
        "(.mhd is not offered: its separate .raw file cannot be written atomically)"
    )


def phantom_to_sitk(array: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of a nibabel-ordered array (I, J, K) with a voxel-to-RAS affine."""
    import SimpleITK as sitk

    spacing, origin, direction = affine_to_itk_geometry(affine)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def save_volume(array: np.ndarray, affine: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one volume with its geometry; the format follows the extension (.nii.gz, .nii, .nrrd, .mha).

    Args:
        array: (I, J, K) voxels in nibabel order.
        affine: (4, 4) voxel-to-RAS affine.
        path: output file.

    Returns:
        The path written.
    """
    path = Path(path)
    suffix = _suffix(path)
    if np.asarray(array).ndim != 3:
        raise ValueError(f"expected a 3D volume, got shape {tuple(np.shape(array))}")
    with atomic_write_with(path) as tmp:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib

            img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, dtype=float))
            img.header.set_xyzt_units("mm")
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            nib.save(img, tmp)
        else:
            import SimpleITK as sitk

            sitk.WriteImage(phantom_to_sitk(array, affine), tmp, useCompression=True)
    return path


def save_phantom(
    phantom: Phantom,
    image_path: str | os.PathLike,
    label_path: str | os.PathLike | None = None,
    image_dtype: str = "float32",
) -> tuple[Path, Path | None]:
    """Write a phantom's image (HU) and label map (int16), each in the format of its extension.

    Args:
        phantom: the case.
        image_path: image file (.nii.gz, .nii, .nrrd or .mha).
        label_path: label file, or None to skip it.
        image_dtype: ``"float32"`` (exact) or ``"int16"`` (HU rounded, as scanners store them; half the size).

    Returns:
        ``(image_path, label_path)``.
    """
    if image_dtype not in ("float32", "int16"):
        raise ValueError(f"expected image_dtype 'float32' or 'int16', got {image_dtype!r}")
    image_path = Path(image_path)
    _suffix(image_path)
    if label_path is not None:
        _suffix(Path(label_path))
    image = phantom.image.astype(np.float32, copy=False)
    if image_dtype == "int16":
        image = np.rint(image).clip(-32768, 32767).astype(np.int16)
    save_volume(image, phantom.affine, image_path)
    if label_path is None:
        return image_path, None
    return image_path, save_volume(phantom.label.astype(np.int16, copy=False), phantom.affine, label_path)


def _uid(*parts: object) -> str:
    """A deterministic DICOM UID under the UUID root 2.25 (no organisation root needed)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:16]
    return "2.25." + str(uuid.UUID(bytes=digest).int)


def save_phantom_dicom_series(
    phantom: Phantom, folder: str | os.PathLike, series_description: str | None = None, overwrite: bool = False
) -> list[Path]:
    """Write the phantom's image as a CT DICOM series, one file per slice, one series UID.

    The HU are stored as int16 (rounded) with rescale slope 1 and intercept 0. The slice axis is the phantom's last
    voxel axis; when the voxel axes are left-handed the slices are written in reverse order so that the series is
    right-handed (as DICOM readers assume): a reader gets the same voxels at the same world positions.

    Args:
        phantom: the case.
        folder: output folder (created; must not exist or be empty unless ``overwrite``).
        series_description: DICOM SeriesDescription; default names the scenario and seed.
        overwrite: replace an existing non-empty folder.

    Returns:
        The slice files, in slice order.
    """
    import SimpleITK as sitk

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"expected an empty or new folder for the DICOM series, got non-empty {folder}")
    hu = np.rint(phantom.image).clip(-32768, 32767).astype(np.int16)
    image = phantom_to_sitk(hu, phantom.affine)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    if np.linalg.det(direction) < 0:
        # reverse the slice axis: same voxels, same world positions, right-handed axes
        last = image.TransformIndexToPhysicalPoint((0, 0, image.GetSize()[2] - 1))
        flipped = sitk.GetImageFromArray(sitk.GetArrayFromImage(image)[::-1].copy())
        flipped.SetSpacing(image.GetSpacing())
        direction[:, 2] *= -1
        flipped.SetDirection(tuple(direction.ravel()))
        flipped.SetOrigin(last)
        image = flipped

    key = (phantom.scenario, phantom.seed, phantom.shape, tuple(np.round(phantom.affine, 4).ravel()))
    study_uid, series_uid, frame_uid = _uid("study", *key), _uid("series", *key), _uid("frame", *key)
    now_date, now_time = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    orientation = "\\".join(f"{v:.6f}" for v in (direction[0, 0], direction[1, 0], direction[2, 0], direction[0, 1], direction[1, 1], direction[2, 1]))
    description = series_description or f"SADAAn phantom {phantom.scenario} seed {phantom.seed}"
    common = {
        "0008|0016": "1.2.840.10008.5.1.4.1.1.2",  # SOP class: CT Image Storage
        "0008|0060": "CT",
        "0008|0020": now_date,
        "0008|0021": now_date,
        "0008|0030": now_time,
        "0008|0031": now_time,
        "0008|0070": "monai_sadaan synthetic phantom",
        "0008|103e": description,
        "0010|0010": f"Phantom^{phantom.scenario}",
        "0010|0020": f"SADAAN-{phantom.scenario}-{phantom.seed}",
        "0018|0050": f"{image.GetSpacing()[2]:.6f}",
        "0020|000d": study_uid,
        "0020|000e": series_uid,
        "0020|0052": frame_uid,
        "0020|0011": "1",
        "0020|0037": orientation,
        "0028|1052": "0",
        "0028|1053": "1",
        "0028|1054": "HU",
    }

    with atomic_directory(folder) as tmp:
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        names = []
        for k in range(image.GetSize()[2]):
            slice_k = image[:, :, k]
            for tag, value in common.items():
                slice_k.SetMetaData(tag, value)
            position = image.TransformIndexToPhysicalPoint((0, 0, k))
            slice_k.SetMetaData("0008|0018", _uid("instance", *key, k))
            slice_k.SetMetaData("0020|0013", str(k + 1))
            slice_k.SetMetaData("0020|0032", "\\".join(f"{v:.6f}" for v in position))
            slice_k.SetMetaData("0020|1041", f"{float(np.dot(position, direction[:, 2])):.6f}")
            name = f"slice_{k + 1:04d}.dcm"
            writer.SetFileName(str(tmp / name))
            writer.Execute(slice_k)
            names.append(name)
    return [folder / n for n in names]
