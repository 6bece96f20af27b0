"""Find and check the images of an inference folder: NIfTI, NRRD, MetaImage files and DICOM series folders.

Every input is checked before any model runs, so a bad file fails fast with a message that says what was expected
and what came, and no output is written for any case: first the folder's layout (:func:`list_image_inputs`), then
every header (:func:`check_volume_header`, cheap), then every volume's voxel data (:func:`check_volume_content`:
truncated or corrupt data, NaN/Inf voxels, values past float32), one volume in memory at a time.

Rules the checks apply:

* **Layout.** Image files directly in the input folder, and sub-folders that each hold one DICOM series, are the
  cases; or the input folder itself is one DICOM series. Refused as ambiguous: image files beside a DICOM series
  (in the input folder or in a series folder), a DICOM series nested deeper than one sub-folder, image files inside
  a sub-folder that is not a series; also dangling links and non-regular files (FIFO, device) with an image suffix.
  Any other entry that is skipped (other files, folders without images, dangling links without an image suffix)
  is listed in one warning; hidden entries (names starting with ``.``) are ignored.
* **Case names** (:func:`unique_case_names`): the file name without its image suffix, made file-safe
  (:func:`safe_case_name`). Names that collide (compared case-insensitively: ``a.nii`` and ``a.nii.gz``; two names
  of non-ASCII letters only, both ``case``) each get ``-`` and 8 hex digits of the SHA-1 of their own file name, so
  a member's name does not depend on which other files are there; a warning says so. Names longer than
  :data:`MAX_CASE_NAME_LENGTH` are cut and get the same tag.
* **NIfTI geometry** follows the NIfTI standard as nibabel applies it (``nibabel.load(path).affine``: the sform if
  ``sform_code > 0``, else the qform if ``qform_code > 0``, else the base affine from ``pixdim``), which the bundle's
  reader (:class:`monai_sadaan.data.readers.SADAAnImageReader`) also uses; a sheared sform is carried exactly. A
  warning names the file when no orientation is stored (both codes 0) and when qform and sform disagree.
* **DICOM series** must form one regular stack (:mod:`monai_sadaan.data.dicom_geometry`: positions, orientation,
  gaps, uneven or duplicate slices, named by slice).
* **Geometry that cannot be computed with** is refused: a non-finite or degenerate affine, a spacing outside
  :data:`SPACING_LIMITS_MM`, more than :data:`MAX_VOXELS` voxels or more float32 bytes than the memory available.
* **MetaImage / NRRD data files** a header points to (``ElementDataFile``, ``data file``) must be regular files
  inside the input folder (a FIFO would block the reader forever).
* **Plausibility** (:func:`plausibility_flags`): a volume that does not look like CT (constant, no air, 0..255,
  values past CT's range) or has absurd but computable geometry is not refused; the datalist item carries the flags
  (:data:`INPUT_FLAG_CODES`) as a JSON string under ``"input_flags"`` and a warning names the case.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "INPUT_FLAG_CODES",
    "NOT_CT_FLAG_CODES",
    "MAX_CASE_NAME_LENGTH",
    "MAX_VOXELS",
    "PLAUSIBLE_FIELD_OF_VIEW_MM",
    "PLAUSIBLE_SPACING_MM",
    "SPACING_LIMITS_MM",
    "InputImageError",
    "VolumeHeader",
    "case_name",
    "case_name_from_path",
    "check_volume_content",
    "check_volume_header",
    "list_image_inputs",
    "plausibility_flags",
    "read_volume_header",
    "safe_case_name",
    "unique_case_names",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
"""File name endings of the image files an input folder may hold (any case)."""

_NAME_SUFFIXES = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".tif", ".tiff")

MAX_CASE_NAME_LENGTH = 100
"""Longest case name; longer ones are cut and tagged (the outputs add up to 21 characters to a file name)."""

SPACING_LIMITS_MM = (1e-3, 1e3)
"""Voxel spacing (mm) outside this range is refused: it is no imaging geometry, and volumes computed from it are
meaningless (a 1e30 mm spacing gives 1e88 mL) or fail to be written (a 1e-30 mm one)."""

MAX_VOXELS = 2**31
"""Most voxels one volume may have (8 GiB as float32; a 512 x 512 x 8192 scan). Independently, a volume whose float32
copy needs more bytes than the memory available (``MemAvailable``) is refused."""

PLAUSIBLE_SPACING_MM = (0.1, 10.0)
"""Voxel spacing (mm) of CT; outside it the case is flagged ``implausible_spacing`` (not refused)."""

PLAUSIBLE_FIELD_OF_VIEW_MM = (10.0, 2000.0)
"""Extent (mm) of the volume along each voxel axis; outside it the case is flagged ``implausible_field_of_view``."""

INPUT_FLAG_CODES: dict[str, str] = {
    "constant_intensity": "every voxel has the same value: a blank volume, nothing to segment",
    "no_air": "no voxel at or below -500: CT in Hounsfield units holds air (about -1000 HU) in and around the body; "
    "this looks like another modality or CT without its rescale (e.g. 0..255 or 0..4095)",
    "byte_range": "every value within 0..255: an 8-bit image (photo, screenshot, mask), not CT in Hounsfield units",
    "intensity_beyond_ct_range": "values below -4096 or above 32767: far outside CT's range (-1024..3071 HU)",
    "implausible_spacing": "a voxel spacing outside 0.1..10 mm, unusual for CT",
    "implausible_field_of_view": "an extent under 10 mm or over 2000 mm along an axis, not a CT of a body",
}
"""Code -> meaning of the flags :func:`plausibility_flags` attaches to a case (``"input_flags"`` of a datalist item)."""

NOT_CT_FLAG_CODES: frozenset[str] = frozenset(
    {"constant_intensity", "no_air", "byte_range", "intensity_beyond_ct_range"}
)
"""Flags whose voxel values say the image is not CT in Hounsfield units: the model's presence calls on such an image
mean nothing, so they are withheld (:func:`monai_sadaan.io.presence.withhold_presence_calls`). The geometry flags
(spacing, field of view) leave the calls standing."""

_CT_AIR_BELOW = -500.0
_CT_RANGE = (-4096.0, 32767.0)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_CORRUPT = "a corrupt or unknown file"
_MAX_DATA_FILES = 100_000


class InputImageError(ValueError):
    """An input image is missing, unreadable, not a 3-D single-channel volume, or holds bad voxel data."""


# ---------------------------------------------------------------------------------------------------- case names
def case_name_from_path(path: str | os.PathLike) -> str:
    """Case name from an input file or DICOM folder: the base name without image extensions.

    ``/data/case_007.nii.gz`` -> ``case_007``; ``/data/CT_0001/`` (a DICOM series folder) -> ``CT_0001``.
    """
    name = Path(str(path).rstrip("/\\")).name
    lower = name.lower()
    for ext in _NAME_SUFFIXES:
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name


case_name = case_name_from_path  # the name this module gave it before


def safe_case_name(name: str) -> str:
    """``name`` with every run of characters other than letters, digits and ``. _ + -`` replaced by ``_``
    (``"CT 1 (arterial)"`` -> ``"CT_1_arterial"``), without leading ``. _ + -`` or trailing ``. _ -``;
    ``"case"`` when nothing is left. The result names a folder and files (see the case writer)."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(name)).lstrip("._+-").rstrip("._-")
    return cleaned or "case"


