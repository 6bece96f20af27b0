"""PNG overview of phantoms: axial and coronal slices with the label map outlined and the presence truth listed.

Slices are shown the radiological way (patient's right on the viewer's left, anterior up, superior up) whatever the
orientation of the voxel axes, and with the voxels' true aspect ratio.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monai_glue import atomic_write_with
from .phantoms import Phantom

__all__ = ["View", "RowLayout", "to_ras", "plot_rows", "plot_phantom_overview", "main"]

_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990")

View = tuple[np.ndarray, np.ndarray, float, str]
"""One panel: the image slice and the label slice (display order), the aspect ratio, and the panel's title."""


@dataclass(frozen=True)
class RowLayout:
    """Sizes of a figure drawn by :func:`plot_rows`.

    Attributes:
        width: figure width (inches).
        row_height: height of one row (inches).
        font_size: panel titles and row labels (points).
        line_width: label outlines (points).
        legend_bottom: fraction of the figure's height kept for the legend.
        dpi: resolution of the PNG.
        mark_right: write an "R" on the patient's right of every panel.
    """

    width: float
    row_height: float
    font_size: float
    line_width: float
    legend_bottom: float
    dpi: int
    mark_right: bool = False


def to_ras(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Re-lay a volume in RAS voxel order (axis 0 towards Right, 1 Anterior, 2 Superior).

    Returns:
        The array and its spacing along x, y, z (mm).
    """
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))
    spacing = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    ras_spacing = [0.0, 0.0, 0.0]
    for j, (axis, _) in enumerate(ornt):
        ras_spacing[int(axis)] = float(spacing[j])
    return nib.orientations.apply_orientation(array, transform), tuple(ras_spacing)  # type: ignore[return-value]


def _centre_index(mask: np.ndarray, axis: int, default: int) -> int:
    if not mask.any():
        return default
    other = tuple(a for a in range(3) if a != axis)
    return int(round(float(np.average(np.arange(mask.shape[axis]), weights=mask.sum(axis=other)))))


def plot_rows(
    phantoms: Phantom | Sequence[Phantom],
    path: str | os.PathLike,
    row: Callable[[Phantom], tuple[list[View], tuple[float, float], str]],
    layout: RowLayout,
) -> Path:
    """Draw one row of three panels per phantom, label outlines coloured per structure, a legend of the first
    phantom's structures at the bottom, and write the PNG atomically.

    Args:
        phantoms: one phantom or several.
        path: PNG file to write.
        row: a phantom's three panels (:data:`View`), its display window (HU min, max) and its row label.
        layout: sizes of the figure.

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.lines
    import matplotlib.pyplot as plt

    items = [phantoms] if isinstance(phantoms, Phantom) else list(phantoms)
    if not items:
        raise ValueError("expected at least one phantom to draw, got none")
    fig, axes = plt.subplots(len(items), 3, figsize=(layout.width, layout.row_height * len(items)), squeeze=False)
    for panels, p in zip(axes, items):
        views, (lo, hi), ylabel = row(p)
        for ax, (img, lab, aspect, name) in zip(panels, views):
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
            for i, (_, value) in enumerate(sorted(p.structures.items(), key=lambda kv: kv[1])):
                m = lab == value
                if m.any():
                    colour = _COLOURS[i % len(_COLOURS)]
                    ax.contour(m.astype(np.float32), levels=[0.5], colors=[colour], linewidths=layout.line_width)
            ax.set_title(name, fontsize=layout.font_size)
            ax.set_xticks([])
            ax.set_yticks([])
            if layout.mark_right:
                ax.text(0.01, 0.5, "R", color="yellow", transform=ax.transAxes, fontsize=8, va="center")
        panels[0].set_ylabel(ylabel, fontsize=layout.font_size)
    handles = [
        matplotlib.lines.Line2D([], [], color=_COLOURS[i % len(_COLOURS)], label=n)
        for i, (n, _) in enumerate(sorted(items[0].structures.items(), key=lambda kv: kv[1]))
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, layout.legend_bottom, 1, 1))
    path = Path(path)
    with atomic_write_with(path) as tmp:
        fig.savefig(tmp, dpi=layout.dpi, format="png")
    plt.close(fig)
    return path


