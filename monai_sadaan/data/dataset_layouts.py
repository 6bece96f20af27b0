"""Public segmentation data set layouts in, the SADAAn bundle's datalist out.

:func:`convert_dataset` reads a labelled CT data set in one of three common layouts and writes the bundle's
decathlon-style datalist (the form :func:`~monai_sadaan.data.load_datalist` and ``configs/train.json`` read), with
training / validation / test splits stratified by presence pattern:

- ``"totalsegmentator"``: ``<root>/<subject>/ct.nii.gz`` with ``<subject>/segmentations/<name>.nii.gz``, one binary
  mask per structure (the TotalSegmentator data set's own form), or ``<subject>/segmentations.nii.gz``, one
  multi-label map with the TotalSegmentator v2 class ids (:data:`TOTALSEGMENTATOR_V2_CLASSES`) unless a
  ``label_table`` says otherwise (TotalSegmentator v1 maps, for example);
- ``"decathlon"`` (alias ``"msd"``, ``"nnunet"``): ``<root>/dataset.json`` with ``imagesTr/`` and ``labelsTr/``, as
  the Medical Segmentation Decathlon and nnU-Net v2 raw data sets are laid out. The label names come from
  ``dataset.json``: MSD ``"labels": {"0": "background", "1": "liver"}`` or nnU-Net v2
  ``"labels": {"background": 0, "liver": 1}``; nnU-Net's channel suffix (``case_0000.nii.gz``) is understood;
- ``"folders"``: a folder of images and a folder of integer label maps with their own numbering (AMOS, BTCV,
  WORD...), paired by file name, with a label-value table (a JSON or CSV file, or a mapping).

Each of the bundle's structures is found among the data set's label names by name, with common spellings
(``kidney_left``, ``left kidney``, ``Kidney (L)``, ``kidney_l``, ``L kidney``, ``Lt kidney``... all name
``left_kidney``), or as the caller's ``mapping`` says. A structure the data set never labels is an error naming it.
Every subject is checked (a label file per subject, the label on the image's grid, label values inside the table,
left-right order of the paired organs) and its label map is written once, remapped to the bundle's numbering
(uint8, the image's exact geometry), into ``output_dir/labels/``. Presence per subject (the bundle's
``present`` targets) comes from the voxel counts with ``min_voxels``: a structure labelled in some subjects and not
in others becomes an absence the network learns.

Output folder::

    output_dir/
        dataset.json              the datalist: structures, mapping, presence, training / validation / test
        labels/<subject>.nii.gz   label maps in the bundle's numbering, on the image's grid
        .sadaan_dataset_layout    marks the folder as this converter's output (a rerun may write into it)

The images are not copied: the datalist names them by absolute path.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_glue import atomic_open, atomic_write_with
from .datalist import SPLITS, allocate_counts, map_jobs, stratified_split_counts
from .phantoms import DEFAULT_STRUCTURES

__all__ = [
    "CONVERTER_NAME",
    "DEFAULT_MIN_VOXELS",
    "LABEL_NAME_SYNONYMS",
    "LAYOUTS",
    "TOTALSEGMENTATOR_V2_CLASSES",
    "DatasetLayoutError",
    "DatasetSource",
    "SubjectSource",
    "check_datalist_structures",
    "convert_dataset",
    "label_name_key",
    "presence_pattern_name",
    "read_label_table",
    "read_dataset_layout",
    "resolve_structure_mapping",
    "split_by_presence_pattern",
]

LAYOUTS: tuple[str, ...] = ("totalsegmentator", "decathlon", "msd", "nnunet", "folders")
"""Layout names :func:`convert_dataset` reads (``msd`` and ``nnunet`` are the ``decathlon`` reader)."""

CONVERTER_NAME = "monai_sadaan.data.dataset_layouts"
"""Written into every datalist this module makes (``generator.converter``)."""

DEFAULT_MIN_VOXELS = 8
"""Presence threshold of the converter: the bundle's ``min_voxels`` (``configs/train.json``)."""

MARKER_NAME = ".sadaan_dataset_layout"
LABELS_DIR = "labels"
_NIFTI_SUFFIXES = (".nii.gz", ".nii")


class DatasetLayoutError(ValueError):
    """A data set folder, its label table or one of its subjects does not fit the layout or the bundle."""


def _build_totalsegmentator_v2() -> dict[int, str]:
    """The TotalSegmentator v2 ``total`` task's class ids (117 classes; public class map of the tool)."""
    names = [
        "spleen", "kidney_right", "kidney_left", "gallbladder", "liver", "stomach", "pancreas",
        "adrenal_gland_right", "adrenal_gland_left", "lung_upper_lobe_left", "lung_lower_lobe_left",
        "lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right", "esophagus", "trachea",
        "thyroid_gland", "small_bowel", "duodenum", "colon", "urinary_bladder", "prostate", "kidney_cyst_left",
        "kidney_cyst_right", "sacrum", "vertebrae_S1",
    ]  # fmt: skip  # 1..26
    names += [f"vertebrae_L{i}" for i in range(5, 0, -1)]  # 27..31
    names += [f"vertebrae_T{i}" for i in range(12, 0, -1)]  # 32..43
    names += [f"vertebrae_C{i}" for i in range(7, 0, -1)]  # 44..50
    names += [
        "heart", "aorta", "pulmonary_vein", "brachiocephalic_trunk", "subclavian_artery_right",
        "subclavian_artery_left", "common_carotid_artery_right", "common_carotid_artery_left",
        "brachiocephalic_vein_left", "brachiocephalic_vein_right", "atrial_appendage_left", "superior_vena_cava",
        "inferior_vena_cava", "portal_vein_and_splenic_vein", "iliac_artery_left", "iliac_artery_right",
        "iliac_vena_left", "iliac_vena_right",
    ]  # fmt: skip  # 51..68
    bones = ("humerus", "scapula", "clavicula", "femur", "hip")
    names += [f"{part}_{side}" for part in bones for side in ("left", "right")]  # 69..78
    names += ["spinal_cord"]  # 79
    names += [
        f"{part}_{side}"
        for part in ("gluteus_maximus", "gluteus_medius", "gluteus_minimus", "autochthon", "iliopsoas")
        for side in ("left", "right")
    ]  # 80..89
    names += ["brain", "skull"]  # 90, 91
    names += [f"rib_{side}_{i}" for side in ("left", "right") for i in range(1, 13)]  # 92..115
    names += ["sternum", "costal_cartilages"]  # 116, 117
    return {i + 1: name for i, name in enumerate(names)}


TOTALSEGMENTATOR_V2_CLASSES: dict[int, str] = _build_totalsegmentator_v2()
"""TotalSegmentator v2 multi-label class ids (``total`` task): 1 spleen, 2 kidney_right, 3 kidney_left,
4 gallbladder, 5 liver, 6 stomach, 7 pancreas, ... 117 costal_cartilages. The v1 maps numbered differently
(pancreas 10, for one): pass such a map as ``label_table``."""

LABEL_NAME_SYNONYMS: dict[str, str] = {
    # sides
    "left": "left", "l": "left", "lt": "left", "lft": "left",
    "right": "right", "r": "right", "rt": "right", "rgt": "right",
    # organs of the bundle
    "kidney": "kidney", "kidneys": "kidney", "renal": "kidney",
    "liver": "liver", "hepatic": "liver", "hepar": "liver",
    "spleen": "spleen", "lien": "spleen",
    "pancreas": "pancreas", "pancreatic": "pancreas",
}  # fmt: skip
"""Word-level synonyms used to match data set label names to structure names: two names match when their words,
each replaced by its entry here, form the same set (``Kidney (L)`` and ``left_kidney`` both give {kidney, left}),
or when their words joined give the same string (``gall bladder`` and ``gallbladder``)."""