def _name_tag(path: str | os.PathLike) -> str:
    name = Path(str(path).rstrip("/\\")).name
    return hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def unique_case_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """File-safe, unique case names for the inputs ``paths`` (see the module docstring).

    Args:
        paths: input files / DICOM folders, in the order of the result.

    Returns:
        one name per path: ``safe_case_name(case_name_from_path(path))``, or, for names longer than
        :data:`MAX_CASE_NAME_LENGTH` and for every member of a group of names equal up to case, the name cut to fit
        and ``-`` plus 8 hex digits of the SHA-1 of the path's own file name. A warning lists each such group.

    Raises:
        InputImageError: two inputs of the same file name (inputs from different folders).
    """
    bases = [safe_case_name(case_name_from_path(p)) for p in paths]

    def tagged(i: int) -> str:
        return f"{bases[i][: MAX_CASE_NAME_LENGTH - 9].rstrip('._-') or 'case'}-{_name_tag(paths[i])}"

    names = [tagged(i) if len(b) > MAX_CASE_NAME_LENGTH else b for i, b in enumerate(bases)]
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n.casefold(), []).append(i)
    for members in groups.values():
        if len(members) > 1:
            shared = names[members[0]]
            for i in members:
                names[i] = tagged(i)
            logger.warning(
                "inputs %s share the case name %r (names are compared ignoring case); each gets a tag of its own "
                "file name: %s",
                ", ".join(repr(Path(str(paths[i])).name) for i in members),
                shared,
                ", ".join(names[i] for i in members),
            )
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        j = seen.setdefault(n.casefold(), i)
        if j != i:
            raise InputImageError(
                f"expected a unique case name per input, got {n!r} for both {paths[j]} and {paths[i]} "
                "(inputs of the same file name); rename one"
            )
    return names


# ---------------------------------------------------------------------------------------------------- file access
_KIND = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _kind(mode: int) -> str:
    return _KIND.get(stat.S_IFMT(mode), "not a regular file")