_OVERVIEW_LAYOUT = RowLayout(width=11, row_height=3.6, font_size=8, line_width=0.8, legend_bottom=0.03, dpi=90,
                             mark_right=True)


def plot_phantom_overview(
    phantoms: Phantom | Sequence[Phantom], path: str | os.PathLike, window: tuple[float, float] = (-175.0, 250.0)
) -> Path:
    """Draw one row per phantom: axial slice through the kidneys, axial slice through liver and spleen, coronal slice
    through the kidneys; label outlines coloured per structure; the title lists scenario, grid and absent structures.

    Args:
        phantoms: one phantom or several.
        path: PNG file to write (atomically).
        window: HU display window (min, max).

    Returns:
        The PNG path.
    """

    def row(p: Phantom) -> tuple[list[View], tuple[float, float], str]:
        image, (sx, sy, sz) = to_ras(p.image, p.affine)
        label, _ = to_ras(p.label, p.affine)
        values = dict(p.structures)
        kidneys = np.isin(label, [values[n] for n in ("left_kidney", "right_kidney") if n in values])
        upper = np.isin(label, [values[n] for n in ("liver", "spleen") if n in values])
        z_kidney = _centre_index(kidneys, 2, image.shape[2] // 3)
        z_upper = _centre_index(upper, 2, 2 * image.shape[2] // 3)
        y_kidney = _centre_index(kidneys, 1, image.shape[1] // 3)
        # radiological display: rows from anterior (or superior) down, columns from patient right to left
        views = [
            (image[:, :, z_kidney].T[::-1, ::-1], label[:, :, z_kidney].T[::-1, ::-1], sy / sx, f"axial z={z_kidney}"),
            (image[:, :, z_upper].T[::-1, ::-1], label[:, :, z_upper].T[::-1, ::-1], sy / sx, f"axial z={z_upper}"),
            (image[:, y_kidney, :].T[::-1, ::-1], label[:, y_kidney, :].T[::-1, ::-1], sz / sx, f"coronal y={y_kidney}"),
        ]
        absent = [n for n, v in p.present.items() if not v]
        ylabel = (
            f"{p.scenario} (seed {p.seed})\n{p.orientation} {'x'.join(map(str, p.shape))}\n"
            f"absent: {', '.join(absent) or 'none'}\ncut: {', '.join(p.truncated) or 'none'}"
        )
        return views, window, ylabel

    return plot_rows(phantoms, path, row, _OVERVIEW_LAYOUT)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m monai_sadaan.data.preview --output overview.png [--seed S] [--scenarios ...]``: one row per
    scenario; with ``--generator trunk``: one whole-trunk case per field of view, the surgical scenarios in an
    abdominal view and one domain-randomised case (:func:`~monai_sadaan.data.trunk.preview.overview_cases`)."""
    import argparse

    from .phantoms import generate_phantom
    from .scenarios import SCENARIOS

    parser = argparse.ArgumentParser(prog="python -m monai_sadaan.data.preview", description=plot_phantom_overview.__doc__)
    parser.add_argument("--output", required=True, help="PNG file to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--generator", choices=("abdomen", "trunk"), default="abdomen",
                        help="abdomen: one row per scenario (default); trunk: one row per field of view and scenario")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed: expected a non-negative integer, got {args.seed}")
    if args.generator == "trunk":
        from .trunk.preview import overview_cases, plot_trunk_overview

        path = plot_trunk_overview(overview_cases(args.seed), args.output)
        print(f"wrote {path}")
        return 0
    path = plot_phantom_overview([generate_phantom(s, args.seed) for s in args.scenarios], args.output)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
