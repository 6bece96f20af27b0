"""Find and check the images of an inference folder: NIfTI, NRRD, MetaImage files and DICOM series folders.

Every input is checked from its header before any model runs, so a bad file fails fast with a message that says
what was expected and what came, and no output is written for it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "InputImageError", "list_image_inputs", "check_volume_header", "case_name"]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


class InputImageError(ValueError):
    """An input image is missing, unreadable, or not a 3-D single-channel volume."""


def case_name(path: str | os.PathLike) -> str:
    """File name without its image suffix (``ct_01.nii.gz`` -> ``ct_01``); a DICOM folder's own name."""
    name = Path(path).name
    for suf in IMAGE_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def _dicom_series(folder: Path) -> list[str]:
    import SimpleITK as sitk

    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or [])


def check_volume_header(path: str | os.PathLike) -> tuple[int, ...]:
    """Read only the header and return the size (x, y, z) of a 3-D single-channel volume.

    Raises:
        InputImageError: missing file, empty or unreadable file, a 2-D or 4-D image, several components per voxel,
            a zero-size dimension, a non-positive spacing, or a DICOM folder holding no series or several series.
    """
    import SimpleITK as sitk

    p = Path(path)
    if not p.exists():
        raise InputImageError(f"expected an image file or DICOM folder, got a missing path: {p}")
    reader = sitk.ImageFileReader()
    if p.is_dir():
        series = _dicom_series(p)
        if not series:
            raise InputImageError(f"expected a DICOM series in folder {p}, found none")
        if len(series) > 1:
            raise InputImageError(
                f"expected one DICOM series in folder {p}, found {len(series)} (series UIDs {', '.join(series)}); "
                "put each series in its own folder"
            )
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), series[0])
        if len(files) < 2:
            raise InputImageError(f"expected a 3D DICOM series of several slices in {p}, got {len(files)} slice")
        reader.SetFileName(files[0])
    else:
        if p.stat().st_size == 0:
            raise InputImageError(f"expected an image file, got an empty file: {p}")
        reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise InputImageError(f"expected a readable NIfTI/NRRD/MHA/DICOM image, got a corrupt or unknown file: {p}") from e
    size = tuple(int(s) for s in reader.GetSize())
    spacing = tuple(float(s) for s in reader.GetSpacing())
    if p.is_dir():
        size = size[:2] + (len(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), _dicom_series(p)[0])),)
        spacing = spacing[:2] + (1.0,)
    ncomp = reader.GetNumberOfComponents()
    if len(size) == 4 and size[3] == 1:
        size = size[:3]
    if len(size) != 3:
        raise InputImageError(f"expected a 3D single-channel image, got a {len(size)}D image of size {size}: {p}")
    if ncomp != 1:
        raise InputImageError(f"expected a 3D single-channel image, got {ncomp} components per voxel: {p}")
    if min(size) < 2:
        raise InputImageError(f"expected a 3D volume with at least 2 voxels per axis, got size {size}: {p}")
    if any(not (s > 0) for s in spacing):
        raise InputImageError(f"expected positive voxel spacing, got {spacing}: {p}")
    if p.is_file() and p.name.lower().endswith(".nii"):
        _check_nifti_data_size(p)
    return size


def _check_nifti_data_size(p: Path) -> None:
    """An uncompressed NIfTI whose voxel data is cut short passes a header read; compare the file size."""
    import nibabel as nib

    header = nib.load(str(p)).header
    expected = int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
    got = p.stat().st_size - int(header.get_data_offset())
    if got < expected:
        raise InputImageError(
            f"expected {expected} bytes of voxel data, got {max(got, 0)} (truncated file): {p}"
        )


def list_image_inputs(dataset_dir: str | os.PathLike, check: bool = True, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[dict[str, str]]:
    """Every image in ``dataset_dir``: files with an image suffix, and sub-folders holding a DICOM series
    (a folder that itself holds a DICOM series is one case).

    Returns:
        ``[{"image": path, "case": name}, ...]`` sorted by name, the form MONAI datasets take.

    Raises:
        InputImageError: the folder is missing or holds no image; with ``check``, the first bad image.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise InputImageError(f"expected a folder of images (--dataset_dir), got a missing path: {root}")
    items: list[dict[str, str]] = []
    if _dicom_series(root):
        items.append({"image": str(root), "case": case_name(root)})
    else:
        for child in sorted(root.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_file() and child.name.lower().endswith(tuple(suffixes)):
                items.append({"image": str(child), "case": case_name(child)})
            elif child.is_dir() and _dicom_series(child):
                items.append({"image": str(child), "case": case_name(child)})
    if not items:
        raise InputImageError(
            f"expected NIfTI/NRRD/MHA images or DICOM series folders in {root}, found none "
            f"(suffixes looked for: {', '.join(suffixes)})"
        )
    if check:
        for it in items:
            check_volume_header(it["image"])
    return items