def _stat_input(p: Path, what: str = "an image file or DICOM folder") -> os.stat_result:
    """``os.stat`` of an input path, with a refusal that says what it is when it cannot be read as one."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise InputImageError(f"expected {what}, got a dangling symbolic link to {os.readlink(p)}: {p}") from None
        raise InputImageError(f"expected {what}, got a missing path: {p}") from None
    except PermissionError:
        raise InputImageError(f"expected {what}, got a path this user may not read (permission denied): {p}") from None
    except OSError as e:  # a symlink loop, a name too long, ...
        raise InputImageError(f"expected {what}, got a path that cannot be opened ({e.strerror}): {p}") from None
    if stat.S_ISDIR(st.st_mode):
        if not os.access(p, os.R_OK | os.X_OK):
            raise InputImageError(f"expected {what}, got a folder this user may not read (permission denied): {p}")
    elif stat.S_ISREG(st.st_mode):
        if not os.access(p, os.R_OK):
            raise InputImageError(f"expected {what}, got a file this user may not read (permission denied): {p}")
    else:
        raise InputImageError(f"expected {what}, got {_kind(st.st_mode)}: {p}")
    return st


def _dicom_series(folder: Path) -> list[str]:
    import SimpleITK as sitk

    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or [])


def _is_nifti(p: Path) -> bool:
    return p.name.lower().endswith((".nii", ".nii.gz"))


def _inside(path: str, root: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _expand_pattern(value: str, p: Path) -> list[str]:
    parts = value.split()
    fmt = parts[0]
    if not re.fullmatch(r"[^%]*%0?\d*d[^%]*", fmt) or len(parts) < 3:
        raise InputImageError(
            f"expected a data file name or a 'name%d first last [step]' pattern, got {value!r} in {p}"
        )
    try:
        first, last = int(parts[1]), int(parts[2])
        step = int(parts[3]) if len(parts) > 3 else 1
    except ValueError:
        raise InputImageError(f"expected integer bounds in the data file pattern {value!r} of {p}") from None
    if step == 0 or abs((last - first) // step) + 1 > _MAX_DATA_FILES:
        raise InputImageError(f"expected a data file pattern of at most {_MAX_DATA_FILES} files, got {value!r} in {p}")
    return [fmt % i for i in range(first, last + (1 if step > 0 else -1), step)]


def _data_files(p: Path) -> list[str]:
    """Names of the data files the header ``p`` points to: MetaImage ``ElementDataFile`` (``.mha``, ``.mhd``),
    NRRD ``data file`` (``.nrrd``, ``.nhdr``); ``[]`` when the voxel data follows the header in ``p``."""
    with open(p, "rb") as f:
        head = f.read(1 << 16).decode("latin-1")
    lines = head.splitlines()
    meta = p.name.lower().endswith((".mha", ".mhd"))
    for idx, line in enumerate(lines):
        if meta:
            key, sep, value = line.partition("=")
            if not (sep and key.strip().lower() == "elementdatafile"):
                continue
        else:
            if idx > 0 and not line.strip():
                return []  # the end of a NRRD header: data attached
            key, sep, value = line.partition(":")
            if not (sep and key.strip().lower() in ("data file", "datafile")):
                continue
        value = value.strip()
        first = value.split()[0] if value else ""
        if meta and first.upper() == "LOCAL":
            return []
        if first.upper() == "LIST":
            return [v.strip() for v in lines[idx + 1 :] if v.strip()][:_MAX_DATA_FILES]
        if "%" in first:
            return _expand_pattern(value, p)
        return [value] if value else []
    return []


def _check_data_files(p: Path, root: Path) -> None:
    """Refuse a header whose data file is missing, not a regular file, or outside ``root`` (never opened here)."""
    for name in _data_files(p):
        data = name if os.path.isabs(name) else os.path.join(p.parent, name)
        try:
            st = os.stat(data)
        except OSError:
            raise InputImageError(
                f"expected the data file {name!r} that {p} names, got a missing path: {data}"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise InputImageError(
                f"expected the data file {name!r} that {p} names to be a regular file, got {_kind(st.st_mode)}: {data}"
            )
        if not _inside(data, root):
            raise InputImageError(
                f"expected the data file {name!r} that {p} names inside the input folder {root}, got "
                f"{os.path.realpath(data)}"
            )


# ---------------------------------------------------------------------------------------------------- headers
@dataclass(frozen=True)
class VolumeHeader:
    """What the header check learnt about one input.

    Attributes:
        size: (x, y, z) voxels, ITK's / nibabel's index order.
        spacing: voxel spacing (mm) along the three voxel axes.
        affine: 4x4 voxel-to-RAS affine (NIfTI: nibabel's; others: ITK's geometry converted to RAS).
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    affine: np.ndarray


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def _check_size(size: tuple[int, ...], p: Path) -> None:
    voxels = math.prod(size)
    need = voxels * 4
    if voxels > MAX_VOXELS:
        raise InputImageError(
            f"expected a volume of at most {MAX_VOXELS} voxels, got size {size} = {voxels:.4g} voxels, which need "
            f"{_gib(need)} of memory as float32: {p}"
        )
    available = _available_memory()
    if available is not None and need > available:
        raise InputImageError(
            f"expected a volume that fits in memory, got size {size}, which needs {_gib(need)} as float32 with "
            f"{_gib(available)} available: {p}"
        )


def _check_geometry(size: tuple[int, int, int], spacing: tuple[float, ...], affine: np.ndarray, p: Path) -> None:
    if min(size) < 2:
        raise InputImageError(f"expected a 3D volume with at least 2 voxels per axis, got size {size}: {p}")
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise InputImageError(f"expected positive voxel spacing, got {tuple(spacing)}: {p}")
    low, high = SPACING_LIMITS_MM
    if not all(low <= s <= high for s in spacing):
        raise InputImageError(
            f"expected voxel spacing within {low:g}..{high:g} mm, got {tuple(float(f'{s:.6g}') for s in spacing)}: {p}"
        )
    if not np.all(np.isfinite(affine)):
        raise InputImageError(f"expected a finite voxel-to-world affine, got {np.round(affine, 6).tolist()}: {p}")
    linear = affine[:3, :3]
    if abs(np.linalg.det(linear)) < 1e-6 * float(np.prod(np.linalg.norm(linear, axis=0))):
        raise InputImageError(
            f"expected three independent voxel axes, got a degenerate (flat) affine {np.round(affine, 6).tolist()}: {p}"
        )
    _check_size(size, p)


