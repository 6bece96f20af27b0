"""NIfTI: the outputs (label map, per-structure probability maps, in the input image's geometry) and a reader for
the input that needs no second buffer of the volume's size.

Reading: :func:`read_nifti_array` gives what ``np.asanyarray(nibabel.load(path).dataobj)`` gives (nibabel's
scaling, the stored type otherwise), but C-ordered in native byte order and read slab by slab. nibabel reads a
``.nii.gz`` through a temporary buffer of the volume's size, and MONAI's ``LoadImage`` then copies nibabel's
Fortran-ordered array into C order: three times the volume at the peak, where this reader holds it once.
:class:`SADAAnSlabImageReader` is :class:`~monai_sadaan.data.readers.SADAAnImageReader` (nibabel's affine for NIfTI,
ITK for the rest) with this reader for NIfTI: the bundle's ``LoadImaged`` uses it.

Writing: nibabel's gzip level, 1 (:data:`GZIP_LEVEL`; the ``.seg.nrrd`` writer uses it too): a label map
compresses about 20-fold at level 1, and a higher level costs seconds per CT for a few percent.
"""

from __future__ import annotations

import math
import os
from typing import Any

import nibabel as nib
import numpy as np

from monai_sadaan.data.image_folder import iter_nifti_data
from monai_sadaan.data.readers import NiftiStandardReader, SADAAnImageReader
from monai_sadaan.io.labelmap import as_affine, labelmap_and_affine, to_numpy
from monai_glue import atomic_write_with

__all__ = [
    "GZIP_LEVEL",
    "SADAAnSlabImageReader",
    "SlabNiftiReader",
    "read_nifti_array",
    "write_label_map_nifti",
    "write_probability_maps",
]

GZIP_LEVEL = 1
"""gzip level of the NIfTI outputs (nibabel's ``Opener.default_compresslevel``) and of the ``.seg.nrrd``."""

_SLAB_BYTES = 1 << 24


def read_nifti_array(img: Any, slab_bytes: int = _SLAB_BYTES) -> np.ndarray:
    """The voxels of a NIfTI image, equal to ``np.asanyarray(img.dataobj)``, C-ordered, in native byte order.

    The stored data (Fortran order) is read in slabs along its last axis of more than one voxel and each slab put in
    place, scaled as nibabel scales it (``scl_slope`` / ``scl_inter``; none: the stored type): the only buffer of the
    volume's size is the result.

    Args:
        img: a nibabel NIfTI image as ``nibabel.load`` gives it.
        slab_bytes: stored bytes per slab (at least one plane).
    """
    from nibabel.arrayproxy import ArrayProxy
    from nibabel.volumeutils import apply_read_scaling

    proxy = img.dataobj
    if not isinstance(proxy, ArrayProxy) or getattr(proxy, "order", "F") != "F":
        return np.ascontiguousarray(np.asanyarray(proxy))
    shape = tuple(int(s) for s in proxy.shape)
    core = list(shape)
    while len(core) > 1 and core[-1] == 1:
        core.pop()
    stored = np.dtype(proxy.dtype)
    slope, inter = np.asanyarray(proxy.slope), np.asanyarray(proxy.inter)
    # nibabel's ArrayProxy._get_scaled(dtype=None): scale factors in their own type, then apply_read_scaling
    out_dtype = apply_read_scaling(np.zeros(1, stored), slope, inter).dtype.newbyteorder("=")
    out = np.empty(core, dtype=out_dtype)  # C order
    if math.prod(core) == 0:
        return out.reshape(shape)
    plane = math.prod(core[:-1])
    rows = max(1, int(slab_bytes) // max(1, plane * stored.itemsize))
    done = 0
    for chunk in iter_nifti_data(img, chunk_items=plane * rows):
        k = chunk.size // plane
        slab = apply_read_scaling(chunk, slope, inter).reshape(*core[:-1], k, order="F")
        out[..., done : done + k] = slab
        done += k
    return out.reshape(shape)


class SlabNiftiReader(NiftiStandardReader):
    """:class:`~monai_sadaan.data.readers.NiftiStandardReader` (nibabel's affine, header unchanged) whose voxel data
    is read by :func:`read_nifti_array`: C-ordered, no second buffer of the volume's size."""

    def _get_array_data(self, img: Any, filename: Any = None) -> np.ndarray:
        return read_nifti_array(img)


class SADAAnSlabImageReader(SADAAnImageReader):
    """:class:`~monai_sadaan.data.readers.SADAAnImageReader` with :class:`SlabNiftiReader` for NIfTI (ITK for NRRD,
    MetaImage and DICOM as before). Use it as ``LoadImaged(keys, reader="monai_sadaan.io.nifti.SADAAnSlabImageReader",
    dtype=None)`` to keep the voxels in their stored type."""

    def __init__(self, nifti_kwargs: dict | None = None, itk_kwargs: dict | None = None) -> None:
        super().__init__(nifti_kwargs, itk_kwargs)
        self.nifti = SlabNiftiReader(**{"squeeze_non_spatial_dims": True, **(nifti_kwargs or {})})

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
