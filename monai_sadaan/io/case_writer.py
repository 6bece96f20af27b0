"""Write every output of one case, all or nothing: :class:`SADAAnCaseWriter` and the MONAI dictionary transform
:class:`SaveSADAAnOutputsd` that the bundle's postprocessing ends with.

Layout of ``output_dir/<case>/``::

    <case>_labels.nii.gz         label map (uint8), the input image's geometry
    <case>.seg.nrrd              Slicer segmentation: named segments, colours, SNOMED CT codes, presence tags
    <case>_colour_table.csv      Slicer colour table for the label map
    <case>_presence.json         presence report (+ names of the files above, read by the Slicer module)
    <case>_presence.csv          the same table for a spreadsheet
    <case>_probabilities.nii.gz  optional: [X, Y, Z, S] probability maps

    .sadaan-case.json            hidden marker: case, source input, run id, tool version, the files above

The files are written into a hidden staging folder beside the case folder (``.<case>.partial-<host>.<pid>.*``), which
then replaces the case folder in one rename, under a lock on the output folder: on an exception, no file of the
failed case appears under the final names (an earlier result of the same case stays as it was). An existing case
folder is replaced only when this tool wrote it for the same case and input and it holds nothing else
(:func:`monai_sadaan.io.run_outputs.case_folder_problems`); otherwise :class:`OutputFolderError` is raised and
nothing is touched. Within an :class:`~monai_sadaan.io.run_outputs.InferenceRun` (the bundle), the case goes into
the run's staging and is put in place with every other case when the run commits.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_sadaan.data.image_folder import case_name_from_path, safe_case_name  # one definition of case names
from monai_sadaan.io.nifti import labelmap_and_affine, write_label_map_nifti, write_probability_maps
from monai_sadaan.io.presence import (
    StructurePresence,
    presence_rows,
    withhold_presence_calls,
    write_presence_report,
)
from monai_sadaan.io.run_outputs import InferenceRun, case_folder_problems, parse_input_flags, write_case_marker
from monai_sadaan.io.structures import StructuresLike, structure_table, write_colour_table
from monai_glue.atomic import OutputFolderError, folder_lock, make_staging_dir, remove_stale_staging, swap_in
from monai_glue.config_values import parse_bool

__all__ = [
    "CASE_FILE_SUFFIXES",
    "OutputFolderError",
    "case_name_from_path",
    "safe_case_name",
    "SADAAnCaseWriter",
    "SaveSADAAnOutputsd",
]

logger = logging.getLogger(__name__)

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
        write_segmentation: also write the Slicer ``.seg.nrrd`` (default ``True``); a bool or a strict boolean
            string (``"false"``, ``"no"``, ``"0"``...: see :func:`monai_glue.parse_bool`).
        write_probabilities: also write the probability maps when given (default ``True``; parsed the same way).
        probability_dtype: ``"float32"`` or ``"uint8"`` for the probability maps.
        threshold: presence probability at or above which a structure is called present, used only when the
            caller gives probabilities without a ``present`` call.
        inference_run: the :class:`~monai_sadaan.io.run_outputs.InferenceRun` this writer belongs to; while it is
            started, cases go into its staging and appear when it commits. ``None`` (or a run not started): each
            case is put in place as soon as it is written.

    Raises:
        ValueError: a switch that is not clearly true or false.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        structures: StructuresLike = None,
        absent: str = "empty",
        write_segmentation: bool | str = True,
        write_probabilities: bool | str = True,
        probability_dtype: str = "float32",
        threshold: float = 0.5,
        inference_run: InferenceRun | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.structures = structure_table(structures)
        self.absent = absent
        self.write_segmentation = parse_bool(write_segmentation, "write_segmentation")
        self.write_probabilities = parse_bool(write_probabilities, "write_probabilities")
        self.probability_dtype = probability_dtype
        self.threshold = threshold
        self.inference_run = inference_run

    def case_dir(self, case_name: str) -> Path:
        return self.output_dir / _check_case_name(case_name)

    def __call__(
        self,
        case_name: str,
        labelmap: Any,
        affine: Any | None,
        presence: Sequence[StructurePresence] | Sequence[Mapping[str, Any]] | Mapping[str, Any],
        probabilities: Any | None = None,
        source: str | os.PathLike | None = None,
        input_flags: Any = None,
    ) -> dict[str, str]:
        """Write one case.

        Args:
            case_name: folder and file name stem (letters, digits, ``. _ + -``).
            labelmap: [X, Y, Z] or [1, X, Y, Z] label map indexed ``[i, j, k]`` in the input image's geometry.
            affine: [4, 4] voxel-to-RAS affine; ``None`` when ``labelmap`` is a MetaTensor.
            presence: per-structure rows or vectors (see :func:`monai_sadaan.io.presence.presence_rows`).
            probabilities: optional [S, X, Y, Z] probability maps on the label map's grid.
            source: the input file or DICOM folder the case came from: named in the presence report and the case
                folder's marker (an existing case folder is replaced only if written for the same input). Within
                a started run, the run's datalist gives it when ``None``.
            input_flags: findings about the input (a JSON string or list of ``{"code", "message"}``): written into
                the presence report (``input_flags``, ``warnings``) and logged as warnings. A flag saying the image
                is not CT withholds every call and writes an empty label map
                (:func:`~monai_sadaan.io.presence.withhold_presence_calls`).

        Returns:
            output kind (keys of :data:`CASE_FILE_SUFFIXES`) -> absolute path of the written file (within a
            started run: where it will be once the run commits).

        Raises:
            OutputFolderError: the case folder exists and was not written by this tool for this case and input,
                or holds other files, or is (or holds) the input; nothing is written then.
            ValueError: bad label map, presence, probabilities or input flags.
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
        flags = parse_input_flags(input_flags)
        lm, rows = withhold_presence_calls(lm, rows, flags)  # not CT: no call, nothing painted
        run = self.inference_run if self.inference_run is not None and self.inference_run.started else None
        if run is not None:
            if os.path.realpath(run.output_dir) != os.path.realpath(self.output_dir):
                raise ValueError(f"expected the run's output folder {run.output_dir}, the writer has {self.output_dir}")
            if source is None:
                source = run.source_for(case_name)
        for flag in flags:
            logger.warning(f"case {case_name} ({source or 'source unknown'}): {flag['message']} [{flag['code']}]")

        def write(folder: Path, run_id: str | None) -> dict[str, str]:
            names = {k: f"{case_name}{s}" for k, s in CASE_FILE_SUFFIXES.items()}
            write_label_map_nifti(lm, aff, folder / names["label_map"])
            written = ["label_map"]
            if self.write_segmentation:
                from monai_sadaan.io.slicer_segmentation import write_slicer_segmentation  # only when written

                write_slicer_segmentation(
                    lm, aff, rows, folder / names["segmentation"], self.structures, absent=self.absent
                )
                written.append("segmentation")
            write_colour_table(self.structures, folder / names["colour_table"])
            written.append("colour_table")
            if probabilities is not None and self.write_probabilities:
                write_probability_maps(
                    probabilities, aff, folder / names["probabilities"], dtype=self.probability_dtype
                )
                written.append("probabilities")
            written += ["presence_csv", "presence_json"]
            files = {k: names[k] for k in written}
            # the JSON lists the other files, the marker lists every file and marks the case as this tool's
            write_presence_report(
                rows, folder / names["presence_json"], folder / names["presence_csv"], case_name, files,
                source=source, input_flags=flags,
            )  # fmt: skip
            write_case_marker(folder, case_name, source, files.values(), run_id=run_id)
            _default_permissions(folder)
            return files

        if run is not None:  # the run puts every case in place when all have succeeded
            files = write(run.stage_case(case_name, source), run.run_id)
            run.case_staged(case_name)
            return {k: str(final_dir / v) for k, v in files.items()}

        self.output_dir.mkdir(parents=True, exist_ok=True)
        with folder_lock(self.output_dir):  # refuse before writing; a concurrent swap may not be seen half-done
            problems = case_folder_problems(final_dir, case_name, source)
        if problems:
            raise OutputFolderError("; ".join(problems))
        staging = make_staging_dir(self.output_dir, case_name)
        try:
            new_dir = staging / case_name
            new_dir.mkdir()
            files = write(new_dir, None)
            with folder_lock(self.output_dir):  # one check-and-swap at a time
                remove_stale_staging(self.output_dir)
                problems = case_folder_problems(final_dir, case_name, source)
                if problems:
                    raise OutputFolderError("; ".join(problems))
                swap_in(new_dir, final_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
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


def _one(value: Any) -> Any:
    """The element of a one-element list or tuple (a batch of one after collation), else ``value``."""
    return value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value


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
        source_key: key of the case's source input path (the datalist's ``source``); optional in the data.
        input_flags_key: key of the input's flags (the datalist's ``input_flags``, a JSON string of
            ``[{"code", "message"}]``); optional in the data.
        structures, absent, write_segmentation, write_probabilities, probability_dtype, threshold, inference_run:
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
        source_key: str | None = "source",
        input_flags_key: str | None = "input_flags",
        inference_run: InferenceRun | None = None,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.writer = SADAAnCaseWriter(
            output_dir, structures, absent, write_segmentation, write_probabilities, probability_dtype, threshold,
            inference_run=inference_run,
        )  # fmt: skip
        self.source_key = source_key
        self.input_flags_key = input_flags_key
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
            source = _one(d.get(self.source_key)) if self.source_key is not None else None
            flags = d.get(self.input_flags_key) if self.input_flags_key is not None else None
            files = self.writer(
                self._case_name(d, key), d[key], affine, d[self.presence_key], probabilities,
                source=str(source) if source else None, input_flags=flags,
            )  # fmt: skip
            if self.output_key is not None:
                d[self.output_key] = files
        return d