_STOP_WORDS = frozenset({"the", "of"})
# structures whose side is a fact of anatomy (situs solitus): used by the left-right check
_ORGAN_SIDE = {("spleen",): "left", ("liver",): "right"}


# --------------------------------------------------------------------------------------------------------------
# label names


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(name))  # KidneyLeft -> Kidney Left
    return [w for w in re.findall(r"[a-z0-9]+", spaced.lower()) if w not in _STOP_WORDS]


def label_name_key(name: str) -> tuple[str, ...]:
    """The matching key of a label or structure name: its words with synonyms replaced, sorted, without repeats.

    >>> label_name_key("Kidney (L)") == label_name_key("left_kidney") == label_name_key("kidney_l")
    True
    """
    return tuple(sorted({LABEL_NAME_SYNONYMS.get(w, w) for w in _words(name)}))


def _names_match(structure: str, label: str) -> bool:
    if not _words(label):
        return False
    if label_name_key(structure) == label_name_key(label):
        return True
    return "".join(_words(structure)) == "".join(_words(label))


def _side(structure: str) -> str | None:
    """``"left"`` / ``"right"`` for a structure whose side is known from its name or from anatomy, else None."""
    key = label_name_key(structure)
    if "left" in key and "right" not in key:
        return "left"
    if "right" in key and "left" not in key:
        return "right"
    return _ORGAN_SIDE.get(key)


# --------------------------------------------------------------------------------------------------------------
# label tables


