"""PNG overview of trunk phantoms: coronal, sagittal and axial slices with label outlines, one row per case."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..phantoms import Phantom
from ..preview import RowLayout, View, _centre_index, plot_rows, to_ras

__all__ = ["plot_trunk_overview", "overview_cases"]

_TRUNK_LAYOUT = RowLayout(width=10.5, row_height=3.3, font_size=7, line_width=0.7, legend_bottom=0.02, dpi=80)


def plot_trunk_overview(
    phantoms: Phantom | Sequence[Phantom], path: str | os.PathLike, window: tuple[float, float] = (-175.0, 250.0)
) -> Path:
    """One row per phantom: coronal and sagittal slices through the labelled structures (or the volume's centre)
    and an axial slice at their centroid; label outlines coloured per structure; the row's title names the field of
    view, scenario, phase, intensity mode and the absent structures.

    Args:
        phantoms: one phantom or several (trunk or abdominal ones).
        path: PNG file to write.
        window: HU display window (min, max); cases with ``intensity_mode="random"`` are shown with their own
            1st-99th percentile window.

    Returns:
        The PNG path.
    """

    def row(p: Phantom) -> tuple[list[View], tuple[float, float], str]:
        image, (sx, sy, sz) = to_ras(p.image, p.affine)
        label, _ = to_ras(p.label, p.affine)
        labelled = label > 0
        xi = image.shape[0] // 2
        yi = _centre_index(labelled, 1, int(image.shape[1] * 0.45))
        kidneys = np.isin(label, [v for n, v in p.structures.items() if n in ("left_kidney", "right_kidney")])
        zi = _centre_index(kidneys if kidneys.any() else labelled, 2, image.shape[2] // 2)
        views = [
            (image[:, yi, :].T[::-1, ::-1], label[:, yi, :].T[::-1, ::-1], sz / sx, f"coronal y={yi}"),
            (image[xi, :, :].T[::-1, :], label[xi, :, :].T[::-1, :], sz / sy, f"sagittal x={xi} (anterior right)"),
            (image[:, :, zi].T[::-1, ::-1], label[:, :, zi].T[::-1, ::-1], sy / sx, f"axial z={zi}"),
        ]
        lo, hi = window
        if getattr(p, "intensity_mode", "ct") == "random":
            lo, hi = (float(v) for v in np.percentile(p.image, [1, 99]))
        absent = [n for n, v in p.present.items() if not v]
        fov = getattr(p, "field_of_view", "abdomen (old generator)")
        ylabel = (
            f"{fov} | {p.scenario} (seed {p.seed})\n{getattr(p, 'phase', '')} {getattr(p, 'intensity_mode', 'ct')} "
            f"{'x'.join(map(str, p.shape))}\nabsent: {', '.join(absent) or 'none'}"
        )
        return views, (lo, hi), ylabel

    return plot_rows(phantoms, path, row, _TRUNK_LAYOUT)


def overview_cases(seed: int = 1) -> list[Phantom]:
    """The cases of the documentation figure: one normal case per field of view, then the surgical scenarios in an
    abdominal view, then one domain-randomised case."""
    from .generator import FIELDS_OF_VIEW, generate_trunk_phantom

    cases = [generate_trunk_phantom("normal", seed, field_of_view=f, orientation="LPS") for f in FIELDS_OF_VIEW]
    for scenario, phase in (("nephrectomy_left", "portal_venous"), ("splenectomy", "arterial"),
                            ("pancreatectomy", "non_contrast")):
        cases.append(generate_trunk_phantom(scenario, seed, field_of_view="abdomen", phase=phase, orientation="LPS"))
    cases.append(generate_trunk_phantom("normal", seed, field_of_view="abdomen", intensity_mode="random",
                                        orientation="LPS"))
    return cases
