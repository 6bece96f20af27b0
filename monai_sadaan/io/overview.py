"""PNG overview of one case, rendered from the files the writers produced: three orthogonal CT slices with the
label map overlaid in the colour table's colours, and the presence table (absent structures in red).

It reads the case folder (``<case>_labels.nii.gz``, ``<case>_colour_table.csv``, ``<case>_presence.json``) and
the input image, so the picture shows what was written, not what was held in memory.

Command line::

    # a case the bundle wrote
    python -m monai_sadaan.io.overview --image in/ct.nii.gz --case_dir out/ct --output ct_overview.png
    # a synthetic phantom run through the real bundle (needs a trained checkpoint in the bundle)
    python -m monai_sadaan.io.overview --phantom nephrectomy_right --seed 3 --bundle bundles/... --workdir W \
        --output docs/figures/slicer_overview.png
    # the same phantom's ground truth written by SADAAnCaseWriter (presence 1 / 0): a reference, not a prediction
    python -m monai_sadaan.io.overview --phantom nephrectomy_right --seed 3 --workdir W --output ref.png
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from monai_sadaan.io.structures import read_colour_table
from monai_sadaan.io.presence import CALL_TEXT, read_presence_report
from monai_glue import atomic_write_with

__all__ = ["render_case_overview", "main"]

ABDOMEN_WINDOW = (-160.0, 240.0)  # HU: level 40, width 400


def _canonical(img: nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray]:
    c = nib.as_closest_canonical(img)
    return np.asarray(c.dataobj), np.asarray(c.header.get_zooms()[:3], dtype=float)


def _best_slice(labels: np.ndarray, axis: int) -> int:
    """Index along ``axis`` of the slice showing the most structures (then the largest labelled area)."""
    moved = np.moveaxis(labels, axis, 0).reshape(labels.shape[axis], -1)
    if not moved.any():
        return labels.shape[axis] // 2
    top = int(moved.max())
    distinct = np.stack([(moved == v).any(axis=1) for v in range(1, top + 1)]).sum(axis=0)
    area = (moved > 0).sum(axis=1)
    return int(np.lexsort((area, distinct))[-1])


def render_case_overview(
    image_path: str | os.PathLike,
    case_dir: str | os.PathLike,
    output_path: str | os.PathLike,
    title: str | None = None,
    window: tuple[float, float] = ABDOMEN_WINDOW,
    alpha: float = 0.45,
    dpi: int = 110,
) -> str:
    """Render the overview PNG of one written case.

    Args:
        image_path: the case's input image (NIfTI), the geometry the outputs were written in.
        case_dir: the case's output folder (written by :class:`~monai_sadaan.io.SADAAnCaseWriter`).
        output_path: ``.png`` file, written atomically.
        title: figure title (default: the case name).
        window: display window in HU (default: abdomen, level 40 / width 400).
        alpha: overlay opacity.
        dpi: resolution.

    Returns:
        ``str(output_path)``.

    Raises:
        ValueError: the image and the label map differ in shape or geometry.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    case_dir = Path(case_dir)
    reports = sorted(case_dir.glob("*_presence.json"))
    if len(reports) != 1:
        raise FileNotFoundError(f"expected one '*_presence.json' in {case_dir}, found {[p.name for p in reports]}")
    doc = read_presence_report(reports[0])
    files = doc["files"]
    image = nib.load(str(image_path))
    labels = nib.load(str(case_dir / files["label_map"]))
    if image.shape[:3] != labels.shape or not np.allclose(image.affine, labels.affine, atol=1e-3):
        raise ValueError(
            f"expected the label map on the image's grid, got image {image.shape} / label map {labels.shape} with "
            f"affines\n{image.affine}\n{labels.affine}"
        )
    ct, zooms = _canonical(image)
    lm, _ = _canonical(labels)
    if ct.ndim == 4:
        ct = ct[..., 0]
    colours = {r["LabelValue"]: (r["Color_R"] / 255, r["Color_G"] / 255, r["Color_B"] / 255) for r in
               read_colour_table(case_dir / files["colour_table"])}  # fmt: skip
    top = int(max(colours, default=0))
    lut = np.zeros((top + 1, 4))
    for value, rgb in colours.items():
        lut[value] = (*rgb, 1.0)
    cmap = ListedColormap(lut)

    x, y, z = (_best_slice(lm, axis) for axis in range(3))
    # canonical RAS arrays; radiological display: patient's right on the screen's left, anterior / superior up
    views = [
        ("axial", ct[:, :, z], lm[:, :, z], zooms[1] / zooms[0], ("R", "L", "P", "A")),
        ("coronal", ct[:, y, :], lm[:, y, :], zooms[2] / zooms[0], ("R", "L", "I", "S")),
        ("sagittal", ct[x, :, :], lm[x, :, :], zooms[2] / zooms[1], ("A", "P", "I", "S")),
    ]
    fig = plt.figure(figsize=(13.5, 6.4))
    grid = fig.add_gridspec(2, 3, height_ratios=[3.2, 1.5], hspace=0.12, wspace=0.05)
    for col, (name, ct2, lm2, aspect, (left, right, bottom, topl)) in enumerate(views):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(ct2.T, cmap="gray", vmin=window[0], vmax=window[1], origin="lower", aspect=aspect,
                  interpolation="nearest")  # fmt: skip
        masked = np.ma.masked_equal(lm2.T.astype(int), 0)
        ax.imshow(masked, cmap=cmap, vmin=0, vmax=top, alpha=alpha, origin="lower", aspect=aspect,
                  interpolation="nearest")  # fmt: skip
        ax.invert_xaxis()  # first display axis runs R->L (axial, coronal) or A->P (sagittal)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=10)
        kw = dict(transform=ax.transAxes, color="yellow", fontsize=9, fontweight="bold")
        ax.text(0.01, 0.5, left, ha="left", va="center", **kw)
        ax.text(0.99, 0.5, right, ha="right", va="center", **kw)
        ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **kw)
        ax.text(0.5, 0.99, topl, ha="center", va="top", **kw)

    rows = doc["structures"]
    table_ax = fig.add_subplot(grid[1, :])
    table_ax.axis("off")
    cells = [
        [r.structure, CALL_TEXT[r.present], f"{r.presence_probability:.3f}", f"{r.confidence:.3f}",
         f"{r.volume_ml:.1f}"]
        for r in rows
    ]  # fmt: skip
    table = table_ax.table(
        cellText=cells,
        colLabels=["structure", "call", "presence probability", "confidence", "volume (ml)"],
        loc="center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.25)
    for i, r in enumerate(rows, start=1):
        table[i, 0].set_facecolor((*colours.get(r.label, (1, 1, 1)), 0.55))
        if r.present is not True:
            for j in range(5):
                table[i, j].get_text().set_color("red")
                table[i, j].get_text().set_fontweight("bold")
    fig.suptitle(title or f"SADAAn outputs: {doc['case']}", x=0.02, ha="left", fontsize=11)
    with atomic_write_with(output_path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return str(output_path)


def _phantom_case(scenario: str, seed: int, workdir: Path, bundle: str | None, python: str | None) -> tuple[Path, Path, str]:
    """Write a phantom's image, then either run the bundle on it or write its ground truth with the case writer."""
    from monai_sadaan.data import generate_phantom, save_volume
    from monai_sadaan.io.case_writer import SADAAnCaseWriter

    phantom = generate_phantom(scenario, seed=seed)
    case = f"phantom_{scenario}_{seed}"
    input_dir = workdir / "input"
    input_dir.mkdir(parents=True, exist_ok=True)
    image_path = save_volume(phantom.image, phantom.affine, input_dir / f"{case}.nii.gz")
    if bundle is not None:
        from monai_sadaan.slicer.core import run_inference

        results = run_inference(bundle, input_dir, workdir / "output", python=python or sys.executable)
        return Path(image_path), results[case].case_dir, f"{case}: SADAAn bundle prediction"
    names = list(phantom.structures)
    presence = {
        "presence_probability": [1.0 if phantom.present[n] else 0.0 for n in names],
        "confidence": [1.0] * len(names),
        "present": [phantom.present[n] for n in names],
    }
    files = SADAAnCaseWriter(workdir / "output", structures=phantom.structures)(
        case, phantom.label, phantom.affine, presence
    )
    title = f"{case}: ground truth written by SADAAnCaseWriter (presence 1/0 by construction; not a model prediction)"
    return Path(image_path), Path(files["label_map"]).parent, title


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--image", help="input image of a written case")
    parser.add_argument("--case_dir", help="the case's output folder")
    parser.add_argument("--phantom", help="scenario of a synthetic phantom to render instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="outputs/overview", help="where the phantom case is written")
    parser.add_argument("--bundle", help="run this bundle on the phantom (otherwise its ground truth is written)")
    parser.add_argument("--python", help="interpreter for the bundle run (default: this one)")
    args = parser.parse_args(argv)
    if args.phantom:
        image, case_dir, title = _phantom_case(args.phantom, args.seed, Path(args.workdir), args.bundle, args.python)
    elif args.image and args.case_dir:
        image, case_dir, title = Path(args.image), Path(args.case_dir), None
    else:
        parser.error("give --image and --case_dir, or --phantom")
    print(render_case_overview(image, case_dir, args.output, title=title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
