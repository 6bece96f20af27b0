"""Write every output of one case, all or nothing: :class:`SADAAnCaseWriter` and the MONAI dictionary transform
:class:`SaveSADAAnOutputsd` that the bundle's postprocessing ends with.

Layout of ``output_dir/<case>/``::

    <case>_labels.nii.gz         label map (uint8), the input image's geometry
    <case>.seg.nrrd              Slicer segmentation: named segments, colours, SNOMED CT codes, presence tags
    <case>_colour_table.csv      Slicer colour table for the label map
    <case>_presence.json         presence report (+ names of the files above, read by the Slicer module)
    <case>_presence.csv          the same table for a spreadsheet
    <case>_probabilities.nii.gz  optional: [X, Y, Z, S] probability maps

The files are written into a hidden staging folder beside the case folder, which then replaces the case folder
in one rename: on an exception, no file of the failed case appears under the final names (an earlier result of
the same case stays as it was).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_sadaan.data.image_folder import case_name_from_path, safe_case_name  # one definition of case names
from monai_sadaan.io.colour_table import write_colour_table
from monai_sadaan.io.geometry import labelmap_and_affine
from monai_sadaan.io.nifti import write_label_map_nifti, write_probability_maps
from monai_sadaan.io.presence import StructurePresence, presence_rows, write_presence_report
from monai_sadaan.io.slicer_segmentation import write_slicer_segmentation
from monai_sadaan.io.structures import StructuresLike, structure_table

__all__ = ["CASE_FILE_SUFFIXES", "case_name_from_path", "safe_case_name", "SADAAnCaseWriter", "SaveSADAAnOutputsd"]

CASE_FILE_SUFFIXES: dict[str, str] = {
    "label_map": "_labels.nii.gz",
    "segmentation": ".seg.nrrd",
    "colour_table": "_colour_table.csv",
    "presence_json": "_presence.json",
    "presence_csv": "_presence.csv",
    "probabilities": "_probabilities.nii.gz",
}
"""Output kind -> suffix after the case name; also the keys of the presence JSON's ``files`` entry."""

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")


def _check_case_name(case_name: str) -> str:
    if not isinstance(case_name, str) or not _SAFE_NAME.match(case_name) or case_name in (".", ".."):
        raise ValueError(
            "expected a case name of letters, digits and . _ + - (it names a folder and files), "
            f"got {case_name!r}"
        )
    return case_name


class SADAAnCaseWriter:
    """Write the outputs of one case into ``output_dir/<case_name>/`` (see the module docstring).

    Args:
        output_dir: folder that receives one sub-folder per case.
        structures: the structure set (default: the five SADAAn structures, labels 1..5).
        absent: how absent structures appear in the ``.seg.nrrd``: ``"empty"`` (default; an empty segment
            flagged absent) or ``"omit"``.
        write_segmentation: also write the Slicer ``.seg.nrrd`` (default ``True``).
        write_probabilities: also write the probability maps when given (default ``True``).
        probability_dtype: ``"float32"`` or ``"uint8"`` for the probability maps.
        threshold: presence probability at or above which a structure is called present, used only when the
            caller gives probabilities without a ``present`` call.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        structures: StructuresLike = None,
        absent: str = "empty",
        write_segmentation: bool = True,
        write_probabilities: bool = True,
        probability_dtype: str = "float32",
        threshold: float = 0.5,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.structures = structure_table(structures)
        self.absent = absent
        self.write_segmentation = write_segmentation
        self.write_probabilities = write_probabilities
        self.probability_dtype = probability_dtype
        self.threshold = threshold

    def case_dir(self, case_name: str) -> Path:
        return self.output_dir / _check_case_name(case_name)

    def __call__(
        self,
        case_name: str,
        labelmap: Any,
        affine: Any | None,
        presence: Sequence[StructurePresence] | Sequence[Mapping[str, Any]] | Mapping[str, Any],
        probabilities: Any | None = None,
    ) -> dict[str, str]:
        """Write one case.

        Args:
            case_name: folder and file name stem (letters, digits, ``. _ + -``).
            labelmap: [X, Y, Z] or [1, X, Y, Z] label map indexed ``[i, j, k]`` in the input image's geometry.
            affine: [4, 4] voxel-to-RAS affine; ``None`` when ``labelmap`` is a MetaTensor.
            presence: per-structure rows or vectors (see :func:`monai_sadaan.io.presence.presence_rows`).
            probabilities: optional [S, X, Y, Z] probability maps on the label map's grid.

        Returns:
            output kind (keys of :data:`CASE_FILE_SUFFIXES`) -> absolute path of the written file.
        """
        final_dir = self.case_dir(case_name)
        lm, aff = labelmap_and_affine(labelmap, affine)
        rows = presence_rows(lm, aff, presence, self.structures, threshold=self.threshold)
        if probabilities is not None and self.write_probabilities:
            shape = tuple(getattr(probabilities, "shape", ()))
            if shape != (len(self.structures), *lm.shape):
                raise ValueError(
                    f"expected probability maps of shape {(len(self.structures), *lm.shape)} "
                    f"([S, X, Y, Z] on the label map's grid), got {shape}"
                )

        self.output_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{case_name}.partial-", dir=self.output_dir))
        try:
            names = {k: f"{case_name}{s}" for k, s in CASE_FILE_SUFFIXES.items()}
            write_label_map_nifti(lm, aff, staging / names["label_map"])
            written = ["label_map"]
            if self.write_segmentation:
                write_slicer_segmentation(
                    lm, aff, rows, staging / names["segmentation"], self.structures, absent=self.absent
                )
                written.append("segmentation")
            write_colour_table(self.structures, staging / names["colour_table"])
            written.append("colour_table")
            if probabilities is not None and self.write_probabilities:
                write_probability_maps(probabilities, aff, staging / names["probabilities"], dtype=self.probability_dtype)
                written.append("probabilities")
            written += ["presence_csv", "presence_json"]
            files = {k: names[k] for k in written}
            # the JSON goes last: it lists the other files and marks the case as complete
            write_presence_report(
                rows, staging / names["presence_json"], staging / names["presence_csv"], case_name, files
            )
            _default_permissions(staging)
            _replace_dir(staging, final_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return {k: str(final_dir / v) for k, v in files.items()}


def _default_permissions(folder: Path) -> None:
    """Give the staging folder and its files the permissions a plain ``mkdir`` / ``open`` would have.

    ``tempfile`` creates them private to the user (0700 / 0600); a case folder is meant to be read by others too
    (a MONAI Label server, a Slicer session under another account), as any other output file.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for p in folder.iterdir():
        os.chmod(p, 0o666 & ~umask)


