"""Voxel-grid geometry, the one home of it: orientation codes, voxel-to-RAS affines, the RAS <-> LPS conversion,
ITK's (spacing, origin, direction) and the volume of a voxel.

Orientation codes follow nibabel: the letter of voxel axis ``j`` names the patient direction in which that axis'
index *increases* (``"RAS"`` is the identity orientation, DICOM's usual storage is ``"LPS"``). World coordinates are
nibabel's RAS+: ``+x`` towards the patient's Right, ``+y`` Anterior, ``+z`` Superior. ITK / SimpleITK / DICOM /
3D Slicer use LPS+, the same points with ``x`` and ``y`` negated: :func:`ras_to_lps` is that flip, and the ITK
geometry (:func:`affine_to_itk_geometry`, :func:`itk_geometry_to_affine`) is built on it.

An affine here is a 4x4 matrix from voxel index ``(i, j, k)`` to RAS millimetres (nibabel's convention; MONAI's
``MetaTensor.affine``). Checking label maps and affines that arrive from the pipeline is
:mod:`monai_sadaan.io.nifti`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ORIENTATION_LETTERS",
    "rotation_matrix",
    "parse_orientation",
    "orientation_affine",
    "reorient_from_ras",
    "all_orientation_codes",
    "ras_to_lps",
    "voxel_volume_ml",
    "affine_to_itk_geometry",
    "itk_geometry_to_affine",
    "extent_to_box",
]

# letter -> (patient axis in RAS order, sign of the index direction along that axis)
ORIENTATION_LETTERS: dict[str, tuple[int, int]] = {
    "R": (0, 1),
    "L": (0, -1),
    "A": (1, 1),
    "P": (1, -1),
    "S": (2, 1),
    "I": (2, -1),
}

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # its own inverse


def parse_orientation(code: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Split an orientation code such as ``"LPS"`` into ``((patient_axis, sign), ...)`` per voxel axis.

    Args:
        code: three letters, one from each of ``{R, L}``, ``{A, P}``, ``{S, I}``, in any order.

    Returns:
        For voxel axes 0, 1, 2: the RAS patient axis (0 = x, 1 = y, 2 = z) and +1 / -1.

    Raises:
        ValueError: not three letters, an unknown letter, or a patient axis named twice (``"RLS"``).
    """
    if not isinstance(code, str) or len(code) != 3:
        raise ValueError(f"expected an orientation code of 3 letters such as 'RAS' or 'LPS', got {code!r}")
    parsed = []
    for letter in code.upper():
        if letter not in ORIENTATION_LETTERS:
            raise ValueError(f"expected orientation letters from R/L, A/P, S/I, got {code!r}")
        parsed.append(ORIENTATION_LETTERS[letter])
    if sorted(axis for axis, _ in parsed) != [0, 1, 2]:
        raise ValueError(f"expected one letter per patient axis (R/L, A/P, S/I) in the orientation, got {code!r}")
    return tuple(parsed)  # type: ignore[return-value]


def all_orientation_codes() -> tuple[str, ...]:
    """The 48 orientation codes (6 axis orders times 8 flip combinations), ``"RAS"`` first."""
    pairs = (("R", "L"), ("A", "P"), ("S", "I"))
    codes = []
    for order in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        for flips in range(8):
            codes.append("".join(pairs[a][(flips >> j) & 1] for j, a in enumerate(order)))
    return tuple(codes)


def orientation_affine(code: str, spacing: Sequence[float], origin: Sequence[float]) -> np.ndarray:
    """The 4x4 voxel-to-RAS affine of a grid with orientation ``code``.

    Args:
        code: orientation code (see :func:`parse_orientation`).
        spacing: voxel size in mm along voxel axes 0, 1, 2.
        origin: RAS world position (mm) of the centre of voxel ``(0, 0, 0)``.

    Returns:
        float64 array of shape (4, 4); column ``j`` is ``sign_j * spacing_j`` times the unit vector of its
        patient axis.
    """
    affine = np.eye(4)
    for j, (axis, sign) in enumerate(parse_orientation(code)):
        affine[:3, j] = 0.0
        affine[axis, j] = sign * float(spacing[j])
    affine[:3, 3] = np.asarray(origin, dtype=float)
    return affine


def reorient_from_ras(array: np.ndarray, code: str) -> np.ndarray:
    """Re-lay an array stored in RAS voxel order (axis 0 along +x, 1 along +y, 2 along +z) in orientation ``code``.

    Args:
        array: (nx, ny, nz) array in RAS order.
        code: target orientation code.

    Returns:
        A C-contiguous array whose axis ``j`` runs along the patient direction named by ``code[j]``.
    """
    parsed = parse_orientation(code)
    out = np.transpose(array, [axis for axis, _ in parsed])
    flips = tuple(j for j, (_, sign) in enumerate(parsed) if sign < 0)
    if flips:
        out = np.flip(out, axis=flips)
    return np.ascontiguousarray(out)


