"""Check the slice geometry of a DICOM series before it is read as one volume.

ITK stacks a series' slices at ``first position + k * mean step`` along the slice normal, whatever the positions the
slices carry: a missing slice or an uneven step shifts every slice after it (masks one slice off, volumes wrong),
with only an ITK warning on stderr. :func:`check_dicom_series_geometry` reads every slice's header (no pixel data)
and refuses the series, naming the slices, unless the slices form one regular stack:

* every slice carries ImagePositionPatient (0020,0032) and ImageOrientationPatient (0020,0037), readable as 3 and 6
  numbers, with orthonormal row and column directions;
* every slice has the first slice's orientation (direction cosines within :data:`ORIENTATION_TOLERANCE`), rows,
  columns and pixel spacing;
* no two slices at the same position, no position offset within the slice plane (a gantry tilt or sheared stack,
  which ITK does not model), no gap (a step over :data:`GAP_FACTOR` times the median step: a missing slice), and
  every step within the spacing tolerance of the median step (:func:`spacing_tolerance_mm`: 1 % of the median
  step, at least 0.01 mm), and no slice further than that tolerance plus 10 % of a step from where ITK puts it.

Slices are named by their InstanceNumber (0020,0013) and file name. The accepted series' spacing along the normal
is the mean step (what ITK uses).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DicomSeriesError",
    "DicomSeriesGeometry",
    "GAP_FACTOR",
    "ORIENTATION_TOLERANCE",
    "SPACING_RELATIVE_TOLERANCE",
    "SPACING_ABSOLUTE_TOLERANCE_MM",
    "check_dicom_series_geometry",
    "spacing_tolerance_mm",
]

ORIENTATION_TOLERANCE = 1e-4
"""Largest difference of a direction cosine between two slices of one series (and from unit length / orthogonality)."""

SPACING_RELATIVE_TOLERANCE = 0.01
"""A step may differ from the median step by this fraction of the median step ..."""

SPACING_ABSOLUTE_TOLERANCE_MM = 0.01
"""... or by this many millimetres, whichever is larger (positions are often written with 2-6 decimals)."""

GAP_FACTOR = 1.5
"""A step over this many median steps is a gap: at least one missing slice."""

_TAG_POSITION = "0020|0032"
_TAG_ORIENTATION = "0020|0037"
_TAG_INSTANCE = "0020|0013"
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_MAX_NAMED = 8


class DicomSeriesError(ValueError):
    """A DICOM series whose slices do not form one regular stack."""


@dataclass(frozen=True)
class DicomSeriesGeometry:
    """The geometry of a checked DICOM series.

    Attributes:
        files: the slice files, sorted along the slice normal.
        size: (columns, rows, slices), ITK's index order.
        spacing: (column spacing, row spacing, step) in mm; the step is the mean distance between slices.
        affine: 4x4 voxel-to-RAS affine of ITK's index (i = column, j = row, k = slice).
    """

    files: tuple[str, ...]
    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    affine: np.ndarray


def spacing_tolerance_mm(step: float) -> float:
    """How far (mm) a step may differ from the median step ``step``: 1 % of it, at least 0.01 mm."""
    return max(SPACING_RELATIVE_TOLERANCE * abs(step), SPACING_ABSOLUTE_TOLERANCE_MM)


@dataclass
class _Slice:
    file: str
    instance: str | None
    position: np.ndarray | None
    orientation: np.ndarray | None
    size: tuple[int, int]
    pixel_spacing: tuple[float, float]
    bad_value: str | None = None

    @property
    def label(self) -> str:
        name = os.path.basename(self.file)
        return f"{self.instance} ({name})" if self.instance else name


def _numbers(text: str, count: int) -> np.ndarray | None:
    try:
        values = [float(v) for v in text.strip().strip("\x00").split("\\")]
    except ValueError:
        return None
    if len(values) != count or not all(np.isfinite(values)):
        return None
    return np.asarray(values, dtype=np.float64)


def _read_slice(file: str) -> _Slice:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(file)
    reader.LoadPrivateTagsOff()
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise DicomSeriesError(f"expected a readable DICOM slice, got an unreadable file: {file}") from e
    tags = (_TAG_POSITION, _TAG_ORIENTATION, _TAG_INSTANCE)
    meta = {k: reader.GetMetaData(k) for k in tags if reader.HasMetaDataKey(k)}
    instance = meta.get(_TAG_INSTANCE, "").strip().strip("\x00") or None
    position = orientation = None
    bad = None
    if _TAG_POSITION in meta:
        position = _numbers(meta[_TAG_POSITION], 3)
        if position is None:
            bad = f"ImagePositionPatient {meta[_TAG_POSITION].strip()!r}"
    if _TAG_ORIENTATION in meta:
        orientation = _numbers(meta[_TAG_ORIENTATION], 6)
        if orientation is None:
            bad = f"ImageOrientationPatient {meta[_TAG_ORIENTATION].strip()!r}"
    size = tuple(int(s) for s in reader.GetSize()[:2])
    spacing = tuple(float(s) for s in reader.GetSpacing()[:2])
    return _Slice(file, instance, position, orientation, size, spacing, bad)  # type: ignore[arg-type]


def _names(slices: Sequence[_Slice]) -> str:
    named = ", ".join(s.label for s in slices[:_MAX_NAMED])
    return named + (f" and {len(slices) - _MAX_NAMED} more" if len(slices) > _MAX_NAMED else "")


def _pairs(pairs: Sequence[str]) -> str:
    return "; ".join(pairs[:_MAX_NAMED]) + (f"; and {len(pairs) - _MAX_NAMED} more" if len(pairs) > _MAX_NAMED else "")


def check_dicom_series_geometry(files: Sequence[str | os.PathLike], folder: str | os.PathLike) -> DicomSeriesGeometry:
    """Check that the slices of one DICOM series form a regular stack (see the module docstring).

    Args:
        files: the series' slice files (e.g. ``SimpleITK.ImageSeriesReader.GetGDCMSeriesFileNames``), any order.
        folder: the series folder, named in error messages.

    Returns:
        the series' :class:`DicomSeriesGeometry` (files sorted along the slice normal).

    Raises:
        DicomSeriesError: fewer than 2 slices, a missing or unreadable position / orientation, slices of another
            orientation, size or pixel spacing, duplicate positions, a tilted (sheared) stack, a gap (missing
            slice) or uneven spacing; the message names the slices.
    """
    where = f"the DICOM series in {folder}"
    slices = [_read_slice(str(f)) for f in files]
    if len(slices) < 2:
        raise DicomSeriesError(f"expected a 3D DICOM series of several slices in {folder}, got {len(slices)} slice")
    bad = [s for s in slices if s.bad_value]
    if bad:
        raise DicomSeriesError(
            f"expected numeric ImagePositionPatient (3 values) and ImageOrientationPatient (6 values) in every slice "
            f"of {where}, got {bad[0].bad_value} in slice {bad[0].label}"
            + (f" (and {len(bad) - 1} more slices)" if len(bad) > 1 else "")
        )
    missing = [s for s in slices if s.position is None or s.orientation is None]
    if missing:
        raise DicomSeriesError(
            f"expected ImagePositionPatient (0020,0032) and ImageOrientationPatient (0020,0037) in every slice of "
            f"{where} (without them the slice order and spacing are unknown), got slices without them: "
            f"{_names(missing)}"
        )
    first = slices[0]
    row, col = first.orientation[:3], first.orientation[3:]  # type: ignore[index]
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(float(np.dot(row, col))) > 1e-3
    ):
        raise DicomSeriesError(
            f"expected orthonormal row and column directions in ImageOrientationPatient of {where}, got "
            f"{first.orientation.tolist()} in slice {first.label}"  # type: ignore[union-attr]
        )
    iop = [np.asarray(s.orientation) for s in slices]
    other = [s for s, o in zip(slices, iop) if np.max(np.abs(o - iop[0])) > ORIENTATION_TOLERANCE]
    if other:
        raise DicomSeriesError(
            f"expected one ImageOrientationPatient for every slice of {where}, got "
            f"{np.asarray(other[0].orientation).tolist()} in slice(s) {_names(other)} against {iop[0].tolist()} "
            f"in slice {first.label}"
        )
    other = [
        s for s in slices if s.size != first.size or not np.allclose(s.pixel_spacing, first.pixel_spacing, rtol=1e-4)
    ]
    if other:
        raise DicomSeriesError(
            f"expected the same rows, columns and pixel spacing in every slice of {where}, got "
            f"{other[0].size} / {other[0].pixel_spacing} in slice(s) {_names(other)} against {first.size} / "
            f"{first.pixel_spacing} in slice {first.label}"
        )
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    where_on_normal = np.array([float(np.dot(s.position, normal)) for s in slices])  # type: ignore[arg-type]
    order = np.argsort(where_on_normal, kind="stable")
    slices = [slices[i] for i in order]
    z = where_on_normal[order]
    steps = np.diff(z)
    median = float(np.median(steps))
    tol = spacing_tolerance_mm(median) if median > 0 else SPACING_ABSOLUTE_TOLERANCE_MM

    same = [
        f"{slices[i].label} and {slices[i + 1].label} ({steps[i]:.4g} mm apart)" for i in np.flatnonzero(steps <= tol)
    ]
    if same:
        raise DicomSeriesError(
            f"expected one slice per position in {where}, got slices at the same position: {_pairs(same)}"
        )
    tilted = []
    for i in range(len(slices) - 1):
        d = slices[i + 1].position - slices[i].position  # type: ignore[operator]
        in_plane = float(np.linalg.norm(d - np.dot(d, normal) * normal))
        if in_plane > tol:
            tilted.append(f"{slices[i].label} to {slices[i + 1].label} by {in_plane:.4g} mm")
    if tilted:
        raise DicomSeriesError(
            f"expected each slice of {where} straight along the slice normal from the one before (a regular stack), "
            f"got slices offset within the slice plane (gantry tilt or a sheared stack, which ITK does not "
            f"model): {_pairs(tilted)}"
        )
    gaps = [
        f"between {slices[i].label} and {slices[i + 1].label} ({steps[i]:.4g} mm, {steps[i] / median:.2g} steps)"
        for i in np.flatnonzero(steps > GAP_FACTOR * median)
    ]
    if gaps:
        raise DicomSeriesError(
            f"expected evenly spaced slices in {where} (median step {median:.4g} mm), got a gap where a slice is "
            f"missing: {_pairs(gaps)}"
        )
    uneven = [
        f"{steps[i]:.4g} mm between {slices[i].label} and {slices[i + 1].label}"
        for i in np.flatnonzero(np.abs(steps - median) > tol)
    ]
    if uneven:
        raise DicomSeriesError(
            f"expected evenly spaced slices in {where}: every step within {tol:.3g} mm of the median step "
            f"{median:.4g} mm, got {_pairs(uneven)}"
        )
    mean = float((z[-1] - z[0]) / (len(z) - 1))
    off = np.abs(z - (z[0] + mean * np.arange(len(z))))
    drift = [f"{slices[i].label} by {off[i]:.4g} mm" for i in np.flatnonzero(off > tol + 0.1 * mean)]
    if drift:
        raise DicomSeriesError(
            f"expected evenly spaced slices in {where}, got slices away from the regular grid of step {mean:.4g} mm "
            f"(the spacing drifts): {_pairs(drift)}"
        )

    lps = np.stack([row, col, normal], axis=1)
    spacing = (first.pixel_spacing[0], first.pixel_spacing[1], mean)
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ lps @ np.diag(spacing)
    affine[:3, 3] = _LPS_TO_RAS @ slices[0].position  # type: ignore[operator]
    return DicomSeriesGeometry(
        files=tuple(s.file for s in slices),
        size=(first.size[0], first.size[1], len(slices)),
        spacing=spacing,
        affine=affine,
    )