def _replace_dir(new: Path, final: Path) -> None:
    """Put folder ``new`` at ``final``, replacing an existing folder there with as short a gap as two renames."""
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
        try:
            os.replace(new, final)
        except BaseException:
            os.replace(old / final.name, final)  # put the previous result back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, final)


class SaveSADAAnOutputsd(MapTransform):
    """Dictionary transform that writes a case's SADAAn outputs with :class:`SADAAnCaseWriter`.

    Use it at the end of the bundle's postprocessing, after ``Invertd`` has put the label map back into the input
    image's geometry. The data dictionary is returned unchanged, with the written paths under ``output_key``.

    Args:
        keys: key of the label map ([1, X, Y, Z] or [X, Y, Z] MetaTensor, or array + ``affine_key``).
        output_dir: folder that receives one sub-folder per case.
        presence_key: key of the presence: per-structure rows, or ``{"presence_probability": [S],
            "confidence": [S], "present": [S]}``.
        probability_key: key of optional [S, X, Y, Z] probability maps (``None``: none written).
        affine_key: key of a [4, 4] voxel-to-RAS affine when the label map is not a MetaTensor.
        case_name_key: key of the case name; when ``None`` or missing from the data, the name comes from the
            label map's (or ``image_key``'s) ``filename_or_obj`` metadata. Either way it is made file-safe with
            :func:`safe_case_name`.
        image_key: where else to look for ``filename_or_obj``.
        output_key: where the written paths go (``None``: not stored).
        structures, absent, write_segmentation, write_probabilities, probability_dtype, threshold:
            see :class:`SADAAnCaseWriter`.
        allow_missing_keys: don't raise when ``keys`` is missing.
    """

    def __init__(
        self,
        keys: KeysCollection = "pred",
        output_dir: str | os.PathLike = "./outputs",
        presence_key: str = "presence",
        probability_key: str | None = None,
        affine_key: str | None = None,
        case_name_key: str | None = None,
        image_key: str = "image",
        output_key: str | None = "sadaan_files",
        structures: StructuresLike = None,
        absent: str = "empty",
        write_segmentation: bool = True,
        write_probabilities: bool = True,
        probability_dtype: str = "float32",
        threshold: float = 0.5,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.writer = SADAAnCaseWriter(
            output_dir, structures, absent, write_segmentation, write_probabilities, probability_dtype, threshold
        )
        self.presence_key = presence_key
        self.probability_key = probability_key
        self.affine_key = affine_key
        self.case_name_key = case_name_key
        self.image_key = image_key
        self.output_key = output_key

    def _case_name(self, d: Mapping[Hashable, Any], key: Hashable) -> str:
        """The case's file-safe name: ``d[case_name_key]`` when there, else from ``filename_or_obj`` metadata
        (MONAI Label runs the bundle's postprocessing on dicts without the datalist's ``case`` key)."""
        name = d.get(self.case_name_key) if self.case_name_key is not None else None
        if isinstance(name, (list, tuple)) and len(name) == 1:  # a batch of one
            name = name[0]
        if name:
            return safe_case_name(str(name))
        for k in (key, self.image_key):
            value = d.get(k)
            meta = getattr(value, "meta", None) or d.get(f"{k}_meta_dict") or {}
            source = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
            if isinstance(source, (list, tuple)) and len(source) == 1:  # a batch of one
                source = source[0]
            if source:
                return safe_case_name(case_name_from_path(str(source)))
        raise KeyError(
            f"expected a case name: set case_name_key, or give {key!r} or {self.image_key!r} a "
            "'filename_or_obj' in its metadata"
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            affine = d[self.affine_key] if self.affine_key is not None else None
            probabilities = d.get(self.probability_key) if self.probability_key is not None else None
            files = self.writer(self._case_name(d, key), d[key], affine, d[self.presence_key], probabilities)
            if self.output_key is not None:
                d[self.output_key] = files
        return d

