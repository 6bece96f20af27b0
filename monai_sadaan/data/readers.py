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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.config import PathLike
from monai.data import ITKReader, NibabelReader
from monai.data.image_reader import ImageReader
from monai.utils import ensure_tuple

__all__ = ["NIFTI_READ_SUFFIXES", "NiftiStandardReader", "SADAAnImageReader", "is_nifti_path"]

NIFTI_READ_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: PathLike | Sequence[PathLike]) -> bool:
    """Whether every name in ``path`` ends in ``.nii`` or ``.nii.gz`` (any case)."""
    names = [str(p) for p in ensure_tuple(path)]
    return bool(names) and all(n.lower().endswith(NIFTI_READ_SUFFIXES) for n in names)


class NiftiStandardReader(NibabelReader):
    """MONAI's ``NibabelReader`` without its header "correction": the affine is ``nibabel.load(path).affine``.

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


class SADAAnImageReader(ImageReader):
    """NIfTI with :class:`NiftiStandardReader` (nibabel's affine, see the module docstring); NRRD, MetaImage and
    DICOM series folders with MONAI's ``ITKReader``.

    Use it as ``LoadImaged(keys, reader="monai_sadaan.data.readers.SADAAnImageReader")``.

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
