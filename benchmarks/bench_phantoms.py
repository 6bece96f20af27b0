"""Time the SADAAn phantom generator at 96^3 against MONAI's own synthetic volume generator, in the same run.

Baseline: ``monai.data.synthetic.create_test_image_3d(96, 96, 96)`` (random spheres with noise and a label map),
the generator MONAI's tutorials use. Measured: ``generate_phantom(scenario, seed, shape=96)`` for every scenario,
and writing one case as two NIfTI files (``save_phantom``).

Target: the median 96^3 case takes under 1 s (exit 0), otherwise exit 1.

    flock /tmp/heavy.lock python benchmarks/bench_phantoms.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from _shared import median_time

TARGET_SECONDS = 1.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="cases per scenario (default 5)")
    parser.add_argument("--size", type=int, default=96, help="voxels per axis (default 96)")
    args = parser.parse_args(argv)

    import numpy as np
    from monai.data.synthetic import create_test_image_3d

    from monai_sadaan.data import SCENARIOS, generate_phantom, save_phantom

    n = args.size
    generate_phantom("normal", 0, shape=n)  # warm-up (imports, caches)
    baseline = median_time(
        lambda i: create_test_image_3d(n, n, n, num_objs=12, rad_max=max(n // 4, 6), noise_max=0.1, random_state=np.random.RandomState(i)),
        args.repeats,
    )
    rows = []
    for scenario in SCENARIOS:
        rows.append((scenario, median_time(lambda i, s=scenario: generate_phantom(s, i, shape=n), args.repeats)))
    overall = statistics.median(t for _, t in rows)
    with tempfile.TemporaryDirectory() as tmp:
        phantom = generate_phantom("normal", 0, shape=n)
        write = median_time(
            lambda i: save_phantom(phantom, Path(tmp) / f"img{i}.nii.gz", Path(tmp) / f"lbl{i}.nii.gz"), args.repeats
        )

    print(f"phantom generation at {n}^3, median of {args.repeats} seeds per scenario")
    print(f"{'case':<40}{'seconds':>10}{'x baseline':>12}")
    print(f"{'baseline: monai create_test_image_3d':<40}{baseline:>10.3f}{1.0:>12.2f}")
    for scenario, t in rows:
        print(f"{'generate_phantom ' + scenario:<40}{t:>10.3f}{t / baseline:>12.2f}")
    print(f"{'write image + label (.nii.gz)':<40}{write:>10.3f}{write / baseline:>12.2f}")
    ok = overall < TARGET_SECONDS
    print(f"median over scenarios {overall:.3f} s per case; target < {TARGET_SECONDS:.1f} s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
