"""NIfTI outputs: the label map and the per-structure probability maps, in the input image's geometry, and the
checks every SADAAn writer applies to the label map and affine it is given.

Input convention of every SADAAn writer: a label map indexed ``[i, j, k]`` (the array order MONAI's ``LoadImage``
gives for both its ITK and nibabel readers, and that nibabel's ``get_fdata`` gives) and a 4x4 affine from voxel
index ``(i, j, k)`` to RAS millimetres (nibabel's convention; MONAI's ``MetaTensor.affine``, also after
``Invertd``). A MetaTensor carries its affine, so ``affine`` may then be left out. :func:`labelmap_and_affine` turns
what the pipeline holds (numpy arrays, torch tensors, MONAI MetaTensors) into that checked pair; :func:`label_counts`
counts its labels. The geometry of the grid (RAS <-> LPS for 3D Slicer and ITK, the volume of a voxel) is
:mod:`monai_sadaan.data.geometry`'s; reading the input is :mod:`monai_sadaan.data.readers`'.

Writing: nibabel's gzip level, 1 (:data:`GZIP_LEVEL`; the ``.seg.nrrd`` writer uses it too): a label map
compresses about 20-fold at level 1, and a higher level costs seconds per CT for a few percent.
"""

from __future__ import annotations

import os
from typing import Any

import nibabel as nib
import numpy as np

from monai_glue.atomic import atomic_write_with

__all__ = [
    "GZIP_LEVEL",
    "as_affine",
    "as_labelmap",
    "label_counts",
    "labelmap_and_affine",
    "to_numpy",
    "write_label_map_nifti",
    "write_probability_maps",
]

GZIP_LEVEL = 1
"""gzip level of the NIfTI outputs (nibabel's ``Opener.default_compresslevel``) and of the ``.seg.nrrd``."""


# ---------------------------------------------------------------------------------------------------- label maps
def to_numpy(x: Any) -> np.ndarray:
    """numpy copy-free view of a numpy array, torch tensor or MetaTensor (detached, moved to the CPU)."""
    if hasattr(x, "detach"):  # torch.Tensor / MetaTensor
        x = x.detach()
        if hasattr(x, "as_tensor"):
            x = x.as_tensor()
        return x.cpu().numpy()
    return np.asarray(x)


def as_affine(affine: Any) -> np.ndarray:
    """A float64 [4, 4] affine, checked to be finite, invertible and with a last row ``0 0 0 1``.

    Raises:
        ValueError: wrong shape, non-finite values, a singular 3x3 part or a wrong last row.
    """
    a = to_numpy(affine).astype(np.float64)
    if a.ndim == 3 and a.shape[0] == 1:  # a batch of one
        a = a[0]
    if a.shape != (4, 4):
        raise ValueError(f"expected a 4x4 voxel-to-RAS affine, got shape {tuple(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"expected a finite affine, got\n{a}")
    if not np.allclose(a[3], [0, 0, 0, 1]):
        raise ValueError(f"expected the affine's last row to be [0, 0, 0, 1], got {a[3].tolist()}")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError(f"expected an invertible affine (non-zero voxel spacing), got\n{a}")
    return a


def as_labelmap(labelmap: Any, name: str = "label map") -> np.ndarray:
    """A 3D integer label map from a [X, Y, Z] or channel-first [1, X, Y, Z] array / tensor.

    Float arrays are accepted when every value is a whole number (MONAI's ``Invertd`` returns float tensors).

    Returns:
        the label map, dtype uint8 when every value fits, otherwise uint16.

    Raises:
        ValueError: not 3D after removing one leading channel, non-integral or negative values, or values above 65535.
    """
    arr = to_numpy(labelmap)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise ValueError(
            f"expected a 3D {name} of shape [X, Y, Z] or [1, X, Y, Z] (one channel of label values), "
            f"got shape {tuple(arr.shape)}"
        )
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.uint8:  # the writers' own type: nothing to check or convert
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"expected whole-number label values in the {name}, got dtype {arr.dtype} with fractions")
    if arr.size and arr.min() < 0:
        raise ValueError(f"expected non-negative label values in the {name}, got minimum {arr.min()}")
    top = int(arr.max()) if arr.size else 0
    if top > np.iinfo(np.uint16).max:
        raise ValueError(f"expected label values up to 65535 in the {name}, got {top}")
    return arr.astype(np.uint8 if top <= 255 else np.uint16, copy=False)


_COUNT_CHUNK = 1 << 22


def label_counts(labelmap: np.ndarray, minlength: int = 0) -> np.ndarray:
    """Voxels per label value of a checked label map (:func:`as_labelmap`), ``np.bincount`` of it, in chunks.

    ``np.bincount`` of the whole volume converts it to 64-bit integers first (8 bytes per voxel: 0.6 GB for a
    512 x 512 x 300 CT) and ``ravel()`` copies a Fortran-ordered one; here chunks of 4 M voxels in memory order are
    counted, background (most of a label map) by a comparison only.
    """
    flat = np.asarray(labelmap).ravel(order="K")  # a view in memory order for C- and Fortran-ordered arrays
    top = int(flat.max()) if flat.size else 0
    counts = np.zeros(max(int(minlength), top + 1), dtype=np.int64)
    for start in range(0, flat.size, _COUNT_CHUNK):
        chunk = flat[start : start + _COUNT_CHUNK]
        labelled = chunk[chunk != 0]
        counts[0] += chunk.size - labelled.size
        if labelled.size:
            counts[: top + 1] += np.bincount(labelled, minlength=top + 1)
    return counts


