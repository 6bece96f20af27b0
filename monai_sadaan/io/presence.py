"""The presence report: one row per structure with the present/absent call, its probability, confidence and volume.

Written as JSON (machine-readable, also read back by the Slicer module) and CSV (for a spreadsheet), with the
columns ``structure, label, present, presence_probability, confidence, volume_ml``. ``volume_ml`` is always computed
here from the label map and the voxel spacing, never taken from the caller.

The JSON also names the case's ``source`` input file (``null`` when the caller gave none), the ``input_flags``
found in that input (``[{"code", "message"}]``) and a top-level ``warnings`` list: one line per flag, and one per
structure called present of which no voxel is painted (also listed as ``present_without_voxels``). When a source or
flags are given, the CSV carries them in two more columns, ``source`` and ``input_flags`` (the codes, separated by
``;``).

On an image that is not CT (a flag of :data:`~monai_sadaan.data.image_folder.NOT_CT_FLAG_CODES`: blank, no air,
8-bit, far outside CT's range) no call is made: :func:`withhold_presence_calls` sets every ``present`` to ``None``
(JSON ``null``, CSV ``withheld``), empties the label map and says why in ``calls_withheld``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from monai_sadaan.data.geometry import voxel_volume_ml
from monai_sadaan.io.nifti import label_counts, labelmap_and_affine, to_numpy
from monai_sadaan.io.structures import StructuresLike, structure_table
from monai_sadaan.networks.presence import call_presence
from monai_glue import atomic_open

__all__ = [
    "CALL_TEXT",
    "PRESENT_VALUE",
    "PRESENCE_COLUMNS",
    "PRESENCE_FORMAT",
    "StructurePresence",
    "presence_rows",
    "present_without_voxels",
    "report_findings",
    "withheld_call_reasons",
    "withhold_presence_calls",
    "write_presence_report",
    "read_presence_report",
]

PRESENCE_COLUMNS: tuple[str, ...] = (
    "structure",
    "label",
    "present",
    "presence_probability",
    "confidence",
    "volume_ml",
)
PRESENCE_FORMAT = "sadaan-presence/1"

CALL_TEXT: dict[bool | None, str] = {True: "present", False: "ABSENT", None: "withheld: not CT"}
"""How a call reads in tables for people (the absent call stands out; ``None`` is a withheld call)."""

PRESENT_VALUE: dict[bool | None, str] = {True: "true", False: "false", None: "withheld"}
"""How a call is written where the value is text (the CSV's ``present`` column, the Slicer segment tag)."""


@dataclass(frozen=True)
class StructurePresence:
    """One row of the presence report.

    Args:
        structure: structure name.
        label: its label value in the label map.
        present: the model's call; ``None`` when the call is withheld (the input is not CT, see
            :func:`withhold_presence_calls`).
        presence_probability: P(present) from the absence-detection head, in [0, 1].
        confidence: the confidence head's output, in [0, 1].
        volume_ml: volume of the structure's voxels in the written label map (millilitres).
    """

    structure: str
    label: int
    present: bool | None
    presence_probability: float
    confidence: float
    volume_ml: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unit_interval(value: Any, what: str, name: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError(f"expected {what} of {name!r} in [0, 1], got {value!r}")
    return v


def _vector(x: Any, n: int, what: str) -> np.ndarray:
    arr = to_numpy(x).astype(np.float64)
    if arr.ndim == 2 and arr.shape[0] == 1:  # [1, S] batch of one
        arr = arr[0]
    if arr.shape != (n,):
        raise ValueError(f"expected {what} of shape [{n}] (one value per structure), got shape {tuple(arr.shape)}")
    return arr


def presence_rows(
    labelmap: Any,
    affine: Any | None,
    presence: Sequence[StructurePresence] | Sequence[Mapping[str, Any]] | Mapping[str, Any],
    structures: StructuresLike = None,
    threshold: float = 0.5,
) -> list[StructurePresence]:
    """Build the presence report rows, computing each structure's volume from the label map.

    Args:
        labelmap: [X, Y, Z] or [1, X, Y, Z] label map (numpy / torch / MetaTensor).
        affine: voxel-to-RAS affine, or ``None`` for a MetaTensor label map.
        presence: either one mapping per structure, in ``structures`` order or matched by name, with keys
            ``presence_probability``, ``confidence``, optionally ``present`` and ``structure`` (or ``name``); or
            one mapping of per-structure vectors ``{"presence_probability": [S], "confidence": [S],
            "present": [S] (optional)}`` as the inferer returns them.
        structures: the structure set (default: the five SADAAn structures, labels 1..5).
        threshold: presence probability at or above which a structure is called present when ``present`` is
            not given (rows that are :class:`StructurePresence` keep theirs, a withheld ``None`` included).

    Returns:
        one :class:`StructurePresence` per structure, in ``structures`` order.

    Raises:
        ValueError: a missing or extra structure, a probability outside [0, 1], vectors of the wrong length.
    """
    table = structure_table(structures)
    lm, aff = labelmap_and_affine(labelmap, affine)
    voxel_ml = voxel_volume_ml(aff)
    counts = label_counts(lm, minlength=max(s.label for s in table) + 1)

    n = len(table)
    if isinstance(presence, Mapping):
        probs = _vector(presence["presence_probability"], n, "presence_probability")
        conf = _vector(presence["confidence"], n, "confidence")
        present = presence.get("present")
        calls = call_presence(probs, threshold, None if present is None else _vector(present, n, "present")).numpy()
        per_structure: list[Mapping[str, Any]] = [
            {"presence_probability": probs[i], "confidence": conf[i], "present": bool(calls[i])} for i in range(n)
        ]
    else:
        items = [dict(r.as_dict(), _row=True) if isinstance(r, StructurePresence) else r for r in presence]
        named = {str(r.get("structure", r.get("name"))): r for r in items if ("structure" in r or "name" in r)}
        if len(named) == len(items):
            missing = [s.name for s in table if s.name not in named]
            extra = sorted(set(named) - {s.name for s in table})
            if missing or extra:
                raise ValueError(
                    f"expected presence rows for structures {[s.name for s in table]}, "
                    f"got {list(named)} (missing {missing}, unknown {extra})"
                )
            per_structure = [named[s.name] for s in table]
        elif len(items) == n:
            per_structure = items
        else:
            raise ValueError(f"expected {n} presence rows (one per structure), got {len(items)}")

    rows = []
    for info, row in zip(table, per_structure):
        prob = _unit_interval(row["presence_probability"], "presence_probability", info.name)
        conf = _unit_interval(row["confidence"], "confidence", info.name)
        if row.get("_row") and row["present"] is None:  # a withheld call stays withheld
            present = None
        else:
            present = bool(row["present"]) if row.get("present") is not None else prob >= threshold
        rows.append(
            StructurePresence(
                structure=info.name,
                label=info.label,
                present=present,
                presence_probability=prob,
                confidence=conf,
                volume_ml=float(counts[info.label]) * voxel_ml if info.label < len(counts) else 0.0,
            )
        )
    return rows


def withheld_call_reasons(input_flags: Sequence[Mapping[str, str]] | None) -> list[str]:
    """The codes among ``input_flags`` that say the image is not CT
    (:data:`~monai_sadaan.data.image_folder.NOT_CT_FLAG_CODES`); empty when the calls stand."""
    from monai_sadaan.data.image_folder import NOT_CT_FLAG_CODES

    return [str(f["code"]) for f in (input_flags or []) if str(f["code"]) in NOT_CT_FLAG_CODES]


def present_without_voxels(rows: Sequence[StructurePresence]) -> list[str]:
    """Names of the structures called present of which the label map holds no voxel.

    The network's presence head and its masks are separate outputs: a structure can be called present (probability
    over the threshold) while none of its voxels survives in the label map. Such a call says "there" without saying
    where; the report names it instead of showing a present structure of 0 mL as if it were measured.
    """
    return [r.structure for r in rows if r.present is True and r.volume_ml == 0]


def withhold_presence_calls(
    labelmap: np.ndarray, rows: Sequence[StructurePresence], input_flags: Sequence[Mapping[str, str]] | None
) -> tuple[np.ndarray, list[StructurePresence]]:
    """No presence call and no painted voxel on an image that is not CT.

    When ``input_flags`` hold a code of :data:`~monai_sadaan.data.image_folder.NOT_CT_FLAG_CODES`, the network's
    calls on the image mean nothing: every row's ``present`` becomes ``None`` and its ``volume_ml`` 0, and the label
    map becomes all background (same shape and dtype). The probabilities and confidences stay, as the network's raw
    outputs. Otherwise both come back unchanged.

    Args:
        labelmap: the label map (any shape, numpy).
        rows: the presence rows of that label map (:func:`presence_rows`).
        input_flags: ``[{"code", "message"}]`` findings about the input.

    Returns:
        ``(labelmap, rows)``.
    """
    if not withheld_call_reasons(input_flags):
        return labelmap, list(rows)
    return np.zeros_like(labelmap), _withheld(rows)


def _withheld(rows: Sequence[StructurePresence]) -> list[StructurePresence]:
    """``rows`` with every call withheld (``present`` ``None``) and nothing painted (``volume_ml`` 0)."""
    return [StructurePresence(r.structure, r.label, None, r.presence_probability, r.confidence, 0.0) for r in rows]


def _as_presence(rows: Sequence[StructurePresence] | Sequence[Mapping[str, Any]]) -> list[StructurePresence]:
    out = []
    for r in rows:
        if isinstance(r, StructurePresence):
            out.append(r)
            continue
        missing = [c for c in PRESENCE_COLUMNS if c not in r]
        if missing:
            raise ValueError(f"expected presence rows with columns {list(PRESENCE_COLUMNS)}, a row lacks {missing}: {dict(r)}")
        out.append(StructurePresence(**{c: r[c] for c in PRESENCE_COLUMNS}))
    return out


def write_presence_report(
    presence: Sequence[StructurePresence] | Sequence[Mapping[str, Any]],
    json_path: str | os.PathLike | None,
    csv_path: str | os.PathLike | None = None,
    case_name: str | None = None,
    files: Mapping[str, str] | None = None,
    source: str | os.PathLike | None = None,
    input_flags: Sequence[Mapping[str, str]] | None = None,
) -> None:
    """Write the presence report as JSON and/or CSV, each atomically.

    Args:
        presence: rows from :func:`presence_rows` (or mappings with all of :data:`PRESENCE_COLUMNS`).
        json_path: JSON output (``None`` to skip): ``{"format", "case", "source", "input_flags", "warnings",
            "calls_withheld", "present_without_voxels", "columns", "structures": [rows], "files": {...}}``;
            ``calls_withheld`` lists the flags for which the calls were withheld (:func:`withheld_call_reasons`),
            empty when they stand; ``present_without_voxels`` the structures called present with an empty mask
            (:func:`present_without_voxels`), each also a line of ``warnings``.
        csv_path: CSV output (``None`` to skip), header :data:`PRESENCE_COLUMNS`, ``present`` as ``true``/``false``
            (``withheld`` for a withheld call); plus ``source, input_flags`` columns when either is given.
        case_name: stored in the JSON as ``case``.
        files: names of the case's other outputs relative to the JSON's folder, stored as ``files``
            (the Slicer module reads them from there).
        source: the input file (or DICOM folder) the case came from, stored as ``source``.
        input_flags: findings about the input, ``[{"code": str, "message": str}]``, stored as ``input_flags`` and
            as ``warnings`` (``"code: message"`` lines).
    """
    rows = _as_presence(presence)
    flags = [{"code": str(f["code"]), "message": str(f["message"])} for f in (input_flags or [])]
    if withheld_call_reasons(flags):  # the report never carries a call its flags withhold
        rows = _withheld(rows)
    source_text = os.fspath(source) if source is not None else None
    if json_path is not None:
        doc = {
            "format": PRESENCE_FORMAT,
            "case": case_name,
            "source": source_text,
            "input_flags": flags,
            **report_findings(rows, flags),
            "columns": list(PRESENCE_COLUMNS),
            "structures": [r.as_dict() for r in rows],
            "files": dict(files or {}),
        }
        with atomic_open(json_path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    if csv_path is not None:
        with atomic_open(csv_path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            extra = source_text is not None or bool(flags)
            w.writerow([*PRESENCE_COLUMNS, *(("source", "input_flags") if extra else ())])
            for r in rows:
                w.writerow(
                    [
                        r.structure,
                        r.label,
                        PRESENT_VALUE[r.present],
                        f"{r.presence_probability:.6f}",
                        f"{r.confidence:.6f}",
                        f"{r.volume_ml:.4f}",
                        *((source_text or "", ";".join(f["code"] for f in flags)) if extra else ()),
                    ]
                )


def report_findings(
    rows: Sequence[StructurePresence], input_flags: Sequence[Mapping[str, str]] | None
) -> dict[str, list[str]]:
    """What a presence report says beside its rows (the bundle's JSON and MONAI Label's result params alike).

    Returns:
        ``{"warnings", "calls_withheld", "present_without_voxels"}``: one ``"code: message"`` line per input flag
        and one per structure called present without a painted voxel; the flags that withhold the calls
        (:func:`withheld_call_reasons`); those structures (:func:`present_without_voxels`).
    """
    flags = list(input_flags or [])
    by_name = {r.structure: r for r in rows}
    unlocalised = present_without_voxels(rows)
    return {
        "warnings": [f"{f['code']}: {f['message']}" for f in flags]
        + [
            f"present_without_voxels: {name} is called present (probability "
            f"{by_name[name].presence_probability:.3f}) but no voxel of it is in the label map; "
            "where it lies is not known"
            for name in unlocalised
        ],
        "calls_withheld": withheld_call_reasons(flags),
        "present_without_voxels": unlocalised,
    }


def read_presence_report(json_path: str | os.PathLike) -> dict[str, Any]:
    """Read a presence JSON written by :func:`write_presence_report`; rows become :class:`StructurePresence`.

    Raises:
        ValueError: not a SADAAn presence report.
    """
    with open(json_path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or doc.get("format") != PRESENCE_FORMAT:
        raise ValueError(f"expected a SADAAn presence report (format {PRESENCE_FORMAT!r}) in {json_path}")
    doc["structures"] = _as_presence(doc["structures"])
    return doc
