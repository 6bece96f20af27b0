"""PNG overview of trunk phantoms: coronal, sagittal and axial slices with label outlines, one row per case."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..phantoms import Phantom

__all__ = ["plot_trunk_overview", "overview_cases"]

_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4",
            "#469990")


def _to_ras(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))
    spacing = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    ras_spacing = [0.0, 0.0, 0.0]
    for j, (axis, _) in enumerate(ornt):
        ras_spacing[int(axis)] = float(spacing[j])
    return nib.orientations.apply_orientation(array, transform), tuple(ras_spacing)  # type: ignore[return-value]


def _centre(mask: np.ndarray, axis: int, default: int) -> int:
    if not mask.any():
        return default
    other = tuple(a for a in range(3) if a != axis)
    return int(round(float(np.average(np.arange(mask.shape[axis]), weights=mask.sum(axis=other)))))


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
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.lines
    import matplotlib.pyplot as plt

    items = [phantoms] if isinstance(phantoms, Phantom) else list(phantoms)
    if not items:
        raise ValueError("expected at least one phantom to draw, got none")
    fig, axes = plt.subplots(len(items), 3, figsize=(10.5, 3.3 * len(items)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.0, 1.0, 1.0]})
    for row, p in zip(axes, items):
        image, (sx, sy, sz) = _to_ras(p.image, p.affine)
        label, _ = _to_ras(p.label, p.affine)
        labelled = label > 0
        xi = image.shape[0] // 2
        yi = _centre(labelled, 1, int(image.shape[1] * 0.45))
        kidneys = np.isin(label, [v for n, v in p.structures.items() if n in ("left_kidney", "right_kidney")])
        zi = _centre(kidneys if kidneys.any() else labelled, 2, image.shape[2] // 2)
        views = [
            (image[:, yi, :].T[::-1, ::-1], label[:, yi, :].T[::-1, ::-1], sz / sx, f"coronal y={yi}"),
            (image[xi, :, :].T[::-1, :], label[xi, :, :].T[::-1, :], sz / sy, f"sagittal x={xi} (anterior right)"),
            (image[:, :, zi].T[::-1, ::-1], label[:, :, zi].T[::-1, ::-1], sy / sx, f"axial z={zi}"),
        ]
        lo, hi = window
        if getattr(p, "intensity_mode", "ct") == "random":
            lo, hi = (float(v) for v in np.percentile(p.image, [1, 99]))
        for ax, (img, lab, aspect, name) in zip(row, views):
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
            for i, (structure, value) in enumerate(sorted(p.structures.items(), key=lambda kv: kv[1])):
                m = lab == value
                if m.any():
                    ax.contour(m.astype(np.float32), levels=[0.5], colors=[_COLOURS[i % len(_COLOURS)]], linewidths=0.7)
            ax.set_title(name, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        absent = [n for n, v in p.present.items() if not v]
        fov = getattr(p, "field_of_view", "abdomen (old generator)")
        row[0].set_ylabel(
            f"{fov} | {p.scenario} (seed {p.seed})\n{getattr(p, 'phase', '')} {getattr(p, 'intensity_mode', 'ct')} "
            f"{'x'.join(map(str, p.shape))}\nabsent: {', '.join(absent) or 'none'}",
            fontsize=7,
        )
    handles = [
        matplotlib.lines.Line2D([], [], color=_COLOURS[i % len(_COLOURS)], label=n)
        for i, (n, _) in enumerate(sorted(items[0].structures.items(), key=lambda kv: kv[1]))
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=80, format="png")
    os.replace(tmp, path)
    plt.close(fig)
    return path


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