def _nifti_header(p: Path) -> VolumeHeader:
    import nibabel as nib

    try:
        img = nib.load(str(p))
        header = img.header
        shape = tuple(int(s) for s in header.get_data_shape())
        dtype = header.get_data_dtype()
        affine = np.asarray(img.affine, dtype=np.float64)
        qcode, scode = int(header["qform_code"]), int(header["sform_code"])
    except Exception as e:  # nibabel's own errors, gzip / zlib / struct errors of a cut or foreign file
        code = _unknown_nifti_datatype(p)
        if code is not None:
            raise InputImageError(
                f"expected voxels of a NIfTI-1 type (integer, float32, float64), got unsupported voxel type: datatype "
                f"code {code[0]} with {code[1]} bits per voxel (float16, for one, is no NIfTI type; save as "
                f"float32): {p}"
            ) from e
        reason = " ".join(str(e).split())[:200]
        raise InputImageError(
            f"expected a readable NIfTI/NRRD/MHA/DICOM image, got a corrupt or unknown file ({type(e).__name__}: "
            f"{reason}): {p}"
        ) from e
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise InputImageError(f"expected a 3D single-channel image, got a {len(shape)}D image of size {shape}: {p}")
    if dtype.kind not in "iuf" or dtype.fields is not None:
        raise InputImageError(
            f"expected integer or floating-point voxels, got unsupported voxel type {dtype.name} "
            f"(NIfTI datatype {int(header['datatype'])}): {p}"
        )
    slope, inter = header.get_slope_inter()
    if (slope is not None and not math.isfinite(slope)) or (inter is not None and not math.isfinite(inter)):
        raise InputImageError(f"expected finite intensity scaling, got scl_slope {slope} and scl_inter {inter}: {p}")
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    _check_geometry(shape, spacing, affine, p)  # type: ignore[arg-type]
    if qcode == 0 and scode == 0:
        logger.warning(
            "%s stores no orientation (qform_code = sform_code = 0): its voxels are placed with nibabel's base "
            "affine from pixdim alone (x flipped, centred on the volume); other tools may place them otherwise. "
            "Check the orientation of the results", p,
        )
    elif qcode > 0 and scode > 0:
        q, s = header.get_qform(), header.get_sform()
        if not np.allclose(q, s, rtol=1e-5, atol=1e-3):
            logger.warning(
                "%s has a qform and a sform that disagree (largest difference %.4g): the sform is used (NIfTI "
                "standard, as nibabel applies it; ITK would use the qform). Check the orientation of the results",
                p, float(np.max(np.abs(q - s))),
            )
    if p.name.lower().endswith(".nii"):
        _check_nifti_data_size(p, header)
    return VolumeHeader(shape, spacing, affine)  # type: ignore[arg-type]


def _unknown_nifti_datatype(p: Path) -> tuple[int, int] | None:
    """``(datatype, bitpix)`` of a NIfTI header whose datatype code nibabel does not know, else ``None``."""
    import nibabel as nib
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(p)) as f:
            raw = f.read(540)
        for klass in (nib.Nifti1Header, nib.Nifti2Header):
            if len(raw) >= klass.sizeof_hdr:
                h = klass(raw[: klass.sizeof_hdr], check=False)
                if int(h["sizeof_hdr"]) == klass.sizeof_hdr:
                    code = int(h["datatype"])
                    return None if code in nib.nifti1.data_type_codes.code else (code, int(h["bitpix"]))
    except Exception:  # the caller reports the file as corrupt
        return None
    return None


def _check_nifti_data_size(p: Path, header: object) -> None:
    """An uncompressed NIfTI whose voxel data is cut short passes a header read; compare the file size."""
    expected = int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize  # type: ignore[attr-defined]
    got = p.stat().st_size - int(header.get_data_offset())  # type: ignore[attr-defined]
    if got < expected:
        raise InputImageError(f"expected {expected} bytes of voxel data, got {max(got, 0)} (truncated file): {p}")


