"""How much of SADAAn's presence truth hangs on where the model's grid falls: sub-voxel shifts of the resampling.

    python benchmarks/sadaan_presence_truth_stability.py --data_dir DIR [--split test] [--shifts 8] [--seed 0]
        [--per_case EVAL_DIR/per_case.csv]

The bundle scores presence on its 48³ grid: a structure is present when at least ``min_voxels`` (8) voxels of the
label map resampled to the grid with ``"nearest-exact"`` carry its label. Where the grid's voxel centres fall
within the native voxels is an accident of the scan's size, so a structure cut at the edge of the field of view
can hold 9 grid voxels as resampled and 6 with the grid moved by a third of a voxel. This script resamples every
label map of ``DIR`` (``dataset.json`` from ``python -m monai_sadaan.data`` or a bundle run) the way the bundle
does, and again with the sampling positions moved by ``--shifts`` random offsets of up to half a grid voxel along
each axis, and prints per scenario:

- ``flip rate``: the share of (case, structure) calls whose truth differs between the bundle's grid and a shifted
  one, averaged over the shifts: how often the truth would change if the scan had been a fraction of a voxel
  larger or smaller;
- ``unstable``: the calls whose truth changes under at least one shift;
- with ``--per_case`` (the ``per_case.csv`` of the bundle's ``evaluate.json`` on the same set): the wrong calls,
  and how many of them are unstable. The rest are errors no sub-voxel accident explains.

The ratio printed last is the flip rate over the model's error rate on the same calls (with ``--per_case``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def grid_indices(size: int, grid: int, shift: float) -> np.ndarray:
    """Native indices ``"nearest-exact"`` samples for ``grid`` output voxels over ``size`` input voxels.

    Output voxel ``i`` reads input index ``floor((i + 0.5 + shift) * size / grid)`` (clipped to the volume);
    ``shift = 0`` is PyTorch's ``"nearest-exact"``, which the bundle's ``FitToSpatialDimsd`` uses for labels.
    """
    if size < 1 or grid < 1:
        raise ValueError(f"expected positive sizes, got size {size} and grid {grid}")
    if not -1.0 < shift < 1.0:
        raise ValueError(f"expected a shift of less than one grid voxel, got {shift}")
    return np.clip(np.floor((np.arange(grid) + 0.5 + shift) * (size / grid)).astype(np.int64), 0, size - 1)


def shifted_grid_counts(
    label: np.ndarray, structures: Mapping[str, int], spatial_dims: Sequence[int], shift: Sequence[float]
) -> dict[str, int]:
    """Voxels of each structure in ``label`` ``[D, H, W]`` resampled to ``spatial_dims`` with a sub-voxel ``shift``.

    Returns:
        ``{name: voxel count on the grid}``.
    """
    if label.ndim != 3 or len(spatial_dims) != 3 or len(shift) != 3:
        raise ValueError(
            f"expected a 3-D label map, three grid sizes and three shifts, got label shape {label.shape}, "
            f"spatial_dims {tuple(spatial_dims)} and shift {tuple(shift)}"
        )
    index = [grid_indices(n, g, s) for n, g, s in zip(label.shape, spatial_dims, shift)]
    grid = label[np.ix_(*index)]
    return {name: int((grid == value).sum()) for name, value in structures.items()}


def _ras_label_loader():
    """path -> ``[D, H, W]`` label array in RAS voxel order, read as the bundle reads it."""
    from monai.transforms import Compose, LoadImage, Orientation

    loader = Compose([LoadImage(image_only=True, ensure_channel_first=True), Orientation(axcodes="RAS")])
    return lambda path: np.asarray(loader(path))[0]


def stability_table(
    items: Sequence[Mapping],
    structures: Mapping[str, int],
    shifts: int | Sequence[Sequence[float]],
    seed: int = 0,
    spatial_dims: Sequence[int] = (48, 48, 48),
    min_voxels: int = 8,
    per_case_rows: Sequence[Mapping[str, str]] | None = None,
    load_label=None,
) -> dict[str, dict[str, float]]:
    """Per scenario (and ``all``): ``calls``, ``flip_rate``, ``unstable`` and, with ``per_case_rows``, ``wrong``
    and ``wrong_unstable``.

    Args:
        items: datalist entries with ``label`` (a path) and ``scenario``; case ``i`` is ``case_{i:04d}`` in
            ``per_case_rows``, as ``evaluate.json`` names them.
        structures: ``{name: label value}``.
        shifts: sub-voxel offsets ``(d, h, w)`` of the sampling positions, in grid voxels, shared by every case;
            or a count: that many offsets drawn for each case, uniform in ``[-0.5, 0.5)`` along each axis.
        seed: seed of the drawn offsets.
        per_case_rows: rows of ``evaluate.json``'s ``per_case.csv`` on the same items (``case``, ``structure``,
            ``correct``, ``target_voxels``).
        load_label: path -> ``[D, H, W]`` array in RAS; default MONAI's ``LoadImage`` and ``Orientation("RAS")``.

    Raises:
        ValueError: no shifts, or ``per_case_rows`` that do not describe the same calls (count or target voxels).
    """
    if (shifts if isinstance(shifts, int) else len(shifts)) < 1:
        raise ValueError(f"expected at least one shift, got {shifts!r}")
    rng = np.random.default_rng(seed)
    load_label = load_label or _ras_label_loader()
    truth_from_eval: dict[tuple[str, str], int] = {}
    wrong: set[tuple[str, str]] = set()
    if per_case_rows is not None:
        if len(per_case_rows) != len(items) * len(structures):
            raise ValueError(
                f"expected {len(items) * len(structures)} per-case rows ({len(items)} cases x {len(structures)} "
                f"structures), got {len(per_case_rows)}: not the same set?"
            )
        truth_from_eval = {(r["case"], r["structure"]): int(r["target_voxels"]) for r in per_case_rows}
        wrong = {(r["case"], r["structure"]) for r in per_case_rows if r["correct"] != "True"}
    stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for i, item in enumerate(items):
        label = np.asarray(load_label(item["label"]))
        base = shifted_grid_counts(label, structures, spatial_dims, (0.0, 0.0, 0.0))
        case_shifts = [tuple(rng.uniform(-0.5, 0.5, 3)) for _ in range(shifts)] if isinstance(shifts, int) else shifts
        shifted = [shifted_grid_counts(label, structures, spatial_dims, shift) for shift in case_shifts]
        case = f"case_{i:04d}"
        for name in structures:
            present = base[name] >= min_voxels
            if per_case_rows is not None:
                # evaluate.json's targets empty a structure below min_voxels, as LabelMapToStructuresd does
                expected = base[name] if present else 0
                if truth_from_eval.get((case, name)) != expected:
                    raise ValueError(
                        f"expected {case}/{name} to hold {expected} target voxels in the per-case rows, as "
                        f"resampled here, got {truth_from_eval.get((case, name))}: not the same set or grid?"
                    )
            flips = sum((counts[name] >= min_voxels) != present for counts in shifted)
            for scenario in (item["scenario"], "all"):
                s = stats[scenario]
                s["calls"] += 1
                s["flip_rate"] += flips / len(case_shifts)
                s["unstable"] += flips > 0
                if per_case_rows is not None:
                    s["wrong"] += (case, name) in wrong
                    s["wrong_unstable"] += (case, name) in wrong and flips > 0
    for s in stats.values():
        s["flip_rate"] /= s["calls"]
    return {k: dict(v) for k, v in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--shifts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spatial_dims", type=int, nargs=3, default=[48, 48, 48])
    parser.add_argument("--min_voxels", type=int, default=8)
    parser.add_argument("--per_case", type=Path, default=None, help="per_case.csv of evaluate.json on the same set")
    args = parser.parse_args()

    from monai_sadaan.data import load_datalist

    dataset_json = args.data_dir / "dataset.json"
    items = load_datalist(dataset_json, args.split)
    with open(dataset_json, encoding="utf-8") as f:
        structures = json.load(f)["structures"]
    rows = None
    if args.per_case is not None:
        with open(args.per_case, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    try:
        stats = stability_table(items, structures, args.shifts, args.seed, args.spatial_dims, args.min_voxels, rows)
    except ValueError as e:
        raise SystemExit(str(e)) from e

    header = f"{'scenario':22s} {'calls':>6s} {'flip rate':>9s} {'unstable':>8s}"
    if rows is not None:
        header += f" {'wrong':>6s} {'wrong, unstable':>15s} {'wrong, stable':>13s}"
    print(header)
    for scenario in sorted(stats, key=lambda k: (k == "all", k)):
        s = stats[scenario]
        line = f"{scenario:22s} {int(s['calls']):6d} {s['flip_rate']:9.4f} {int(s['unstable']):8d}"
        if rows is not None:
            line += f" {int(s['wrong']):6d} {int(s['wrong_unstable']):15d} {int(s['wrong'] - s['wrong_unstable']):13d}"
        print(line)
    if rows is not None:
        s = stats["all"]
        error_rate = s["wrong"] / s["calls"]
        ratio = s["flip_rate"] / error_rate if error_rate else float("nan")
        print(f"flip rate / model error rate: {s['flip_rate']:.4f} / {error_rate:.4f} = {ratio:.3f}")


if __name__ == "__main__":
    main()
