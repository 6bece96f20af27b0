"""Time writing one SADAAn case at clinical CT size against writing its label map alone, in the same run.

Baseline: ``nibabel.save`` of the uint8 label map as ``.nii.gz`` (what any segmentation pipeline writes at least).
Measured: ``SADAAnCaseWriter`` writing all of a case (NIfTI label map, Slicer ``.seg.nrrd``, colour table, presence
JSON + CSV, all atomically through a staging folder), with the ``.seg.nrrd`` gzip level 6 (the default) and 9
(slicerio's default), and the ``.seg.nrrd`` alone at both levels.

Target (exit 0): the whole case costs at most 3x the label-map-only baseline.

    flock /tmp/heavy.lock python benchmarks/bench_case_writer.py [--shape 512 512 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _shared import median_time

TARGET_RATIO = 3.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 512, 200], help="label map size (default 512 512 200)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import nibabel as nib
    import numpy as np

    from monai_sadaan.io import SADAAnCaseWriter, write_slicer_segmentation

    shape = tuple(args.shape)
    affine = np.diag([0.78, 0.78, 2.0, 1.0])
    # five blob-shaped structures (an absent one among them), the way organ masks compress: large smooth regions
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij"))
    lm = np.zeros(shape, np.uint8)
    for label, (cx, cy, cz, r) in enumerate([(0.4, 0.1, 0.0, 0.18), (-0.4, 0.1, 0.0, 0.18), (-0.3, -0.3, 0.3, 0.45),
                                              (0.5, -0.2, 0.3, 0.2), (0.0, -0.1, -0.1, 0.15)], start=1):  # fmt: skip
        if label == 2:
            continue  # right kidney absent
        lm[((grid[0] - cx) ** 2 + (grid[1] - cy) ** 2 + (grid[2] - cz) ** 2) < r * r] = label
    del grid
    presence = {
        "presence_probability": [0.97, 0.03, 0.99, 0.95, 0.88],
        "confidence": [0.9, 0.9, 0.95, 0.9, 0.7],
        "present": [True, False, True, True, True],
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def baseline(i):
            nib.save(nib.Nifti1Image(lm, affine), out / f"base_{i}.nii.gz")

        results = {"label map only (nibabel, baseline)": median_time(baseline, args.repeats)}
        for level in (6, 9):
            results[f".seg.nrrd alone, gzip {level}"] = median_time(
                lambda i: write_slicer_segmentation(lm, affine, presence, out / f"s{level}_{i}.seg.nrrd", compression_level=level),
                args.repeats,
            )
        writer = SADAAnCaseWriter(out / "cases")
        results["whole case (SADAAnCaseWriter)"] = median_time(lambda i: writer(f"case_{i}", lm, affine, presence), args.repeats)
        sizes = {
            "label map .nii.gz": (out / "base_0.nii.gz").stat().st_size,
            ".seg.nrrd gzip 6": (out / "s6_0.seg.nrrd").stat().st_size,
            ".seg.nrrd gzip 9": (out / "s9_0.seg.nrrd").stat().st_size,
        }

    base = results["label map only (nibabel, baseline)"]
    print(f"label map {shape} uint8, median of {args.repeats} runs")
    print(f"{'what':40s} {'seconds':>8s} {'x baseline':>10s}")
    for name, t in results.items():
        print(f"{name:40s} {t:8.2f} {t / base:10.2f}")
    for name, size in sizes.items():
        print(f"size of {name:31s} {size / 1e6:8.2f} MB")
    ratio = results["whole case (SADAAnCaseWriter)"] / base
    ok = ratio <= TARGET_RATIO
    print(f"whole case / baseline = {ratio:.2f} (target <= {TARGET_RATIO}): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