def _itk_header(p: Path, root: Path) -> VolumeHeader:
    import SimpleITK as sitk

    from .geometry import itk_geometry_to_affine

    _check_data_files(p, root)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise InputImageError(f"expected a readable NIfTI/NRRD/MHA/DICOM image, got {_CORRUPT}: {p}") from e
    size = tuple(int(s) for s in reader.GetSize())
    spacing = tuple(float(s) for s in reader.GetSpacing())
    if len(size) == 4 and size[3] == 1:
        size, spacing = size[:3], spacing[:3]
    if len(size) != 3:
        raise InputImageError(f"expected a 3D single-channel image, got a {len(size)}D image of size {size}: {p}")
    ncomp = reader.GetNumberOfComponents()
    if ncomp != 1:
        raise InputImageError(f"expected a 3D single-channel image, got {ncomp} components per voxel: {p}")
    if min(size) < 2:
        raise InputImageError(f"expected a 3D volume with at least 2 voxels per axis, got size {size}: {p}")
    if any(not (s > 0) for s in spacing):
        raise InputImageError(f"expected positive voxel spacing, got {spacing}: {p}")
    affine = itk_geometry_to_affine(spacing, tuple(reader.GetOrigin())[:3], _direction3(reader.GetDirection()))
    _check_geometry(size, spacing, affine, p)  # type: ignore[arg-type]
    return VolumeHeader(size, spacing, affine)  # type: ignore[arg-type]


def _direction3(direction: Sequence[float]) -> tuple[float, ...]:
    n = int(round(math.sqrt(len(direction))))
    d = np.asarray(direction, dtype=np.float64).reshape(n, n)
    return tuple(d[:3, :3].ravel())


def _dicom_header(p: Path) -> VolumeHeader:
    import SimpleITK as sitk

    from .dicom_geometry import DicomSeriesError, check_dicom_series_geometry  # DICOM inputs only

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
    reader = sitk.ImageFileReader()
    reader.SetFileName(files[0])
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise InputImageError(f"expected a readable NIfTI/NRRD/MHA/DICOM image, got {_CORRUPT}: {p}") from e
    ncomp = reader.GetNumberOfComponents()
    if ncomp != 1:
        raise InputImageError(f"expected a 3D single-channel image, got {ncomp} components per voxel: {p}")
    try:
        geometry = check_dicom_series_geometry(files, p)
    except DicomSeriesError as e:
        raise InputImageError(str(e)) from e
    _check_geometry(geometry.size, geometry.spacing, geometry.affine, p)
    return VolumeHeader(geometry.size, geometry.spacing, geometry.affine)


def read_volume_header(path: str | os.PathLike, root: str | os.PathLike | None = None) -> VolumeHeader:
    """Read only the header(s) of one input, check them, and return its :class:`VolumeHeader`.

    Args:
        path: an image file (``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``) or a DICOM folder.
        root: the input folder, that a MetaImage / NRRD data file must lie in (default: ``path``'s folder).

    Raises:
        InputImageError: see :func:`check_volume_header`.
    """
    p = Path(path)
    st = _stat_input(p)
    if stat.S_ISDIR(st.st_mode):
        return _dicom_header(p)
    if st.st_size == 0:
        raise InputImageError(f"expected an image file, got an empty file: {p}")
    if _is_nifti(p):
        return _nifti_header(p)
    return _itk_header(p, Path(root) if root is not None else p.parent)


def check_volume_header(path: str | os.PathLike, root: str | os.PathLike | None = None) -> tuple[int, ...]:
    """Read only the header and return the size (x, y, z) of a 3-D single-channel volume.

    NIfTI headers are read with nibabel (its affine, see the module docstring), others with SimpleITK; a DICOM
    folder's slices are checked to form one regular stack.

    Args:
        path: an image file or a DICOM series folder.
        root: the input folder, that a MetaImage / NRRD data file must lie in (default: ``path``'s folder).

    Raises:
        InputImageError: a missing, unreadable (permission), dangling, empty, non-regular (FIFO, device) or
            corrupt file; a 2-D or 4-D image; several components per voxel; an unsupported voxel type; a zero-size
            dimension; a non-positive spacing or one outside :data:`SPACING_LIMITS_MM`; a non-finite or degenerate
            affine; too many voxels for :data:`MAX_VOXELS` or the memory; a MetaImage / NRRD data file that is not
            a regular file inside ``root``; a DICOM folder holding no series, several series, or slices that do
            not form a regular stack.
    """
    return read_volume_header(path, root).size


# ---------------------------------------------------------------------------------------------------- voxel data
NIFTI_CHUNK_BYTES = 1 << 24
"""Bytes of stored NIfTI voxel data read at a time by :func:`iter_nifti_data` (16 MiB)."""


