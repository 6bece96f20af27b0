"""Names, label values, colours and standard terminology (SNOMED CT) of the structures SADAAn segments.

3D Slicer describes a segment's meaning by a terminology entry: a category, a type and an optional type modifier,
each a coded triplet ``(coding scheme, code value, code meaning)``. Slicer stores the entry as one string in the
segment's ``TerminologyEntry`` tag (see :func:`terminology_string`); its CSV colour tables carry the same codes in
``Category_*``, ``Type_*`` and ``TypeModifier_*`` columns.

The default structures are the five of the SADAAn seed (label values 1..5). Names that are not in the table get a
generic "Tissue" entry and a colour drawn from a fixed palette, so a model trained on other structures still
writes valid Slicer files.

The table's CSV form is 3D Slicer's colour table for the NIfTI label map (:func:`write_colour_table`): columns
``LabelValue, Name, Color_R, Color_G, Color_B, Color_A`` (integers 0..255) followed by Slicer's terminology columns
``Category_*``, ``Type_*``, ``TypeModifier_*``, ``Region_*``, ``RegionModifier_*`` (each ``CodingScheme, CodeValue,
CodeMeaning``). Label 0 (background) is left out, as Slicer recommends. Load it in Slicer with the label map and
pick it as the label map's colour node, or give it to any viewer that reads CSV.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from monai_glue.atomic import atomic_open

__all__ = [
    "COLOUR_TABLE_COLUMNS",
    "Code",
    "StructuresLike",
    "StructureInfo",
    "DEFAULT_STRUCTURE_NAMES",
    "SLICER_CATEGORY_TYPE_CONTEXT",
    "SLICER_ANATOMIC_CONTEXT",
    "structure_info",
    "structure_table",
    "structure_colours",
    "terminology_string",
    "terminology_dict",
    "write_colour_table",
    "read_colour_table",
]

Code = tuple[str, str, str]
"""A coded concept: (coding scheme designator, code value, code meaning), e.g. ``("SCT", "10200004", "Liver")``."""

SLICER_CATEGORY_TYPE_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
SLICER_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

_ANATOMICAL_STRUCTURE: Code = ("SCT", "123037004", "Anatomical Structure")
_TISSUE: Code = ("SCT", "85756007", "Tissue")
_KIDNEY: Code = ("SCT", "64033007", "Kidney")
_LEFT: Code = ("SCT", "7771000", "Left")
_RIGHT: Code = ("SCT", "24028007", "Right")

DEFAULT_STRUCTURE_NAMES: tuple[str, ...] = ("left_kidney", "right_kidney", "liver", "spleen", "pancreas")


@dataclass(frozen=True)
class StructureInfo:
    """One segmented structure: what it is called, its label value, colour and terminology.

    Args:
        name: machine name used everywhere in SADAAn outputs (``"left_kidney"``): segment name and ID in the
            ``.seg.nrrd``, ``Name`` in the colour table, ``structure`` in the presence report.
        label: value of the structure's voxels in the label map (1..255 for the default uint8 maps).
        colour: RGB, integers 0..255.
        category: terminology category (SNOMED CT "Anatomical Structure" for organs).
        type: terminology type (the organ).
        type_modifier: laterality, or ``None``.
    """

    name: str
    label: int
    colour: tuple[int, int, int]
    category: Code = _ANATOMICAL_STRUCTURE
    type: Code = _TISSUE
    type_modifier: Code | None = None

    @property
    def colour_float(self) -> tuple[float, float, float]:
        """RGB in 0..1, as Slicer's segment ``Color`` field holds it."""
        return tuple(round(c / 255.0, 6) for c in self.colour)  # type: ignore[return-value]


# Colours follow 3D Slicer's General Anatomy list where it has one (liver, spleen, pancreas, kidney); the left
# kidney gets a second kidney tone so both kidneys can be told apart on screen.
_KNOWN: dict[str, dict] = {
    "left_kidney": dict(colour=(212, 126, 151), type=_KIDNEY, type_modifier=_LEFT),
    "right_kidney": dict(colour=(185, 102, 83), type=_KIDNEY, type_modifier=_RIGHT),
    "liver": dict(colour=(221, 130, 101), type=("SCT", "10200004", "Liver")),
    "spleen": dict(colour=(157, 108, 162), type=("SCT", "78961009", "Spleen")),
    "pancreas": dict(colour=(249, 180, 111), type=("SCT", "15776009", "Pancreas")),
}

# Fallback palette for names outside the table (distinct, mid-saturation hues, none equal to a known colour).
_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 174, 128), (241, 214, 145), (111, 184, 210), (216, 101, 79), (144, 238, 144),
    (220, 245, 20), (78, 63, 0), (255, 250, 220), (230, 220, 70), (200, 200, 235),
)