def _table_from_mapping(mapping: Mapping, origin: str) -> dict[int, str]:
    """``{value: name}`` from ``{value: name}`` (MSD) or ``{name: value | [values]}`` (nnU-Net v2) mappings."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise DatasetLayoutError(f"expected a non-empty label table (value -> name) in {origin}, got {mapping!r}")
    table: dict[int, str] = {}

    def add(value: Any, name: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer, str)):
            raise DatasetLayoutError(f"expected integer label values in {origin}, got {value!r} for {name!r}")
        text = str(value).strip()
        if not re.fullmatch(r"\d+", text):
            raise DatasetLayoutError(
                f"expected non-negative integer label values in {origin}, got {value!r} for {name!r}"
            )
        v = int(text)
        name = str(name).strip()
        if not name:
            raise DatasetLayoutError(f"expected a label name for value {v} in {origin}, got an empty name")
        if v == 0:
            if label_name_key(name) not in (("background",), ("bg",), ("0",)):
                raise DatasetLayoutError(f"expected value 0 to be the background in {origin}, got {name!r}")
            return
        if v in table and table[v] != name:
            raise DatasetLayoutError(f"label value {v} has two names in {origin}: {table[v]!r} and {name!r}")
        table[v] = name

    keys_are_values = all(re.fullmatch(r"\s*\d+\s*", str(k)) for k in mapping)
    for k, v in mapping.items():
        if keys_are_values and not isinstance(v, (list, tuple)) and not isinstance(k, bool):
            add(k, v)
        elif isinstance(v, (list, tuple)):  # nnU-Net v2 region: one name over several values
            if not v:
                raise DatasetLayoutError(f"expected label values for {k!r} in {origin}, got an empty list")
            for item in v:
                add(item, k)
        else:
            add(v, k)
    if not table:
        raise DatasetLayoutError(f"expected at least one foreground label in {origin}, got only the background")
    return table


def read_label_table(source: str | os.PathLike | Mapping) -> dict[int, str]:
    """Read a label-value table: which integer of the label maps names which label.

    Args:
        source: a mapping (``{1: "spleen", ...}`` or ``{"spleen": 1, ...}``; nnU-Net region lists
            ``{"kidney": [2, 3]}`` give every listed value that name), a JSON text of one, a ``.json`` file holding
            one (or a ``dataset.json`` with a ``"labels"`` entry), or a ``.csv`` / ``.tsv`` / ``.txt`` file of
            ``value,name`` rows (``,``, ``;`` or tab separated; a header row is skipped).

    Returns:
        ``{value: name}`` without the background (value 0).

    Raises:
        DatasetLayoutError: an unreadable file, a value that is not a non-negative integer, a value with two names,
            value 0 named other than background, or no foreground label.
    """
    if isinstance(source, Mapping):
        return _table_from_mapping(source, "the label table")
    text = str(source)
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return _table_from_mapping(json.loads(stripped), "the label table")
        except json.JSONDecodeError as e:
            raise DatasetLayoutError(f"expected a JSON object as the label table, got a parse error: {e}") from e
    path = Path(text)
    if not path.is_file():
        raise DatasetLayoutError(
            f"expected a label table file (.json or .csv) or a JSON mapping, got a missing path: {path}"
        )
    content = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(content)
        except json.JSONDecodeError as e:
            raise DatasetLayoutError(f"expected a JSON label table in {path}, got a parse error: {e}") from e
        if isinstance(data, Mapping) and isinstance(data.get("labels"), Mapping):
            data = data["labels"]
        return _table_from_mapping(data, str(path))
    try:
        dialect = csv.Sniffer().sniff(content[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(content), dialect) if any(c.strip() for c in r)]
    table: dict[str, str] = {}
    for i, row in enumerate(rows):
        cells = [c.strip() for c in row]
        if len(cells) < 2:
            raise DatasetLayoutError(f"expected 'value,name' rows in {path}, got row {i + 1}: {row!r}")
        value, name = cells[0], cells[1]
        if not re.fullmatch(r"\d+", value):
            if re.fullmatch(r"\d+", name):  # name,value order
                value, name = name, value
            elif i == 0:
                continue  # header
            else:
                raise DatasetLayoutError(f"expected an integer label value in row {i + 1} of {path}, got {row!r}")
        table[value] = name
    return _table_from_mapping(table, str(path))


# --------------------------------------------------------------------------------------------------------------
# layouts


@dataclass
class SubjectSource:
    """One subject of a data set: its image and its label file(s).

    Attributes:
        subject: the subject's name (folder or file stem), unique in the data set.
        image: the CT image file.
        label: the multi-label map, or None for subjects with one binary mask per label.
        label_files: label name -> binary mask file (TotalSegmentator's ``segmentations/`` folder), or None.
    """

    subject: str
    image: Path
    label: Path | None = None
    label_files: dict[str, Path] | None = None


@dataclass
class DatasetSource:
    """A data set found on disk by :func:`read_dataset_layout`.

    Attributes:
        layout: the layout it was read as.
        root: the folder it was read from.
        subjects: its subjects, sorted by name.
        label_table: ``{value: name}`` of the multi-label maps (None when every subject has binary masks).
        label_names: every label name the data set declares (table names and mask file names).
        info: what the datalist records about the source (name, reference, licence... when the data set says).
        problems: ``(subject, message)`` of subjects found without an image or a label file; reading them is
            refused by :func:`read_dataset_layout` unless they are excluded.
    """

    layout: str
    root: Path
    subjects: list[SubjectSource]
    label_table: dict[int, str] | None
    label_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _nifti_stem(name: str) -> str | None:
    for suffix in _NIFTI_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def _nifti_files(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the NIfTI files in ``folder`` (hidden files, such as macOS ``._`` copies, skipped)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        stem = _nifti_stem(p.name)
        if stem is None or p.name.startswith(".") or not p.is_file():
            continue
        if stem in out:
            raise DatasetLayoutError(f"expected one file per name in {folder}, got {out[stem].name} and {p.name}")
        out[stem] = p
    return out


def _raise_problems(problems: Sequence[str], what: str) -> None:
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DatasetLayoutError(f"{len(problems)} {what} refused:\n  {shown}{more}")


def _read_totalsegmentator(
    root: Path, label_table: Mapping | str | os.PathLike | None, image_name: str, multilabel_name: str
) -> DatasetSource:
    subjects: list[SubjectSource] = []
    problems: list[tuple[str, str]] = []
    any_multilabel = False
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        image = d / image_name
        seg_dir = d / "segmentations"
        multilabel = d / multilabel_name
        if not image.is_file():
            if seg_dir.is_dir() or multilabel.is_file():
                problems.append((d.name, f"subject {d.name!r}: labels but no image: expected {image}, found none"))
            continue
        if seg_dir.is_dir():
            files = _nifti_files(seg_dir)
            if not files:
                problems.append((d.name, f"subject {d.name!r}: no label file: {seg_dir} holds no .nii.gz / .nii masks"))
                continue
            subjects.append(SubjectSource(d.name, image, label_files=files))
        elif multilabel.is_file():
            any_multilabel = True
            subjects.append(SubjectSource(d.name, image, label=multilabel))
        else:
            expected = f"{seg_dir}/<structure>.nii.gz masks or {multilabel}"
            problems.append((d.name, f"subject {d.name!r}: no label file: expected {expected}"))
    if not subjects and not problems:
        raise DatasetLayoutError(
            f"expected subject folders holding {image_name} in {root} (TotalSegmentator layout), found none"
        )
    table = None
    if any_multilabel:
        table = read_label_table(label_table) if label_table is not None else dict(TOTALSEGMENTATOR_V2_CLASSES)
    table_source = ("given" if label_table is not None else "TotalSegmentator v2") if any_multilabel else None
    info = {"label_table_source": table_source}
    return DatasetSource("totalsegmentator", root, subjects, table, _label_names(subjects, table), info, problems)


def _label_names(subjects: Sequence[SubjectSource], table: Mapping[int, str] | None) -> list[str]:
    """The label names a data set's subjects declare: their mask file names, and the table's names when one of
    them has a multi-label map."""
    names: set[str] = set()
    for s in subjects:
        names.update(s.label_files or {})
    if table is not None and any(s.label is not None for s in subjects):
        names.update(table.values())
    return sorted(names)


def _case_of_nnunet_image(stem: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"(.+)_(\d{4})", stem)
    return (m.group(1), m.group(2)) if m else None


def _read_decathlon(root: Path, label_table: Mapping | str | os.PathLike | None) -> DatasetSource:
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise DatasetLayoutError(f"expected {meta_path} (Decathlon / nnU-Net layout), found none")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"expected valid JSON in {meta_path}, got a parse error: {e}") from e
    if not isinstance(meta, Mapping):
        raise DatasetLayoutError(f"expected a JSON object in {meta_path}, got {type(meta).__name__}")
    if label_table is not None:
        table = read_label_table(label_table)
    elif "labels" in meta:
        table = _table_from_mapping(meta["labels"], f"{meta_path} 'labels'")
    else:
        raise DatasetLayoutError(f"expected a 'labels' table in {meta_path}, found keys {sorted(meta)}")
    channels = meta.get("channel_names", meta.get("modality"))
    if isinstance(channels, Mapping) and channels:
        if len(channels) != 1:
            raise DatasetLayoutError(
                f"expected one image channel (CT) in {meta_path}, got {len(channels)}: {dict(channels)}"
            )
        only = str(next(iter(channels.values())))
        if only.strip().lower() != "ct":
            raise DatasetLayoutError(
                f"expected a CT data set (the bundle windows Hounsfield units), got channel {only!r} in {meta_path}"
            )
    ending = str(meta.get("file_ending", ".nii.gz"))
    if ending not in _NIFTI_SUFFIXES:
        raise DatasetLayoutError(f"expected NIfTI files (.nii.gz or .nii), got file_ending {ending!r} in {meta_path}")
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise DatasetLayoutError(f"expected the folder {folder} (Decathlon / nnU-Net layout), found none")
    problems: list[tuple[str, str]] = []
    subjects: list[SubjectSource] = []
    listed = meta.get("training")
    if isinstance(listed, list) and listed and all(isinstance(e, Mapping) and "image" in e for e in listed):
        for i, entry in enumerate(listed):
            image = (root / str(entry["image"])).resolve()
            stem = _nifti_stem(image.name) or image.name
            if not image.is_file():
                message = f"subject {stem!r}: the image {image} listed in {meta_path.name} does not exist"
                problems.append((stem, message))
                continue
            if "label" not in entry:
                message = f"subject {stem!r}: no label file: training entry {i} of {meta_path.name} has no 'label'"
                problems.append((stem, message))
                continue
            label = (root / str(entry["label"])).resolve()
            if not label.is_file():
                problems.append((stem, f"subject {stem!r}: no label file: expected {label}, found none"))
                continue
            subjects.append(SubjectSource(stem, image, label=label))
    else:
        images = _nifti_files(images_dir)
        labels = _nifti_files(labels_dir)
        cases: dict[str, Path] = {}
        for stem, path in images.items():
            split = _case_of_nnunet_image(stem)
            if split is not None and stem not in labels:
                case, channel = split
                if channel != "0000":
                    message = f"subject {case!r}: expected one CT channel (_0000), got the extra channel file {path.name}"
                    problems.append((case, message))
                    continue
            else:
                case = stem
            cases[case] = path
        for case, path in sorted(cases.items()):
            if case not in labels:
                message = f"subject {case!r}: no label file: expected {labels_dir / (case + ending)}, found none"
                problems.append((case, message))
                continue
            subjects.append(SubjectSource(case, path, label=labels[case]))
        for stem in sorted(set(labels) - set(cases)):
            problems.append((stem, f"subject {stem!r}: a label file {labels[stem]} but no image in {images_dir}"))
    if not subjects and not problems:
        raise DatasetLayoutError(f"expected training cases in {images_dir}, found none")
    subjects.sort(key=lambda s: s.subject)
    info = {k: meta[k] for k in ("name", "description", "reference", "licence", "release") if k in meta}
    return DatasetSource("decathlon", root, subjects, table, sorted(set(table.values())), info, problems)


_PAIR_PREFIXES = ("segmentation", "image", "label", "mask", "img", "seg", "ct", "gt")


def _pair_key(stem: str) -> str:
    """Key pairing an image with its label in two folders: the stem without an nnU-Net channel suffix and without a
    leading ``img`` / ``label`` / ``seg``... word (BTCV's ``img0001`` and ``label0001`` both give ``0001``)."""
    split = _case_of_nnunet_image(stem)
    if split is not None and split[1] == "0000":
        stem = split[0]
    low = stem.lower()
    for prefix in _PAIR_PREFIXES:
        if low.startswith(prefix) and len(low) > len(prefix):
            rest = stem[len(prefix) :].lstrip("_-. ")
            if rest and (rest[0].isdigit() or stem[len(prefix)] in "_-. "):
                return rest
    return stem


def _strip_channel(stem: str) -> str:
    split = _case_of_nnunet_image(stem)
    return split[0] if split is not None and split[1] == "0000" else stem


def _read_folders(images_dir: Path, labels_dir: Path, label_table: Mapping | str | os.PathLike | None) -> DatasetSource:
    if label_table is None:
        raise DatasetLayoutError(
            "expected a label table for the 'folders' layout (which label value names which structure), got none"
        )
    table = read_label_table(label_table)
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise DatasetLayoutError(f"expected the folder {folder}, found none")
    images = _nifti_files(images_dir)
    labels = _nifti_files(labels_dir)

    def same_name(stem: str) -> str | None:
        return next((s for s in (stem, _strip_channel(stem)) if s in labels), None)

    pairs: dict[str, str | None] = {}
    if all(same_name(stem) is not None for stem in images):
        pairs = {stem: same_name(stem) for stem in images}
    else:  # names differ by a prefix: BTCV's img0001 / label0001
        by_key: dict[str, str] = {}
        for folder, files in ((images_dir, images), (labels_dir, labels)):
            seen: dict[str, str] = {}
            for stem in files:
                key = _pair_key(stem)
                if key in seen:
                    raise DatasetLayoutError(
                        f"expected one file per subject in {folder}, got {seen[key]} and {stem} for subject {key!r}"
                    )
                seen[key] = stem
            if files is labels:
                by_key = seen
        pairs = {stem: by_key.get(_pair_key(stem)) for stem in images}
    problems: list[tuple[str, str]] = []
    subjects: list[SubjectSource] = []
    for stem, path in images.items():
        subject = _strip_channel(stem)
        label_stem = pairs[stem]
        if label_stem is None:
            problems.append((subject, f"subject {subject!r}: no label file for {path.name} in {labels_dir}"))
            continue
        subjects.append(SubjectSource(subject, path, label=labels[label_stem]))
    used = {p for p in pairs.values() if p is not None}
    for stem in sorted(set(labels) - used):
        key = _pair_key(stem)
        problems.append((key, f"subject {key!r}: a label file {labels[stem].name} but no image in {images_dir}"))
    if not subjects and not problems:
        raise DatasetLayoutError(f"expected NIfTI images in {images_dir}, found none")
    subjects.sort(key=lambda s: s.subject)
    return DatasetSource("folders", images_dir.parent, subjects, table, sorted(set(table.values())), {}, problems)


def read_dataset_layout(
    layout: str,
    root: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    labels_dir: str | os.PathLike | None = None,
    label_table: Mapping | str | os.PathLike | None = None,
    image_name: str = "ct.nii.gz",
    multilabel_name: str = "segmentations.nii.gz",
    exclude: Sequence[str] = (),
    limit: int | None = None,
) -> DatasetSource:
    """Find a data set's subjects, image and label files, and its label names, without reading any voxel.

    Args:
        layout: one of :data:`LAYOUTS`.
        root: the data set folder (``folders``: the parent of ``imagesTr`` / ``labelsTr`` when those are not given).
        images_dir, labels_dir: ``folders`` layout: the image and label folders (default ``root/imagesTr`` and
            ``root/labelsTr``).
        label_table: value -> name table of the label maps (:func:`read_label_table` forms); required for
            ``folders``; for ``decathlon`` it replaces ``dataset.json``'s labels; for ``totalsegmentator`` it
            replaces the v2 class map of multi-label files.
        image_name: ``totalsegmentator``: the image file of each subject folder.
        multilabel_name: ``totalsegmentator``: the multi-label file used when a subject has no ``segmentations/``.
        exclude: ``fnmatch`` patterns of subject names to leave out (their problems too).
        limit: keep only the first ``limit`` subjects, sorted by name (the problems of the others are ignored).

    Returns:
        A :class:`DatasetSource` with the kept subjects.

    Raises:
        DatasetLayoutError: an unknown layout, a missing folder or ``dataset.json``, subjects without an image
            or a label file (every such subject is named), or no subject left.
    """
    source = _read_layout(layout, root, images_dir, labels_dir, label_table, image_name, multilabel_name)
    names = sorted({s.subject for s in source.subjects} | {name for name, _ in source.problems})
    names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in exclude)]
    if limit is not None:
        names = names[: int(limit)]
    kept = set(names)
    _raise_problems([message for name, message in source.problems if name in kept], "subjects")
    source.problems = []
    source.subjects = [s for s in source.subjects if s.subject in kept]
    if not source.subjects:
        raise DatasetLayoutError(f"expected subjects in {source.root}, got none left after exclude={list(exclude)}")
    if source.layout == "totalsegmentator":
        source.label_names = _label_names(source.subjects, source.label_table)
    return source