def iter_nifti_data(img: object, chunk_items: int | None = None) -> Iterator[np.ndarray]:
    """The stored (unscaled) voxels of a NIfTI image file, in file order, one chunk at a time.

    One pass over the file (or its gzip stream) into one reusable buffer: no array, and no buffer, of the volume's
    size (``np.asanyarray(img.dataobj)`` reads a .nii.gz through a second buffer of the volume's size). Each chunk
    is a 1-D view of that buffer, valid until the next one is read; its dtype is the file's (byte order included).

    Args:
        img: a nibabel NIfTI image as ``nibabel.load`` gives it (its data not read yet).
        chunk_items: voxels per chunk (the last may be shorter); default :data:`NIFTI_CHUNK_BYTES` worth.

    Raises:
        OSError: the file holds fewer bytes than the header declares (``EOFError`` / ``zlib.error`` / gzip's
            ``BadGzipFile`` come through from a cut or corrupt gzip stream).
    """
    from nibabel.openers import ImageOpener

    proxy = img.dataobj  # type: ignore[attr-defined]
    dtype = np.dtype(proxy.dtype)
    total = math.prod(int(s) for s in proxy.shape)
    step = int(chunk_items) if chunk_items else max(1, NIFTI_CHUNK_BYTES // dtype.itemsize)
    buffer = np.empty(max(1, min(step, total)), dtype=dtype)
    with ImageOpener(proxy.file_like, "rb") as f:
        f.seek(int(proxy.offset))
        done = 0
        while done < total:
            n = min(step, total - done)
            view = memoryview(buffer[:n]).cast("B")
            got = 0
            while got < view.nbytes:
                k = f.readinto(view[got:])
                if not k:
                    raise OSError(
                        f"Expected {total * dtype.itemsize} bytes, got {done * dtype.itemsize + got} bytes from "
                        f"{proxy.file_like}\n - could the file be damaged?"
                    )
                got += k
            yield buffer[:n]
            done += n


def _scan_nifti(p: Path) -> tuple[tuple[int, ...], float, float, int, int, tuple[float, float]]:
    """Read a NIfTI file's voxels once, in chunks (:func:`iter_nifti_data`), without holding the volume.

    Integer data is scanned unscaled (it cannot hold NaN/Inf, and its extremes scale linearly); float data is scaled
    per chunk as nibabel scales it, and its NaN / Inf voxels are counted.

    Returns:
        ``(shape, min, max, n_nan, n_inf, (slope, inter))``: the scaling still to apply to min / max (``(1, 0)``
        when applied); min / max of the finite values (``inf``, ``-inf`` when there are none).
    """
    import nibabel as nib
    from nibabel.volumeutils import apply_read_scaling

    img = nib.load(str(p))
    proxy = img.dataobj
    shape = tuple(int(s) for s in proxy.shape)
    slope, inter = float(getattr(proxy, "slope", 1.0)), float(getattr(proxy, "inter", 0.0))
    integer = np.issubdtype(np.dtype(proxy.dtype), np.integer)
    if integer and not (np.isfinite(slope) and np.isfinite(inter)):
        raise InputImageError(f"expected finite intensity scaling, got scl_slope {slope} and scl_inter {inter}: {p}")
    lo, hi, n_nan, n_inf = math.inf, -math.inf, 0, 0
    for chunk in iter_nifti_data(img):
        if not integer:
            chunk = apply_read_scaling(chunk, np.asanyarray(proxy.slope), np.asanyarray(proxy.inter))
            nan, inf = _count_non_finite(chunk)
            if nan or inf:
                n_nan, n_inf = n_nan + nan, n_inf + inf
                continue  # refused anyway
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    return shape, lo, hi, n_nan, n_inf, ((slope, inter) if integer else (1.0, 0.0))


def _read_sitk_voxels(p: Path) -> tuple[object, np.ndarray, tuple[float, float]]:
    """NRRD / MetaImage voxels, or a DICOM folder's single series, with SimpleITK.

    Returns:
        ``(image, view, (1, 0))``: a view of the image's own buffer (no copy), valid while ``image`` lives.
    """
    import SimpleITK as sitk

    if p.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), _dicom_series(p)[0]))
        image = reader.Execute()
    else:
        image = sitk.ReadImage(str(p))
    return image, sitk.GetArrayViewFromImage(image), (1.0, 0.0)


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


def _read_content(p: Path, root: Path | None = None) -> tuple[tuple[int, ...], float, float]:
    """Read and check the voxel data; ``(shape, min, max)`` with min / max scaled, in float64."""
    import zlib

    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    st = _stat_input(p)
    if stat.S_ISREG(st.st_mode) and not _is_nifti(p):
        _check_data_files(p, root if root is not None else p.parent)  # never hand ITK a FIFO
    try:
        if _is_nifti(p):
            shape, lo, hi, n_nan, n_inf, (slope, inter) = _scan_nifti(p)
        else:
            owner, array, (slope, inter) = _read_sitk_voxels(p)
    except (EOFError, OSError, zlib.error, RuntimeError, ImageFileError, HeaderDataError) as e:
        # EOFError: gzip stream cut short; OSError: bad gzip data or fewer bytes than the header declares;
        # zlib.error: corrupt deflate data; RuntimeError: ITK could not read the data; nibabel's own errors
        reason = " ".join(str(e).split())[:300]
        raise InputImageError(
            f"expected complete voxel data, got a truncated or corrupt file ({type(e).__name__}: {reason}): {p}"
        ) from e
    if not _is_nifti(p):
        shape = tuple(int(s) for s in array.shape)
        n_nan = n_inf = 0
        if array.size and np.issubdtype(array.dtype, np.inexact):
            n_nan, n_inf = _count_non_finite(array)
        lo, hi = (float(array.min()), float(array.max())) if array.size and not (n_nan or n_inf) else (0.0, 0.0)
        del array, owner  # the view first, then the image that owns its buffer
    if math.prod(shape) == 0:
        raise InputImageError(f"expected a non-empty voxel array, got shape {shape}: {p}")
    if n_nan or n_inf:
        raise InputImageError(
            f"expected finite voxel values, got {n_nan} NaN and {n_inf} Inf voxels of {math.prod(shape)} in {p}"
        )
    lo, hi = sorted((lo * slope + inter, hi * slope + inter))  # scaled in float64: no overflow here
    if not (-_FLOAT32_MAX <= lo and hi <= _FLOAT32_MAX):
        scaled = f" (stored values scaled by scl_slope {slope:g}, scl_inter {inter:g})"
        scaled = "" if (slope, inter) == (1, 0) else scaled
        raise InputImageError(
            f"expected voxel values within the float32 range (+/-{_FLOAT32_MAX:.4g}) the model reads, got values "
            f"from {lo:.4g} to {hi:.4g}{scaled}: {p}"
        )
    return shape, lo, hi