def _as_4x4(affine: np.ndarray) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"expected a 4x4 voxel-to-world affine, got shape {tuple(a.shape)}")
    return a


def ras_to_lps(affine: np.ndarray) -> np.ndarray:
    """Voxel-to-LPS matrix (Slicer's ``ijkToLPS``, NRRD ``space: left-posterior-superior``, ITK's world) from a
    voxel-to-RAS one: rows x and y negated.

    The flip is its own inverse, so the same call turns a voxel-to-LPS matrix back into a voxel-to-RAS one.

    Args:
        affine: (4, 4) voxel-to-RAS affine.

    Returns:
        float64 array of shape (4, 4).

    Raises:
        ValueError: the affine is not 4x4.
    """
    return _RAS_TO_LPS @ _as_4x4(affine)


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in millilitres: ``|det(affine[:3, :3])|`` mm³ / 1000.

    Args:
        affine: (4, 4) voxel-to-RAS (or LPS: the volume is the same) affine.

    Raises:
        ValueError: the affine is not 4x4.
    """
    return float(abs(np.linalg.det(_as_4x4(affine)[:3, :3])) / 1000.0)


def affine_to_itk_geometry(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """(spacing, origin, direction) in ITK's LPS convention for a nibabel voxel-to-RAS affine.

    ITK's index ``(i, j, k)`` is nibabel's voxel index; a SimpleITK array is the nibabel array transposed
    (``arr.transpose(2, 1, 0)``). The geometry is that of :func:`ras_to_lps` of the affine: its column norms are
    the spacing, its normalised columns the direction and its last column the origin.

    Args:
        affine: (4, 4) voxel-to-RAS affine.

    Returns:
        spacing (3,), origin (3,) in LPS mm, direction as 9 row-major values (columns are the axis directions).

    Raises:
        ValueError: the affine is not 4x4 or has a zero column.
    """
    lps = ras_to_lps(affine)
    linear = lps[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"expected an affine with non-zero columns, got spacing {spacing.tolist()}")
    direction = linear / spacing
    origin = lps[:3, 3]
    return tuple(spacing.tolist()), tuple(origin.tolist()), tuple(direction.ravel().tolist())


def itk_geometry_to_affine(
    spacing: Sequence[float], origin: Sequence[float], direction: Sequence[float]
) -> np.ndarray:
    """The nibabel voxel-to-RAS affine of an ITK image's (spacing, origin, direction); inverse of
    :func:`affine_to_itk_geometry`.

    Args:
        spacing: (3,) voxel size in mm.
        origin: (3,) LPS position (mm) of the centre of voxel ``(0, 0, 0)``.
        direction: 9 row-major values of the 3x3 direction matrix (columns are the axis directions).

    Returns:
        float64 array of shape (4, 4): :func:`ras_to_lps` (its own inverse) of the voxel-to-LPS matrix.

    Raises:
        ValueError: spacing or origin not 3 values, or direction not 9.
    """
    s, o, d = (np.asarray(v, dtype=float).ravel() for v in (spacing, origin, direction))
    if s.size != 3 or o.size != 3 or d.size != 9:
        raise ValueError(
            f"expected 3 spacing, 3 origin and 9 direction values, got {s.size}, {o.size} and {d.size}"
        )
    lps = np.eye(4)
    lps[:3, :3] = d.reshape(3, 3) @ np.diag(s)
    lps[:3, 3] = o
    return ras_to_lps(lps)


def rotation_matrix(rx: float, ry: float, rz: float) -> np.ndarray:
    """``Rz @ Ry @ Rx`` for angles in radians about the x, y and z axes, shape (3, 3)."""
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


def extent_to_box(axes: Sequence[np.ndarray], extent: Sequence[Sequence[float]]) -> tuple[slice, slice, slice] | None:
    """Index slices of the voxels whose centres lie inside a world extent, on a grid given by its axes.

    Args:
        axes: the world coordinate (mm) of every voxel centre along each of the three axes, each ascending.
        extent: ``(lo, hi)`` per axis, shape (3, 2); both bounds included.

    Returns:
        ``(slice_x, slice_y, slice_z)``, or None when no voxel centre lies inside along some axis.
    """
    slices = []
    for axis, (lo, hi) in zip(axes, extent):
        start, stop = np.searchsorted(axis, lo, "left"), np.searchsorted(axis, hi, "right")
        if stop <= start:
            return None
        slices.append(slice(int(start), int(stop)))
    return tuple(slices)  # type: ignore[return-value]