def _read_layout(
    layout: str,
    root: str | os.PathLike | None,
    images_dir: str | os.PathLike | None,
    labels_dir: str | os.PathLike | None,
    label_table: Mapping | str | os.PathLike | None,
    image_name: str,
    multilabel_name: str,
) -> DatasetSource:
    if layout not in LAYOUTS:
        raise DatasetLayoutError(f"expected a layout from {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "folders":
        if images_dir is None or labels_dir is None:
            if root is None:
                raise DatasetLayoutError("expected a root folder or both images_dir and labels_dir for 'folders'")
            images_dir = images_dir if images_dir is not None else Path(root) / "imagesTr"
            labels_dir = labels_dir if labels_dir is not None else Path(root) / "labelsTr"
        return _read_folders(Path(images_dir).resolve(), Path(labels_dir).resolve(), label_table)
    if root is None:
        raise DatasetLayoutError(f"expected the data set folder for the {layout!r} layout, got none")
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetLayoutError(f"expected a data set folder, got a missing path: {root}")
    if layout == "totalsegmentator":
        return _read_totalsegmentator(root, label_table, image_name, multilabel_name)
    return _read_decathlon(root, label_table)


# --------------------------------------------------------------------------------------------------------------
# structure mapping


def _check_output_structures(structures: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(structures, Mapping) or not structures:
        raise DatasetLayoutError(f"expected a non-empty mapping of structure name -> label value, got {structures!r}")
    out: dict[str, int] = {}
    for name, value in structures.items():
        if not isinstance(name, str) or not _words(name):
            raise DatasetLayoutError(f"expected structure names as words, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= 255:
            raise DatasetLayoutError(f"expected label values 1..255 (uint8 label maps), got {name!r}: {value!r}")
        out[name] = int(value)
    if len(set(out.values())) != len(out):
        raise DatasetLayoutError(f"expected a distinct label value per structure, got {out}")
    return out


def resolve_structure_mapping(
    structures: Mapping[str, int],
    label_names: Sequence[str],
    mapping: Mapping[str, str | int | Sequence[str | int]] | None = None,
    label_table: Mapping[int, str] | None = None,
) -> dict[str, list[str]]:
    """Which of the data set's labels make each of the bundle's structures.

    Args:
        structures: the bundle's structures, name -> output label value.
        label_names: the label names the data set declares.
        mapping: explicit choices, structure -> a label name, a label value of ``label_table``, or a list of them
            (their union makes the structure: MSD liver ``["liver", "cancer"]``, the tumour inside the organ).
            Structures it leaves out are matched by name (:func:`label_name_key`).
        label_table: value -> name, to resolve label values in ``mapping``.

    Returns:
        structure -> list of label names, in ``structures``' order.

    Raises:
        DatasetLayoutError: a structure no label matches (the data set never labels it), two labels matching one
            structure by name, a label used for two structures, or a ``mapping`` naming an unknown structure,
            label name or value.
    """
    names = list(dict.fromkeys(str(n) for n in label_names))
    mapping = dict(mapping or {})
    unknown = [s for s in mapping if s not in structures]
    if unknown:
        raise DatasetLayoutError(
            f"the mapping names structures the bundle does not have: {unknown}; expected {list(structures)}"
        )
    out: dict[str, list[str]] = {}
    missing: list[str] = []
    for structure in structures:
        if structure in mapping:
            chosen = mapping[structure]
            items = list(chosen) if isinstance(chosen, (list, tuple)) else [chosen]
            resolved: list[str] = []
            for item in items:
                text = str(item).strip()
                if text in names:
                    resolved.append(text)
                elif re.fullmatch(r"\d+", text) and label_table is not None and int(text) in label_table:
                    resolved.append(label_table[int(text)])
                else:
                    raise DatasetLayoutError(
                        f"the mapping gives {structure!r} the label {item!r}, which the data set does not have; "
                        f"expected one of: {', '.join(names[:60])}{' ...' if len(names) > 60 else ''}"
                    )
            if not resolved:
                raise DatasetLayoutError(f"the mapping gives {structure!r} no label")
            out[structure] = list(dict.fromkeys(resolved))
            continue
        matches = [n for n in names if _names_match(structure, n)]
        if not matches:
            missing.append(structure)
        elif len(matches) > 1:
            raise DatasetLayoutError(
                f"structure {structure!r} matches several labels of the data set by name: {matches}; "
                f"choose with a mapping, e.g. {{{structure!r}: {matches[0]!r}}}"
            )
        else:
            out[structure] = matches
    if missing:
        raise DatasetLayoutError(
            f"the bundle needs {', '.join(repr(m) for m in missing)}, but the data set never labels "
            f"{'it' if len(missing) == 1 else 'them'}: no label name matches "
            f"(labels: {', '.join(names[:60])}{' ...' if len(names) > 60 else ''}). Map "
            f"{'it' if len(missing) == 1 else 'each'} explicitly (--mapping '{{\"{missing[0]}\": \"<label>\"}}') or "
            f"leave {'it' if len(missing) == 1 else 'them'} out of the structures (and train with the same --structures)"
        )
    owner: dict[str, str] = {}
    for structure, labels in out.items():
        for label in labels:
            if label in owner:
                raise DatasetLayoutError(
                    f"the label {label!r} is mapped to two structures: {owner[label]!r} and {structure!r}"
                )
            owner[label] = structure
    return out


# --------------------------------------------------------------------------------------------------------------
# splits


def presence_pattern_name(present: Mapping[str, bool]) -> str:
    """A readable name of a presence pattern, used as the entry's ``scenario`` (evaluation groups by it).

    >>> presence_pattern_name({"liver": True, "spleen": False})
    'absent spleen'
    """
    absent = [name for name, p in present.items() if not p]
    return "all present" if not absent else "absent " + "+".join(absent)


def split_by_presence_pattern(
    patterns: Mapping[str, Sequence[bool]], splits: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, str]:
    """Assign subjects to training / validation / test, stratified by presence pattern, deterministically.

    Subjects with the same pattern form a stratum split by ``splits`` (every split with a positive fraction gets
    at least one subject when the stratum allows: :func:`~monai_sadaan.data.datalist.stratified_split_counts`);
    patterns with fewer subjects than wanted splits are pooled into one stratum. The order inside a stratum is a
    permutation drawn from ``seed``; the result depends only on the subject names, their patterns, ``splits`` and
    ``seed``.

    Args:
        patterns: subject -> presence flags (one per structure, in a fixed order).
        splits: fractions of training, validation and test.
        seed: permutation seed.

    Returns:
        subject -> ``"training"`` / ``"validation"`` / ``"test"``.
    """
    if len(splits) != 3:
        raise DatasetLayoutError(f"expected three split fractions (training, validation, test), got {list(splits)}")
    allocate_counts(1, splits)  # validates the fractions
    wanted = sum(1 for f in splits if f > 0)
    groups: dict[tuple[bool, ...], list[str]] = {}
    for subject, flags in patterns.items():
        groups.setdefault(tuple(bool(f) for f in flags), []).append(subject)
    strata: list[list[str]] = []
    pooled: list[str] = []
    for pattern in sorted(groups, key=lambda p: (-sum(p), p)):
        members = sorted(groups[pattern])
        (strata.append(members) if len(members) >= wanted else pooled.extend(members))
    if pooled:
        strata.append(sorted(pooled))
    rng = np.random.default_rng(int(seed))
    out: dict[str, str] = {}
    for members in strata:
        order = [members[i] for i in rng.permutation(len(members))]
        start = 0
        for split, n in zip(SPLITS, stratified_split_counts(len(members), splits)):
            for subject in order[start : start + n]:
                out[subject] = split
            start += n
    return out


_SPLIT_ALIASES = {
    **dict.fromkeys(("train", "training", "tr"), "training"),
    **dict.fromkeys(("val", "valid", "validation"), "validation"),
    **dict.fromkeys(("test", "testing", "ts"), "test"),
}


def _read_split_file(path: str | os.PathLike) -> dict[str, str]:
    """subject -> split from a JSON ``{subject: split}`` or a CSV with a subject column (``subject``, ``image_id``,
    ``case``, ``id``) and a ``split`` column (``train``/``val``/``test`` or the datalist's names): the
    TotalSegmentator data set's ``meta.csv`` reads as it is."""
    path = Path(path)
    if not path.is_file():
        raise DatasetLayoutError(f"expected a split file, got a missing path: {path}")
    text = path.read_text(encoding="utf-8-sig")
    raw: dict[str, str] = {}
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if not isinstance(data, Mapping):
            raise DatasetLayoutError(f"expected a JSON object subject -> split in {path}, got {type(data).__name__}")
        raw = {str(k): str(v) for k, v in data.items()}
    else:
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        fields = {f.strip().lower(): f for f in reader.fieldnames or []}
        subject_col = next((fields[c] for c in ("subject", "image_id", "case", "id") if c in fields), None)
        if subject_col is None or "split" not in fields:
            raise DatasetLayoutError(
                f"expected columns 'subject' (or 'image_id', 'case', 'id') and 'split' in {path}, got {reader.fieldnames}"
            )
        for row in reader:
            raw[str(row[subject_col]).strip()] = str(row[fields["split"]]).strip()
    out: dict[str, str] = {}
    for subject, split in raw.items():
        name = _SPLIT_ALIASES.get(split.lower())
        if name is None:
            raise DatasetLayoutError(
                f"expected a split of training / validation / test (or train / val) for {subject!r} in {path}, got {split!r}"
            )
        out[subject] = name
    return out


# --------------------------------------------------------------------------------------------------------------
# per-subject conversion


def _load(path: Path, subject: str, what: str) -> Any:
    import nibabel as nib

    try:
        return nib.load(str(path))
    except Exception as e:  # nibabel raises several types for unreadable files
        raise DatasetLayoutError(f"subject {subject!r}: cannot read the {what} {path}: {e}") from e


def _spatial_shape(img: Any, subject: str, what: str, path: Path) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise DatasetLayoutError(f"subject {subject!r}: expected a 3D {what}, got shape {shape} in {path}")
    return shape  # type: ignore[return-value]


def _check_geometry(
    subject: str, image_path: Path, shape: tuple, affine: np.ndarray, label: Any, label_path: Path, tolerance: float
) -> None:
    lshape = _spatial_shape(label, subject, "label", label_path)
    if lshape != shape:
        raise DatasetLayoutError(
            f"subject {subject!r}: label geometry does not match the image: expected shape {shape} "
            f"(of {image_path.name}), got {lshape} in {label_path}"
        )
    diff = float(np.max(np.abs(np.asarray(label.affine, dtype=float) - affine)))
    if not np.isfinite(diff) or diff > tolerance:
        raise DatasetLayoutError(
            f"subject {subject!r}: label geometry does not match the image: the affines differ by {diff:.4g} mm "
            f"(tolerance {tolerance:g}); expected\n{np.round(affine, 4)}\n(of {image_path.name}), got\n"
            f"{np.round(np.asarray(label.affine), 4)}\nin {label_path}"
        )


def _integer_volume(img: Any, subject: str, path: Path, what: str) -> np.ndarray:
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4:
        data = data[..., 0]
    if data.dtype.kind == "b":
        return data.astype(np.uint8)
    if data.dtype.kind in "iu":
        return data
    if data.dtype.kind != "f":
        raise DatasetLayoutError(f"subject {subject!r}: expected a numeric {what} in {path}, got dtype {data.dtype}")
    if not np.isfinite(data).all() or not np.array_equal(data, np.round(data)):
        raise DatasetLayoutError(
            f"subject {subject!r}: expected integer label values in {path}, got non-integer values"
        )
    lo, hi = float(data.min(initial=0)), float(data.max(initial=0))
    if lo < -(2**31) or hi >= 2**31:
        raise DatasetLayoutError(f"subject {subject!r}: label values out of range in {path}: {lo:g}..{hi:g}")
    return data.astype(np.int32)


def _value_counts(data: np.ndarray, subject: str, path: Path) -> dict[int, int]:
    """Voxel count of every value (chunked, so that big volumes need no int64 copy of the whole array)."""
    lo = int(data.min(initial=0))
    if lo < 0:
        neg = np.unique(data[data < 0])[:10].tolist()
        raise DatasetLayoutError(f"subject {subject!r}: expected non-negative label values in {path}, got {neg}")
    flat = data.ravel(order="K")  # a view for C- and Fortran-ordered arrays alike (nibabel's are Fortran)
    hi = int(data.max(initial=0))
    step = 1 << 22
    if hi > 1 << 16:  # sparse large values: no counts array as long as the largest value
        found: dict[int, int] = {}
        for start in range(0, flat.size, step):
            values, counts_ = np.unique(flat[start : start + step], return_counts=True)
            for v, c in zip(values.tolist(), counts_.tolist()):
                found[int(v)] = found.get(int(v), 0) + int(c)
        return found
    counts = np.zeros(hi + 1, dtype=np.int64)
    for start in range(0, flat.size, step):
        counts += np.bincount(flat[start : start + step], minlength=hi + 1)
    return {int(v): int(c) for v, c in enumerate(counts) if c}


def _convert_subject(job: dict[str, Any]) -> dict[str, Any]:
    """Check one subject, write its remapped label map, and return its datalist entry (module level for processes)."""
    import nibabel as nib

    subject: str = job["subject"]
    image_path = Path(job["image"])
    out_path = Path(job["out_label"])
    structures: dict[str, int] = job["structures"]
    tolerance: float = job["affine_tolerance"]
    image = _load(image_path, subject, "image")
    shape = _spatial_shape(image, subject, "image", image_path)
    affine = np.asarray(image.affine, dtype=float)
    out = np.zeros(shape, dtype=np.uint8, order="F")  # the memory order nibabel reads and writes
    sources: list[str] = []
    if job["label"] is not None:  # one multi-label map
        label_path = Path(job["label"])
        label = _load(label_path, subject, "label")
        _check_geometry(subject, image_path, shape, affine, label, label_path, tolerance)
        data = _integer_volume(label, subject, label_path, "label map")
        counts = _value_counts(data, subject, label_path)
        table: dict[int, str] = {int(k): v for k, v in job["label_table"].items()}
        outside = sorted(v for v in counts if v != 0 and v not in table)
        if outside:
            expected = ", ".join(f"{v} {n}" for v, n in sorted(table.items())[:40])
            raise DatasetLayoutError(
                f"subject {subject!r}: label values {outside} in {label_path} are not in the label table "
                f"(expected 0 background or: {expected}{' ...' if len(table) > 40 else ''}); this subject's numbering "
                "differs from the table the other subjects follow, or the table is wrong"
            )
        lut = np.zeros(max(max(counts), max(table)) + 1, dtype=np.uint8)
        for structure, values in job["values"].items():
            for v in values:
                lut[int(v)] = structures[structure]
        out = lut[data]  # every value is inside the table, so inside the lookup
        sources.append(str(label_path))
    else:  # one binary mask per label
        files: dict[str, str] = job["label_files"]
        for structure, names in job["names"].items():
            for name in names:
                if name not in files:
                    raise DatasetLayoutError(
                        f"subject {subject!r}: no label file for {structure!r}: expected "
                        f"{image_path.parent / 'segmentations' / (name + '.nii.gz')} (label {name!r}, which other "
                        "subjects have), found none"
                    )
                mask_path = Path(files[name])
                mask = _load(mask_path, subject, "mask")
                _check_geometry(subject, image_path, shape, affine, mask, mask_path, tolerance)
                data = _integer_volume(mask, subject, mask_path, "mask")
                if data.size and (int(data.min()) < 0 or int(data.max()) > 1):
                    raise DatasetLayoutError(
                        f"subject {subject!r}: expected a binary mask (values 0 and 1) in {mask_path}, got values "
                        f"{sorted(_value_counts(np.abs(data), subject, mask_path))[:10]}"
                    )
                inside = data != 0
                value = structures[structure]
                clash = inside & (out != 0) & (out != value)
                n_clash = int(np.count_nonzero(clash))
                if n_clash:
                    other_value = int(out[clash][0])
                    other = next(s for s, v in structures.items() if v == other_value)
                    raise DatasetLayoutError(
                        f"subject {subject!r}: the masks of {other!r} and {structure!r} overlap in {n_clash} voxels "
                        f"({mask_path}); expected disjoint structures"
                    )
                np.copyto(out, np.uint8(value), where=inside)
                sources.append(str(mask_path))
    voxels_by_value = _value_counts(out, subject, out_path)
    voxels = {s: int(voxels_by_value.get(v, 0)) for s, v in structures.items()}
    present = {s: voxels[s] >= job["min_voxels"] for s in structures}
    if job["check_laterality"]:
        _check_laterality(subject, out, affine, structures, present)
    new = nib.Nifti1Image(out, affine)
    units = image.header.get_xyzt_units() if hasattr(image.header, "get_xyzt_units") else ("mm", "sec")
    new.header.set_xyzt_units(*units)
    new.header.set_data_dtype(np.uint8)
    with atomic_write_with(out_path) as tmp:
        nib.save(new, tmp)
    zooms = [float(z) for z in image.header.get_zooms()[:3]]
    return {
        "image": str(image_path),
        "label": f"{LABELS_DIR}/{out_path.name}",
        "subject": subject,
        "scenario": presence_pattern_name(present),
        "present": present,
        "voxels": voxels,
        "source_labels": sources,
        "shape": list(shape),
        "spacing": [round(z, 6) for z in zooms],
        "orientation": "".join(nib.aff2axcodes(affine)),
    }


def _check_laterality(
    subject: str, label: np.ndarray, affine: np.ndarray, structures: Mapping[str, int], present: Mapping[str, bool]
) -> None:
    """Refuse a subject whose left-sided structure lies right of a right-sided one (world x of the centroids)."""
    sides = {s: _side(s) for s in structures if present[s]}
    left = [s for s, side in sides.items() if side == "left"]
    right = [s for s, side in sides.items() if side == "right"]
    if not left or not right:
        return
    x: dict[str, float] = {}
    # big volumes: the centroid from every second voxel per axis is as good for a left-right order, 8x cheaper
    stride = 2 if label.size > 1 << 24 else 1
    for s in left + right:
        idx = np.nonzero(label[::stride, ::stride, ::stride] == structures[s])
        step = stride
        if not idx[0].size:  # a small structure between the sampled voxels
            idx, step = np.nonzero(label == structures[s]), 1
        centre = np.array([float(np.mean(i)) * step for i in idx] + [1.0])
        x[s] = float((affine @ centre)[0])  # RAS+: x grows towards the patient's right
    for a in left:
        for b in right:
            if x[a] >= x[b]:
                raise DatasetLayoutError(
                    f"subject {subject!r}: {a!r} (label {structures[a]}) lies to the patient's right of {b!r} "
                    f"(label {structures[b]}): world x {x[a]:.1f} mm against {x[b]:.1f} mm (RAS, x grows to the right). "
                    "Expected the left-sided structure on the left: this subject's label numbering differs from the "
                    "table (left and right swapped), or its image header flips left and right. "
                    "(Turn the check off only for situs inversus: check_laterality=False / --no_laterality_check.)"
                )


# --------------------------------------------------------------------------------------------------------------
# output folder


def _is_converter_output(folder: Path, datalist_name: str) -> bool:
    if (folder / MARKER_NAME).is_file():
        return True
    path = folder / datalist_name
    if not path.is_file():
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    generator = data.get("generator") if isinstance(data, dict) else None
    return isinstance(generator, dict) and generator.get("converter") == CONVERTER_NAME


def _prepare_output_dir(folder: Path, datalist_name: str, sources: Iterable[Path]) -> None:
    if folder.exists() and not folder.is_dir():
        raise DatasetLayoutError(f"expected an output folder, got a file: {folder}")
    resolved = folder.resolve()
    for src in sources:
        src = src.resolve()
        if resolved == src:
            raise DatasetLayoutError(
                f"expected an output folder apart from the data set, got the data set's own folder {src}"
            )
    if folder.is_dir() and any(folder.iterdir()) and not _is_converter_output(folder, datalist_name):
        raise DatasetLayoutError(
            f"refusing to write into {folder}: the folder is not empty and is not an output of this converter "
            f"(no {MARKER_NAME} marker, no {datalist_name} written by it); choose a new or empty folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / MARKER_NAME, "w", encoding="utf-8") as f:
        json.dump({"converter": CONVERTER_NAME}, f)
        f.write("\n")


def _safe_file_stem(subject: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", subject).strip("._") or "subject"
    return stem


# --------------------------------------------------------------------------------------------------------------
# the converter


def convert_dataset(
    layout: str,
    output_dir: str | os.PathLike,
    root: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    labels_dir: str | os.PathLike | None = None,
    label_table: Mapping | str | os.PathLike | None = None,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    mapping: Mapping[str, str | int | Sequence[str | int]] | None = None,
    min_voxels: int = DEFAULT_MIN_VOXELS,
    splits: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    split_file: str | os.PathLike | None = None,
    exclude: Sequence[str] = (),
    limit: int | None = None,
    affine_tolerance: float = 1e-3,
    check_laterality: bool = True,
    datalist_name: str = "dataset.json",
    num_workers: int = 0,
    progress: bool | Callable = False,
    image_name: str = "ct.nii.gz",
    multilabel_name: str = "segmentations.nii.gz",
) -> Path:
    """Convert a labelled CT data set in a public layout into the SADAAn bundle's datalist.

    Every subject is checked and its label map written once, remapped to ``structures``' values (uint8, the image's
    affine and shape), into ``output_dir/labels/``; the datalist (``output_dir/datalist_name``) lists the subjects
    under ``training`` / ``validation`` / ``test`` with ``{"image", "label", "subject", "scenario", "present",
    "voxels", ...}`` (``scenario`` is the presence pattern, ``present`` is ``voxels >= min_voxels``) and records the
    structure mapping. The JSON is written last and atomically: a folder without it holds no finished conversion.
    Nothing outside ``output_dir`` is written; a non-empty ``output_dir`` that is not an earlier output of this
    converter is refused.

    Args:
        layout: ``"totalsegmentator"``, ``"decathlon"`` (``"msd"``, ``"nnunet"``) or ``"folders"``.
        output_dir: the output folder (created).
        root: the data set folder.
        images_dir, labels_dir: ``folders`` layout: image and label folders (default ``root/imagesTr``,
            ``root/labelsTr``).
        label_table: value -> name table of the label maps (see :func:`read_label_table`).
        structures: the bundle's structures, name -> label value of the written maps (the bundle's table by
            default: left_kidney 1, right_kidney 2, liver 3, spleen 4, pancreas 5); train with the same table.
        mapping: structure -> label name(s) or value(s) of the data set, for structures the names do not match
            (see :func:`resolve_structure_mapping`).
        min_voxels: a structure with at least this many voxels in a subject is present there (native grid).
        splits: fractions of training, validation and test, stratified by presence pattern.
        seed: seed of the split.
        split_file: subject -> split (JSON, or CSV with ``subject``/``image_id`` and ``split`` columns, such as
            TotalSegmentator's ``meta.csv``) used instead of drawing one; it must list every converted subject.
        exclude: ``fnmatch`` patterns of subject names to leave out (MRI cases of a mixed data set, a broken
            subject...); they are not checked.
        limit: convert only the first ``limit`` subjects (sorted by name), for a quick first run; the others are
            not checked.
        affine_tolerance: largest difference (mm) between an image's and its label's affine entries.
        check_laterality: refuse subjects whose left-sided structure (left kidney, spleen) lies right of a
            right-sided one (right kidney, liver): a swapped numbering or a flipped header.
        datalist_name: the datalist's file name in ``output_dir``.
        num_workers: processes converting subjects in parallel (0: this process). The output is the same.
        progress: True for a tqdm bar, or a callable wrapping the iterator of finished subjects.
        image_name, multilabel_name: ``totalsegmentator``: file names inside a subject folder.

    Returns:
        The datalist's path.

    Raises:
        DatasetLayoutError: the layout does not fit the folder; a structure the data set never labels (or never
            holds ``min_voxels`` voxels of); subjects with a missing label file, a label off the image's grid, label
            values outside the table, overlapping masks or swapped sides (all refused subjects are named, with what
            was expected and what came); an output folder that is not this converter's.
    """
    structures = _check_output_structures(structures)
    if isinstance(min_voxels, bool) or not isinstance(min_voxels, (int, np.integer)) or min_voxels < 1:
        raise DatasetLayoutError(f"expected min_voxels as an integer >= 1, got {min_voxels!r}")
    if not (isinstance(affine_tolerance, (int, float)) and np.isfinite(affine_tolerance) and affine_tolerance >= 0):
        raise DatasetLayoutError(f"expected affine_tolerance as a finite number >= 0 (mm), got {affine_tolerance!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise DatasetLayoutError(f"expected num_workers as an integer >= 0, got {num_workers!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DatasetLayoutError(f"expected limit as an integer >= 1 or None, got {limit!r}")
    if len(splits) != 3:
        raise DatasetLayoutError(f"expected three split fractions (training, validation, test), got {list(splits)}")
    try:
        allocate_counts(1, splits)
    except ValueError as e:
        raise DatasetLayoutError(str(e)) from e
    source = read_dataset_layout(
        layout, root, images_dir, labels_dir, label_table, image_name, multilabel_name, exclude=exclude, limit=limit
    )
    subjects = source.subjects
    chosen = resolve_structure_mapping(structures, source.label_names, mapping, source.label_table)
    values: dict[str, list[int]] = {}
    if source.label_table is not None:
        by_name: dict[str, list[int]] = {}
        for v, n in source.label_table.items():
            by_name.setdefault(n, []).append(v)
        values = {s: sorted(v for n in names for v in by_name.get(n, [])) for s, names in chosen.items()}
    assigned = _read_split_file(split_file) if split_file is not None else None
    if assigned is not None:
        unlisted = [s.subject for s in subjects if s.subject not in assigned]
        if unlisted:
            raise DatasetLayoutError(
                f"the split file {split_file} does not list {len(unlisted)} subjects, e.g. {unlisted[:5]}; "
                "expected every converted subject (leave the others out with exclude)"
            )
    stems: dict[str, str] = {}
    for s in subjects:
        stem = _safe_file_stem(s.subject)
        if stem in stems:
            raise DatasetLayoutError(
                f"subjects {stems[stem]!r} and {s.subject!r} would write the same file {stem}.nii.gz"
            )
        stems[stem] = s.subject

    out_dir = Path(output_dir)
    source_dirs = [source.root] + [Path(p) for p in (images_dir, labels_dir) if p is not None]
    _prepare_output_dir(out_dir, datalist_name, source_dirs)
    jobs = []
    for s in subjects:
        multilabel = s.label is not None
        jobs.append(
            {
                "subject": s.subject,
                "image": str(s.image),
                "label": str(s.label) if multilabel else None,
                "label_files": {k: str(v) for k, v in (s.label_files or {}).items()},
                "label_table": dict(source.label_table or {}),
                "values": values,
                "names": chosen,
                "structures": structures,
                "min_voxels": int(min_voxels),
                "affine_tolerance": float(affine_tolerance),
                "check_laterality": bool(check_laterality),
                "out_label": str(out_dir / LABELS_DIR / f"{_safe_file_stem(s.subject)}.nii.gz"),
            }
        )
    entries: dict[str, dict] = {}
    problems: list[str] = []

    with map_jobs(_convert_subject_or_problem, jobs, int(num_workers), progress, "subjects", "subject") as results:
        for result in results:  # in the order of jobs
            if isinstance(result, str):
                problems.append(result)
            else:
                entries[result["subject"]] = result
    _raise_problems(problems, "subjects")

    never = [s for s in structures if not any(e["present"][s] for e in entries.values())]
    if never:
        raise DatasetLayoutError(
            f"the bundle needs {', '.join(repr(s) for s in never)}, but the data set never labels "
            f"{'it' if len(never) == 1 else 'them'} with {min_voxels} voxels or more in any of the {len(entries)} "
            f"subjects (labels used: {', '.join(f'{s} <- {chosen[s]}' for s in never)}); leave "
            f"{'it' if len(never) == 1 else 'them'} out of the structures or map another label"
        )
    if assigned is not None:
        split_of = {s: assigned[s] for s in entries}
    else:
        split_of = split_by_presence_pattern(
            {s: [e["present"][n] for n in structures] for s, e in entries.items()}, splits, seed
        )
    lists: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for subject in sorted(entries):
        lists[split_of[subject]].append(entries[subject])
    presence_counts = {}
    for s in structures:
        n_present = sum(e["present"][s] for e in entries.values())
        presence_counts[s] = {"present": n_present, "absent": len(entries) - n_present}
    mapped = {n for names in chosen.values() for n in names}
    datalist = {
        "name": f"SADAAn datalist from {source.info.get('name', source.root.name)} ({source.layout} layout)",
        "description": "converted with monai_sadaan.data.convert_dataset: labels remapped to the bundle's structures",
        "reference": source.info.get("reference", ""),
        "licence": source.info.get("licence", "that of the source data set"),
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {"0": "background", **{str(v): k for k, v in sorted(structures.items(), key=lambda kv: kv[1])}},
        "structures": dict(structures),
        "min_voxels": int(min_voxels),
        "structure_mapping": {
            s: {"labels": chosen[s], **({"values": values[s]} if s in values else {})} for s in structures
        },
        "unmapped_labels": [n for n in source.label_names if n not in mapped],
        "presence_counts": presence_counts,
        "scenarios": sorted({e["scenario"] for e in entries.values()}),
        "source": {
            "layout": source.layout,
            "root": str(source.root),
            "label_table": {str(k): v for k, v in sorted((source.label_table or {}).items())} or None,
            **{k: v for k, v in source.info.items() if k == "label_table_source" and v is not None},
        },
        "generator": {
            "converter": CONVERTER_NAME,
            "seed": int(seed),
            "splits": [float(f) for f in splits],
            "split_file": str(Path(split_file).resolve()) if split_file is not None else None,
            "exclude": list(exclude),
            "limit": limit,
            "affine_tolerance": float(affine_tolerance),
            "check_laterality": bool(check_laterality),
        },
        "numTraining": len(lists["training"]),
        "numValidation": len(lists["validation"]),
        "numTest": len(lists["test"]),
        **lists,
    }
    path = out_dir / datalist_name
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(datalist, f, indent=2)
        f.write("\n")
    return path


def _convert_subject_or_problem(job: dict[str, Any]) -> dict[str, Any] | str:
    """:func:`_convert_subject`, with a refusal returned as its message so that every subject gets checked."""
    try:
        return _convert_subject(job)
    except DatasetLayoutError as e:
        return str(e)


def check_datalist_structures(datalist: str | os.PathLike, structures: Mapping[str, int]) -> str:
    """Check that a datalist's label maps number the structures as the bundle's ``structures`` table does.

    Datalists written by :func:`convert_dataset` and :func:`~monai_sadaan.data.write_phantom_dataset` record their
    ``structures``; a bundle trained with another table would learn the wrong organs without any error. Datalists
    without the record pass unchecked.

    Args:
        datalist: the datalist JSON.
        structures: the bundle's table, name -> label value (a subset of the datalist's is fine).

    Returns:
        ``datalist`` as a string, so that configs can wrap it: ``load_datalist(check_datalist_structures(...))``.

    Raises:
        DatasetLayoutError: a structure the datalist does not label, or labels with another value.
    """
    path = Path(datalist)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetLayoutError(f"expected a datalist JSON file, got a missing path: {path}") from None
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"expected a valid JSON datalist, got a parse error in {path}: {e}") from e
    recorded = data.get("structures") if isinstance(data, dict) else None
    if isinstance(recorded, Mapping):
        wrong = {s: v for s, v in structures.items() if recorded.get(s) != v}
        if wrong:
            raise DatasetLayoutError(
                f"the bundle's structures {dict(wrong)} do not match the datalist {path}: its label maps number "
                f"{dict(recorded)}; convert the data set with the bundle's structures or train with the datalist's"
            )
    return str(datalist)
