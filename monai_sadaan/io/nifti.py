"""NIfTI outputs: the label map and the per-structure probability maps, in the input image's geometry."""

from __future__ import annotations

import os
from typing import Any

import nibabel as nib
import numpy as np

from monai_sadaan.io.geometry import as_affine, labelmap_and_affine, to_numpy
from monai_sadaan.utils import atomic_write_with

__all__ = ["write_label_map_nifti", "write_probability_maps"]

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
    if not np.all(np.isfinite(p)) or p.min() < -_PROBABILITY_TOLERANCE or p.max() > 1.0 + _PROBABILITY_TOLERANCE:
        raise ValueError(f"expected probabilities in [0, 1], got values in [{p.min()}, {p.max()}]")
    # resampling back to the input grid (Invertd) can overshoot by rounding; clip what is within the tolerance
    p = np.clip(p, 0.0, 1.0)
    data = np.moveaxis(p, 0, -1)
    dt = np.dtype(dtype)
    if dt == np.float32:
        img = _nifti(np.ascontiguousarray(data), aff)
    elif dt == np.uint8:
        img = _nifti(np.rint(data * 255.0).astype(np.uint8), aff)
        img.header.set_slope_inter(1.0 / 255.0, 0.0)
    else:
        raise ValueError(f"expected dtype float32 or uint8 for probability maps, got {dt}")
    with atomic_write_with(path) as tmp:
        nib.save(img, tmp)
    return str(path)