def structure_info(name: str, label: int, fallback_index: int | None = None) -> StructureInfo:
    """The :class:`StructureInfo` for ``name`` with label value ``label``.

    Args:
        name: structure name; the five default names have SNOMED CT codes, others get "Tissue".
        label: label value, a positive integer.
        fallback_index: which palette colour an unknown name gets (default: ``label - 1``).

    Raises:
        ValueError: empty name, a name holding a character that Slicer's tag format reserves (``|``, ``~``,
            ``^``, ``:``, ``,``), or a label value below 1.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"expected a non-empty structure name, got {name!r}")
    bad = sorted({c for c in name if c in "|~^:,\n\r\t"})
    if bad:
        raise ValueError(f"structure name {name!r} holds characters reserved by Slicer's tag format: {bad}")
    if int(label) != label or label < 1:
        raise ValueError(f"expected a positive integer label value for {name!r}, got {label!r}")
    known = _KNOWN.get(name)
    if known is not None:
        return StructureInfo(name=name, label=int(label), **known)
    index = (int(label) - 1) if fallback_index is None else fallback_index
    return StructureInfo(name=name, label=int(label), colour=_PALETTE[index % len(_PALETTE)])


def structure_table(
    structures: Sequence[str] | Sequence[StructureInfo] | Mapping[str, int] | None = None,
) -> list[StructureInfo]:
    """Normalise any accepted description of the structure set to a list of :class:`StructureInfo`.

    Args:
        structures: ``None`` (the five default structures, labels 1..5); names (labels 1..S in order);
            a mapping ``name -> label``; or :class:`StructureInfo` objects (returned as they are).

    Returns:
        one entry per structure, in the given order.

    Raises:
        ValueError: duplicate names or label values, or an invalid name / label (see :func:`structure_info`).
    """
    if structures is None:
        structures = DEFAULT_STRUCTURE_NAMES
    if isinstance(structures, str):
        raise ValueError(f"expected a sequence of structure names, got the single string {structures!r}")
    if isinstance(structures, Mapping):
        table = [structure_info(n, lab, fallback_index=i) for i, (n, lab) in enumerate(structures.items())]
    else:
        table = [
            s if isinstance(s, StructureInfo) else structure_info(s, i + 1) for i, s in enumerate(structures)
        ]
    if not table:
        raise ValueError("expected at least one structure, got an empty structure list")
    names = [s.name for s in table]
    labels = [s.label for s in table]
    if len(set(names)) != len(names):
        raise ValueError(f"expected unique structure names, got {names}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"expected unique label values, got {labels}")
    return table


def structure_colours(structures: Sequence[str] | Mapping[str, int] | None = None) -> dict[str, tuple[int, int, int]]:
    """``name -> (R, G, B)`` (0..255) for the structure set (default: the five SADAAn structures)."""
    return {s.name: s.colour for s in structure_table(structures)}


def terminology_dict(info: StructureInfo) -> dict[str, object]:
    """The terminology entry in slicerio's dict form (``read_segmentation()["segments"][i]["terminology"]``)."""
    entry: dict[str, object] = {
        "contextName": SLICER_CATEGORY_TYPE_CONTEXT,
        "category": list(info.category),
        "type": list(info.type),
    }
    if info.type_modifier is not None:
        entry["typeModifier"] = list(info.type_modifier)
    entry["anatomicContextName"] = SLICER_ANATOMIC_CONTEXT
    return entry


def terminology_string(info: StructureInfo) -> str:
    """Slicer's ``TerminologyEntry`` tag value, seven ``~``-separated fields.

    Example (left kidney)::

        Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure
        ~SCT^64033007^Kidney~SCT^7771000^Left~Anatomic codes - DICOM master list~^^~^^
    """
    modifier = info.type_modifier or ("", "", "")
    return "~".join(
        [
            SLICER_CATEGORY_TYPE_CONTEXT,
            "^".join(info.category),
            "^".join(info.type),
            "^".join(modifier),
            SLICER_ANATOMIC_CONTEXT,
            "^^",
            "^^",
        ]
    )


StructuresLike = Union[Sequence[str], Sequence[StructureInfo], Mapping[str, int], None]


# ---------------------------------------------------------------------------------------------------- colour table
_TERMINOLOGY_PARTS = ("Category", "Type", "TypeModifier", "Region", "RegionModifier")
COLOUR_TABLE_COLUMNS: tuple[str, ...] = ("LabelValue", "Name", "Color_R", "Color_G", "Color_B", "Color_A") + tuple(
    f"{part}_{field}" for part in _TERMINOLOGY_PARTS for field in ("CodingScheme", "CodeValue", "CodeMeaning")
)


def write_colour_table(structures: StructuresLike, path: str | os.PathLike, opacity: int = 255) -> str:
    """Write the colour table CSV for a structure set, atomically.

    Args:
        structures: the structure set (``None`` for the five SADAAn structures).
        path: ``.csv`` output.
        opacity: ``Color_A`` for every row (0..255).

    Returns:
        ``str(path)``.

    Raises:
        ValueError: an opacity outside 0..255, or an invalid structure set (see :func:`structure_table`).
    """
    if not 0 <= int(opacity) <= 255:
        raise ValueError(f"expected opacity in 0..255, got {opacity}")
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLOUR_TABLE_COLUMNS)
        for s in structure_table(structures):
            modifier = s.type_modifier or ("", "", "")
            w.writerow(
                [s.label, s.name, *s.colour, int(opacity), *s.category, *s.type, *modifier, "", "", "", "", "", ""]
            )
    return str(path)


def read_colour_table(path: str | os.PathLike) -> list[dict[str, str | int]]:
    """Rows of a colour table CSV as dicts; ``LabelValue`` and the colour components as ints."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("LabelValue", "Color_R", "Color_G", "Color_B", "Color_A"):
            r[k] = int(r[k])  # type: ignore[assignment]
    return rows  # type: ignore[return-value]
