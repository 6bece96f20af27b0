"""Image readers for MONAI's ``LoadImage``: one documented geometry rule per format.

NIfTI files are read with nibabel and keep **nibabel's affine exactly** (the NIfTI standard as nibabel applies it):

* ``sform_code > 0``: the sform (``srow_x/y/z``), shear included;
* else ``qform_code > 0``: the qform (quaternion, ``pixdim``, ``qoffset``);
* else (both codes 0, no orientation stored): nibabel's base affine from ``pixdim`` only (x flipped, centred).

ITK, and MONAI's own ``NibabelReader``, read some headers otherwise: ITK prefers the qform when qform and sform
disagree, assumes an LPS identity orientation when both codes are 0 and drops a sform's shear; MONAI's
``NibabelReader`` "corrects" a header whose ``pixdim`` disagrees with the sform by taking the qform instead
(``monai.data.utils.correct_nifti_header_if_necessary``). :class:`NiftiStandardReader` skips that correction, so
``MetaTensor.affine`` equals ``nibabel.load(path).affine`` and the outputs written in the input's geometry (after
``Invertd``) carry that same affine. Headers that are ambiguous (no orientation stored, qform and sform that
disagree) are reported by the pre-flight, :func:`monai_sadaan.data.image_folder.check_volume_header`.

NRRD, MetaImage files and DICOM series folders are read with ITK (MONAI's ``ITKReader``, LPS converted to RAS).

NIfTI voxel data is read by :func:`read_nifti_array`: what ``np.asanyarray(nibabel.load(path).dataobj)`` gives
(nibabel's scaling, the stored type otherwise), but C-ordered in native byte order and read slab by slab. nibabel
reads a ``.nii.gz`` through a temporary buffer of the volume's size, and MONAI's ``LoadImage`` then copies nibabel's
Fortran-ordered array into C order: three times the volume at the peak, where this reader holds it once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.config import PathLike
from monai.data import ITKReader, NibabelReader
from monai.data.image_reader import ImageReader
from monai.utils import ensure_tuple

from monai_sadaan.data.image_folder import iter_nifti_data  # the pre-flight's chunked read of the same data

__all__ = ["NIFTI_READ_SUFFIXES", "NiftiStandardReader", "SADAAnImageReader", "is_nifti_path", "read_nifti_array"]

NIFTI_READ_SUFFIXES = (".nii", ".nii.gz")

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


def is_nifti_path(path: PathLike | Sequence[PathLike]) -> bool:
    """Whether every name in ``path`` ends in ``.nii`` or ``.nii.gz`` (any case)."""
    names = [str(p) for p in ensure_tuple(path)]
    return bool(names) and all(n.lower().endswith(NIFTI_READ_SUFFIXES) for n in names)


class NiftiStandardReader(NibabelReader):
    """MONAI's ``NibabelReader`` without its header "correction": the affine is ``nibabel.load(path).affine``; the
    voxels are read by :func:`read_nifti_array` (C-ordered, no second buffer of the volume's size).

    Args:
        kwargs: as :class:`monai.data.NibabelReader` (``squeeze_non_spatial_dims=True`` drops a trailing axis of
            size 1, e.g. a NIfTI of dim ``(X, Y, Z, 1)``).
    """

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> Any:
        """Load one NIfTI file (or several, stacked later by ``get_data``) with ``nibabel.load``, header unchanged.

        Args:
            data: file name or a list of file names.
            kwargs: passed to ``nibabel.load``; override the reader's own keyword arguments.

        Returns:
            a nibabel image, or a list of them for several files.
        """
        import nibabel as nib

        filenames: Sequence[PathLike] = ensure_tuple(data)
        self.filenames = filenames
        kwargs_ = {**self.kwargs, **kwargs}
        images = [nib.load(name, **kwargs_) for name in filenames]
        return images if len(filenames) > 1 else images[0]

    def _get_array_data(self, img: Any, filename: Any = None) -> np.ndarray:
        return read_nifti_array(img)


class SADAAnImageReader(ImageReader):
    """NIfTI with :class:`NiftiStandardReader` (nibabel's affine, voxels read in slabs: see the module docstring);
    NRRD, MetaImage and DICOM series folders with MONAI's ``ITKReader``.

    Use it as ``LoadImaged(keys, reader="monai_sadaan.data.readers.SADAAnImageReader", dtype=None)`` to keep the
    voxels in their stored type.

    Args:
        nifti_kwargs: keyword arguments of :class:`NiftiStandardReader` (default ``squeeze_non_spatial_dims=True``).
        itk_kwargs: keyword arguments of ``monai.data.ITKReader``.
    """

    def __init__(self, nifti_kwargs: dict | None = None, itk_kwargs: dict | None = None) -> None:
        super().__init__()
        self.nifti = NiftiStandardReader(**{"squeeze_non_spatial_dims": True, **(nifti_kwargs or {})})
        self.itk = ITKReader(**(itk_kwargs or {}))

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Whether either reader takes ``filename`` (ITK also takes a DICOM folder)."""
        return is_nifti_path(filename) or self.itk.verify_suffix(filename)

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> Any:
        """Read NIfTI files with nibabel, anything else with ITK.

        Args:
            data: file name(s) or a DICOM folder.
            kwargs: passed to the chosen reader's ``read``.

        Returns:
            the chosen reader's image object(s).
        """
        return self.nifti.read(data, **kwargs) if is_nifti_path(data) else self.itk.read(data, **kwargs)

    def get_data(self, img: Any) -> tuple[np.ndarray, dict]:
        """Array and metadata from the reader that read ``img``.

        Args:
            img: what :meth:`read` returned.

        Returns:
            ``(array, metadata)`` as MONAI's readers give them (metadata ``affine`` in RAS).
        """
        from nibabel.spatialimages import SpatialImage

        first = img[0] if isinstance(img, (list, tuple)) and img else img
        return self.nifti.get_data(img) if isinstance(first, SpatialImage) else self.itk.get_data(img)