def check_volume_content(path: str | os.PathLike, root: str | os.PathLike | None = None) -> tuple[int, ...]:
    """Read a volume's voxel data once and check it: complete, non-empty, finite and within float32's range.

    NIfTI files are read with nibabel (``np.asanyarray(img.dataobj)``) so that NaN survives; NRRD / MetaImage files
    and DICOM series folders with SimpleITK. Integer voxel types cannot hold NaN/Inf: their finiteness scan is
    skipped, but the data is still read in full, so truncation is still found, and their scaled range (NIfTI
    ``scl_slope`` / ``scl_inter``, applied in float64 to the stored minimum and maximum) must fit float32. Call
    :func:`check_volume_header` first (``list_image_inputs`` does): this function assumes a readable header.

    Args:
        path: an image file (``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``) or a DICOM folder.
        root: the input folder, that a MetaImage / NRRD data file must lie in (default: ``path``'s folder).

    Returns:
        The shape of the voxel array as read (NIfTI: (x, y, z), SimpleITK: (z, y, x); a NIfTI 4th axis of size 1
        is kept).

    Raises:
        InputImageError: voxel data that is cut short or fails to decompress, an empty voxel array, NaN/Inf
            voxels (the message gives both counts and the file), or values past float32 (e.g. int16 voxels with
            ``scl_slope`` 1e38).
    """
    return _read_content(Path(path), Path(root) if root is not None else None)[0]


# ---------------------------------------------------------------------------------------------------- plausibility
def plausibility_flags(header: VolumeHeader, minimum: float, maximum: float) -> list[dict[str, str]]:
    """Flags for input that is computable but does not look like CT (codes of :data:`INPUT_FLAG_CODES`).

    Args:
        header: the volume's checked header.
        minimum: smallest voxel value (scaled, e.g. Hounsfield units).
        maximum: largest voxel value.

    Returns:
        ``[{"code": ..., "message": ...}, ...]`` in the order of :data:`INPUT_FLAG_CODES`; empty for CT-like input.
    """
    flags: list[dict[str, str]] = []

    def flag(code: str, detail: str) -> None:
        flags.append({"code": code, "message": f"{INPUT_FLAG_CODES[code]} ({detail})"})

    values = f"values {minimum:.6g}..{maximum:.6g}"
    if minimum == maximum:
        flag("constant_intensity", f"every voxel is {minimum:.6g}")
    if minimum > _CT_AIR_BELOW:
        flag("no_air", values)
    if minimum >= 0 and maximum <= 255:
        flag("byte_range", values)
    if minimum < _CT_RANGE[0] or maximum > _CT_RANGE[1]:
        flag("intensity_beyond_ct_range", values)
    low, high = PLAUSIBLE_SPACING_MM
    if not all(low <= s <= high for s in header.spacing):
        flag("implausible_spacing", f"spacing {tuple(float(f'{s:.4g}') for s in header.spacing)} mm")
    extent = tuple(n * s for n, s in zip(header.size, header.spacing))
    low, high = PLAUSIBLE_FIELD_OF_VIEW_MM
    if not all(low <= e <= high for e in extent):
        flag("implausible_field_of_view", f"extent {tuple(float(f'{e:.4g}') for e in extent)} mm")
    return flags


# ---------------------------------------------------------------------------------------------------- the folder
def _has_suffix(name: str, suffixes: Sequence[str]) -> bool:
    return name.lower().endswith(tuple(s.lower() for s in suffixes))


def _list_dir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except PermissionError:
        raise InputImageError(f"expected a folder this user may read, got permission denied: {folder}") from None


