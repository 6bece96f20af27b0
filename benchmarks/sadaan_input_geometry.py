"""SADAAn masks scored in the input's own geometry: what a user of the inference command gets.

    python benchmarks/sadaan_input_geometry.py --data_dir DIR --work_dir W [--cases_per_scenario 10]
        [--ckpt bundles/.../models/model.pt] [--baseline_ckpt OTHER.pt] [--baseline_bundle_args "ARGS"]

``DIR`` holds a generated phantom dataset (``dataset.json`` from ``python -m monai_sadaan.data``, or the folder a
bundle run wrote); its first ``--cases_per_scenario`` test cases of each scenario are linked into ``W/images`` and
the bundle's ``configs/inference.json`` runs on them once per checkpoint (``python -m monai.bundle run``), writing
``W/<tag>/``. The written multi-label masks are then compared voxel by voxel with the cases' native label maps:
Dice on every present structure, and the signed shift of each structure's centroid (predicted minus true) along
the patient's R, A and S axes in native voxels, which is zero on average when the masks sit on the image.

It prints one line per checkpoint and scenario, then, with ``--baseline_ckpt``, the ratio of the mean centroid
shift length (checkpoint over baseline). ``--baseline_bundle_args`` adds bundle arguments to the baseline's run, for
a checkpoint of other widths than the configured ones (``"--features [8,16,32,64,128] --feature_channels 16"`` for
bundle 0.9.0 and before).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "sadaan_abdominal_ct_segmentation"


def _select(dataset: dict, per_scenario: int) -> list[dict]:
    chosen: dict[str, list[dict]] = defaultdict(list)
    for item in dataset["test"]:
        if len(chosen[item["scenario"]]) < per_scenario:
            chosen[item["scenario"]].append(item)
    return [item for scen in sorted(chosen) for item in chosen[scen]]


def _case_name(item: dict) -> str:
    return Path(item["image"]).name.split(".")[0]


def _run_inference(ckpt: Path, images: Path, out: Path, bundle_args: list[str] | None = None) -> None:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.json",
           "--dataset_dir", str(images), "--output_dir", str(out), "--ckpt_path", str(ckpt), *(bundle_args or [])]  # fmt: skip
    done = subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"inference with {ckpt} failed:\n{done.stderr[-3000:]}")


def score(data_dir: Path, items: list[dict], out: Path, structures: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per scenario (and ``all``): mean native Dice on present structures and mean signed centroid shift (R, A, S)."""
    dice: dict[str, list[float]] = defaultdict(list)
    shift: dict[str, list[np.ndarray]] = defaultdict(list)
    for item in items:
        name = _case_name(item)
        truth_img = nib.load(data_dir / item["label"])
        truth = np.asarray(truth_img.dataobj)
        pred = np.asarray(nib.load(out / name / f"{name}_labels.nii.gz").dataobj)
        if pred.shape != truth.shape:
            raise SystemExit(f"{name}: mask shape {pred.shape} is not the input's {truth.shape}")
        axes = nib.orientations.io_orientation(truth_img.affine)  # voxel axis -> (RAS axis, direction)
        for structure, value in structures.items():
            if not item["present"][structure]:
                continue
            t, p = truth == value, pred == value
            d = 2.0 * float((t & p).sum()) / max(float(t.sum() + p.sum()), 1.0)
            dice[item["scenario"]].append(d)
            dice["all"].append(d)
            if t.sum() >= 50 and p.sum() >= 50:
                delta = np.argwhere(p).mean(0) - np.argwhere(t).mean(0)
                ras = np.zeros(3)
                for ax in range(3):
                    ras[int(axes[ax, 0])] = delta[ax] * axes[ax, 1]
                shift[item["scenario"]].append(ras)
                shift["all"].append(ras)
    table = {}
    for scen in sorted(k for k in dice if k != "all") + ["all"]:
        s = np.mean(shift[scen], axis=0) if shift[scen] else np.full(3, np.nan)
        table[scen] = {"structures": len(dice[scen]), "dice": float(np.mean(dice[scen])), "shift_r": s[0],
                       "shift_a": s[1], "shift_s": s[2]}  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_dir", type=Path, required=True)
    ap.add_argument("--work_dir", type=Path, required=True)
    ap.add_argument("--cases_per_scenario", type=int, default=10)
    ap.add_argument("--ckpt", type=Path, default=BUNDLE / "models" / "model.pt")
    ap.add_argument("--baseline_ckpt", type=Path, default=None)
    ap.add_argument("--baseline_bundle_args", default="", help="extra bundle arguments for the baseline's inference run")
    args = ap.parse_args(argv)

    data_dir = args.data_dir.resolve()
    dataset = json.loads((data_dir / "dataset.json").read_text())
    for key in ("test", "structures"):
        if key not in dataset:
            raise SystemExit(f"{data_dir / 'dataset.json'}: expected the key {key!r}, found {sorted(dataset)}")
    items = _select(dataset, args.cases_per_scenario)
    images = args.work_dir.resolve() / "images"
    images.mkdir(parents=True, exist_ok=True)
    for item in items:
        link = images / Path(item["image"]).name
        if not link.exists():
            os.symlink(data_dir / item["image"], link)

    runs = [("checkpoint", args.ckpt.resolve(), [])]
    if args.baseline_ckpt is not None:
        runs.append(("baseline", args.baseline_ckpt.resolve(), shlex.split(args.baseline_bundle_args)))
    tables = {}
    for tag, ckpt, bundle_args in runs:
        out = args.work_dir.resolve() / tag
        _run_inference(ckpt, images, out, bundle_args)
        tables[tag] = score(data_dir, items, out, dataset["structures"])

    print(f"{len(items)} cases from {data_dir}; centroid shift = predicted minus true, native voxels")
    print(f"{'model':<11} {'scenario':<22} {'structures':>10} {'Dice':>7} {'shift R':>8} {'shift A':>8} {'shift S':>8}")
    for tag, table in tables.items():
        for scen, r in table.items():
            print(f"{tag:<11} {scen:<22} {r['structures']:>10} {r['dice']:>7.4f} {r['shift_r']:>8.3f} "
                  f"{r['shift_a']:>8.3f} {r['shift_s']:>8.3f}")  # fmt: skip
    if "baseline" in tables:
        length = {t: float(np.linalg.norm([tables[t]["all"][k] for k in ("shift_r", "shift_a", "shift_s")]))
                  for t in tables}  # fmt: skip
        ratio = length["checkpoint"] / length["baseline"] if length["baseline"] else float("nan")
        print(f"mean centroid shift length, checkpoint / baseline: {length['checkpoint']:.3f} / "
              f"{length['baseline']:.3f} = {ratio:.3f}")  # fmt: skip
        print(f"mean Dice, checkpoint / baseline: {tables['checkpoint']['all']['dice']:.4f} / "
              f"{tables['baseline']['all']['dice']:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
