"""Find and check the images of an inference folder: NIfTI, NRRD, MetaImage files and DICOM series folders.

Every input is checked before any model runs, so a bad file fails fast with a message that says what was expected
and what came, and no output is written for any case: first every header (:func:`check_volume_header`, cheap),
then every volume's voxel data (:func:`check_volume_content`: truncated or corrupt data, NaN/Inf voxels), one
volume in memory at a time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "InputImageError",
    "list_image_inputs",
    "check_volume_header",
    "check_volume_content",
    "case_name",
]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


class InputImageError(ValueError):
    """An input image is missing, unreadable, not a 3-D single-channel volume, or holds bad voxel data."""


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


def _is_nifti(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith((".nii", ".nii.gz"))


def _read_nifti_voxels(p: Path) -> tuple[object, np.ndarray]:
    """NIfTI voxels with nibabel, which keeps NaN (ITK reads NaN in NIfTI files as 0).

    Integer data is returned unscaled: it cannot hold NaN/Inf, and scaling it would double or quadruple the memory.
    Returns ``(None, array)``, the form of :func:`_read_sitk_voxels`.
    """
    import nibabel as nib

    img = nib.load(str(p), mmap=False)  # one plain read: faulting in a memory map page by page is ~5x slower
    proxy = img.dataobj
    if np.issubdtype(img.get_data_dtype(), np.integer) and hasattr(proxy, "get_unscaled"):
        slope, inter = float(getattr(proxy, "slope", 1.0)), float(getattr(proxy, "inter", 0.0))
        if not (np.isfinite(slope) and np.isfinite(inter)):
            raise InputImageError(f"expected finite intensity scaling, got scl_slope {slope} and scl_inter {inter}: {p}")
        return None, np.asarray(proxy.get_unscaled())
    return None, np.asanyarray(proxy)


def _read_sitk_voxels(p: Path) -> tuple[object, np.ndarray]:
    """NRRD / MetaImage voxels, or a DICOM folder's single series, with SimpleITK.

    Returns ``(image, view)``: a view of the image's own buffer (no copy); the view is valid while ``image`` lives.
    """
    import SimpleITK as sitk

    if p.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), _dicom_series(p)[0]))
        image = reader.Execute()
    else:
        image = sitk.ReadImage(str(p))
    return image, sitk.GetArrayViewFromImage(image)


def _count_non_finite(array: np.ndarray, chunk: int = 1 << 22) -> tuple[int, int]:
    """Number of NaN and of +/-Inf values, scanned in chunks so the scan itself needs little extra memory."""
    flat = array.ravel(order="K")  # a view for C- and Fortran-ordered arrays (nibabel gives Fortran order)
    n_nan = n_inf = 0
    for start in range(0, flat.size, chunk):
        part = flat[start : start + chunk]
        finite = np.isfinite(part)
        if not finite.all():
            nan = int(np.count_nonzero(np.isnan(part)))
            n_nan += nan
            n_inf += int(part.size - np.count_nonzero(finite)) - nan
    return n_nan, n_inf


def check_volume_content(path: str | os.PathLike) -> tuple[int, ...]:
    """Read a volume's voxel data once and check it: complete, non-empty and finite.

    NIfTI files are read with nibabel (``np.asanyarray(img.dataobj)``) so that NaN survives; NRRD / MetaImage files
    and DICOM series folders with SimpleITK. Integer voxel types cannot hold NaN/Inf: their finiteness scan is
    skipped, but the data is still read in full, so truncation is still found. Call :func:`check_volume_header`
    first (``list_image_inputs`` does): this function assumes a readable header.

    Args:
        path: an image file (``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``) or a DICOM folder.

    Returns:
        The shape of the voxel array as read (NIfTI: (x, y, z), SimpleITK: (z, y, x); a NIfTI 4th axis of size 1
        is kept).

    Raises:
        InputImageError: voxel data that is cut short or fails to decompress, an empty voxel array, or NaN/Inf
            voxels (the message gives both counts and the file).
    """
    import zlib

    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    p = Path(path)
    if not p.exists():
        raise InputImageError(f"expected an image file or DICOM folder, got a missing path: {p}")
    try:
        owner, array = _read_nifti_voxels(p) if _is_nifti(p) else _read_sitk_voxels(p)
    except (EOFError, OSError, zlib.error, RuntimeError, ImageFileError, HeaderDataError) as e:
        # EOFError: gzip stream cut short; OSError: bad gzip data or fewer bytes than the header declares;
        # zlib.error: corrupt deflate data; RuntimeError: ITK could not read the data; nibabel's own errors
        reason = " ".join(str(e).split())[:300]
        raise InputImageError(
            f"expected complete voxel data, got a truncated or corrupt file ({type(e).__name__}: {reason}): {p}"
        ) from e
    if array.size == 0:
        raise InputImageError(f"expected a non-empty voxel array, got shape {tuple(array.shape)}: {p}")
    if np.issubdtype(array.dtype, np.inexact):
        n_nan, n_inf = _count_non_finite(array)
        if n_nan or n_inf:
            raise InputImageError(
                f"expected finite voxel values, got {n_nan} NaN and {n_inf} Inf voxels "
                f"of {array.size} in {p}"
            )
    shape = tuple(int(s) for s in array.shape)
    del array, owner  # the view first, then the image that owns its buffer
    return shape


def list_image_inputs(dataset_dir: str | os.PathLike, check: bool = True, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[dict[str, str]]:
    """Every image in ``dataset_dir``: files with an image suffix, and sub-folders holding a DICOM series
    (a folder that itself holds a DICOM series is one case).

    Args:
        dataset_dir: the input folder.
        check: check every image before returning: all headers first (:func:`check_volume_header`), then the voxel
            data of each image in turn (:func:`check_volume_content`; one volume in memory at a time, so each
            volume is read twice in a run: here and by the loader).
        suffixes: file name endings that mark an image file.

    Returns:
        ``[{"image": path, "case": name}, ...]`` sorted by name, the form MONAI datasets take.

    Raises:
        InputImageError: the folder is missing or holds no image; with ``check``, the first bad image (a bad header
            is reported before any voxel data is read).
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
        for it in items:
            check_volume_content(it["image"])
    return items