def _scan_folder(root: Path, suffixes: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The inputs of ``root`` and the skipped entries (``"name (why)"``); refuses ambiguous layouts."""
    inputs: list[Path] = []
    skipped: list[str] = []
    children = _list_dir(root)
    if _dicom_series(root):
        images = [c.name for c in children if not c.name.startswith(".") and _has_suffix(c.name, suffixes)]
        nested = [c.name for c in children if not c.name.startswith(".") and c.is_dir() and _dicom_series(c)]
        if images or nested:
            raise InputImageError(
                f"expected either one DICOM series or image files and series folders in {root}, got both: a DICOM "
                f"series and {', '.join(images + [n + '/' for n in nested])}; put the series in a folder of its own"
            )
        return [root], skipped
    for child in children:
        name = child.name
        if name.startswith("."):  # hidden by convention (.DS_Store, markers of other tools): not listed
            continue
        if child.is_symlink() and not child.exists():
            if _has_suffix(name, suffixes):
                raise InputImageError(
                    f"expected an image file, got a dangling symbolic link to {os.readlink(child)}: {child}"
                )
            skipped.append(f"{name} (dangling symbolic link)")
            continue
        if child.is_dir():
            inputs += _scan_subfolder(child, suffixes, skipped)
        elif _has_suffix(name, suffixes):
            if not child.is_file():
                raise InputImageError(f"expected a regular image file, got {_kind(os.stat(child).st_mode)}: {child}")
            inputs.append(child)
        else:
            skipped.append(f"{name} (not an image file: suffixes {', '.join(suffixes)})")
    return inputs, skipped


def _scan_subfolder(folder: Path, suffixes: Sequence[str], skipped: list[str]) -> list[Path]:
    children = [c for c in _list_dir(folder) if not c.name.startswith(".")]
    images = [c.name for c in children if _has_suffix(c.name, suffixes) and not c.is_dir()]
    nested = [c.name for c in children if c.is_dir() and _dicom_series(c)]
    if _dicom_series(folder):
        if images or nested:
            raise InputImageError(
                f"expected only the DICOM series in the series folder {folder}, got also "
                f"{', '.join(images + [n + '/' for n in nested])}; put each image and series in its own place"
            )
        return [folder]
    if nested:
        raise InputImageError(
            f"expected DICOM series folders directly in the input folder, got series nested two levels deep in "
            f"{folder}: {', '.join(n + '/' for n in nested)}; pass {folder} as the input folder or move them up"
        )
    if images:
        raise InputImageError(
            f"expected image files directly in the input folder, got image files in its sub-folder {folder}: "
            f"{', '.join(images[:5])}{' ...' if len(images) > 5 else ''}; pass {folder} as the input folder or "
            "move them up"
        )
    skipped.append(f"{folder.name}/ (a folder without a DICOM series or image files; not searched deeper)")
    return []


def _check_dataset_dir(dataset_dir: str | os.PathLike) -> Path:
    root = Path(dataset_dir)
    what = "a folder of images (--dataset_dir)"
    st = _stat_input(root, what)
    if not stat.S_ISDIR(st.st_mode):
        raise InputImageError(f"expected {what}, got a file: {root}; pass the folder that holds it")
    return root


def list_image_inputs(
    dataset_dir: str | os.PathLike, check: bool = True, suffixes: Sequence[str] = IMAGE_SUFFIXES
) -> list[dict[str, str]]:
    """Every image in ``dataset_dir``: files with an image suffix, and sub-folders holding a DICOM series
    (a folder that itself holds a DICOM series is one case). See the module docstring for the rules.

    Args:
        dataset_dir: the input folder.
        check: check every image before returning: all headers first (:func:`check_volume_header`), then the voxel
            data of each image in turn (:func:`check_volume_content`; one volume in memory at a time, so each
            volume is read twice in a run: here and by the loader), which also gives the plausibility flags.
        suffixes: file name endings that mark an image file.

    Returns:
        ``[{"image": path, "case": name, "source": absolute path, "input_flags": JSON list}, ...]`` sorted by file
        name, the form MONAI datasets take. ``case`` is unique and file-safe (:func:`unique_case_names`);
        ``input_flags`` is ``json.dumps`` of :func:`plausibility_flags` (``"[]"`` for CT-like input, and always
        with ``check=False``), a string so that it survives MONAI's collate / decollate.

    Raises:
        InputImageError: the folder is missing, not a folder, unreadable, holds no image or an ambiguous layout;
            with ``check``, the first bad image (a bad header is reported before any voxel data is read).
    """
    root = _check_dataset_dir(dataset_dir)
    inputs, skipped = _scan_folder(root, suffixes)
    if not inputs:
        raise InputImageError(
            f"expected NIfTI/NRRD/MHA images or DICOM series folders in {root}, found none "
            f"(suffixes looked for: {', '.join(suffixes)})"
            + (f"; skipped: {'; '.join(skipped[:10])}" if skipped else "")
        )
    if skipped:
        logger.warning("skipped %d entries of the input folder %s: %s", len(skipped), root, "; ".join(skipped))
    names = unique_case_names(inputs)
    items = [
        {"image": str(p), "case": n, "source": os.path.abspath(p), "input_flags": "[]"} for p, n in zip(inputs, names)
    ]
    if check:
        headers = [read_volume_header(it["image"], root) for it in items]
        for it, header in zip(items, headers):
            _, lo, hi = _read_content(Path(it["image"]), root)
            flags = plausibility_flags(header, lo, hi)
            it["input_flags"] = json.dumps(flags)
            if flags:
                not_ct = any(f["code"] in NOT_CT_FLAG_CODES for f in flags)
                logger.warning(
                    "input %s (case %s) does not look like CT; %s: %s",
                    it["source"], it["case"],
                    "no presence call is made and nothing is painted" if not_ct else "its results may mean nothing",
                    "; ".join(f"{f['code']}: {f['message']}" for f in flags),
                )
    return items