def labelmap_and_affine(labelmap: Any, affine: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(labelmap [X, Y, Z] uint8/uint16, affine [4, 4] float64)``.

    Args:
        labelmap: numpy array, torch tensor or MetaTensor, [X, Y, Z] or [1, X, Y, Z].
        affine: voxel-to-RAS affine; when ``None`` it is taken from ``labelmap.affine`` (MetaTensor).

    Raises:
        ValueError: no affine given and the label map carries none, or an invalid label map / affine.
    """
    if affine is None:
        affine = getattr(labelmap, "affine", None)
        if affine is None:
            raise ValueError(
                f"expected an affine (4x4 voxel-to-RAS) or a MetaTensor that carries one, got a "
                f"{type(labelmap).__name__} and affine=None"
            )
    return as_labelmap(labelmap), as_affine(affine)


# ---------------------------------------------------------------------------------------------------- NIfTI files
_PROBABILITY_TOLERANCE = 1e-3


def _nifti(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data, affine)
    # both qform and sform carry the affine ("scanner" code 1), as ITK and Slicer expect
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img


def write_label_map_nifti(labelmap: Any, affine: Any | None, path: str | os.PathLike) -> str:
    """Write a label map as NIfTI (uint8, or uint16 when a label exceeds 255), atomically.

    Args:
        labelmap: [X, Y, Z] or [1, X, Y, Z] label values indexed ``[i, j, k]`` (numpy / torch / MetaTensor).
        affine: [4, 4] voxel-to-RAS affine; ``None`` takes ``labelmap.affine`` (MetaTensor).
        path: ``.nii.gz`` or ``.nii`` file.

    Returns:
        ``str(path)``.
    """
    lm, aff = labelmap_and_affine(labelmap, affine)
    img = _nifti(lm, aff)
    img.header.set_intent("label")
    with atomic_write_with(path) as tmp:
        nib.save(img, tmp)
    return str(path)


def write_probability_maps(
    probabilities: Any,
    affine: Any | None,
    path: str | os.PathLike,
    dtype: np.dtype | type = np.float32,
) -> str:
    """Write per-structure probability maps as one 4D NIfTI, structures on the 4th axis, atomically.

    Args:
        probabilities: [S, X, Y, Z] values in [0, 1] (numpy / torch / MetaTensor), structures in the order of
            the structure table.
        affine: [4, 4] voxel-to-RAS affine of the spatial axes; ``None`` takes ``probabilities.affine``.
        path: ``.nii.gz`` file; the image has shape [X, Y, Z, S].
        dtype: ``np.float32`` (default) or ``np.uint8`` (probabilities scaled by 255 and rounded, with
            ``scl_slope = 1/255`` so that readers get the probability back to within 1/510).

    Returns:
        ``str(path)``.

    Raises:
        ValueError: not 4D, values further than 1e-3 outside [0, 1] (those within are clipped) or non-finite,
            or an unsupported dtype.
    """
    if affine is None:
        affine = getattr(probabilities, "affine", None)
        if affine is None:
            raise ValueError("expected an affine or a MetaTensor of probabilities that carries one, got affine=None")
    aff = as_affine(affine)
    p = to_numpy(probabilities).astype(np.float32, copy=False)
    if p.ndim != 4:
        raise ValueError(f"expected probability maps of shape [S, X, Y, Z], got shape {tuple(p.shape)}")
    # per structure, no temporary of the maps' size: min / max are NaN when a NaN is there
    lo = min((float(c.min()) for c in p), default=0.0)
    hi = max((float(c.max()) for c in p), default=0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -_PROBABILITY_TOLERANCE or hi > 1.0 + _PROBABILITY_TOLERANCE:
        raise ValueError(f"expected probabilities in [0, 1], got values in [{lo}, {hi}]")
    if lo < 0.0 or hi > 1.0:  # resampling back can overshoot by rounding; clip what is within the tolerance
        p = np.clip(p, 0.0, 1.0)
    data = np.moveaxis(p, 0, -1)  # [X, Y, Z, S]; nibabel writes any memory layout without a full copy
    dt = np.dtype(dtype)
    if dt == np.float32:
        img = _nifti(data, aff)
    elif dt == np.uint8:
        scaled = np.empty(data.shape, dtype=np.uint8, order="F")
        for s, channel in enumerate(p):
            scaled[..., s] = np.rint(channel * 255.0)
        img = _nifti(scaled, aff)
        img.header.set_slope_inter(1.0 / 255.0, 0.0)
    else:
        raise ValueError(f"expected dtype float32 or uint8 for probability maps, got {dt}")
    with atomic_write_with(path) as tmp:
        nib.save(img, tmp)
    return str(path)
