"""3D Slicer CSV colour table for the NIfTI label map.

Columns: ``LabelValue, Name, Color_R, Color_G, Color_B, Color_A`` (integers 0..255) followed by Slicer's
terminology columns ``Category_*``, ``Type_*``, ``TypeModifier_*``, ``Region_*``, ``RegionModifier_*`` (each
``CodingScheme, CodeValue, CodeMeaning``). Label 0 (background) is left out, as Slicer recommends. Load it in
Slicer with the label map and pick it as the label map's colour node, or give it to any viewer that reads CSV.
"""

from __future__ import annotations

import csv
import os

from monai_sadaan.io.structures import StructuresLike, structure_table
from monai_glue import atomic_open

__all__ = ["COLOUR_TABLE_COLUMNS", "write_colour_table", "read_colour_table"]

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
