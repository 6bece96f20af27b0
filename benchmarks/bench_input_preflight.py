"""Time the inference input pre-flight for one generated phantom volume against the loader's own read of it.

Baseline: ``SimpleITK.ReadImage`` of the file (what the SADAAn bundle's ``LoadImaged(reader="ITKReader")`` does
for every case anyway). Measured: ``check_volume_header`` (header only) and ``check_volume_content`` (voxel data
read once with nibabel / SimpleITK and scanned for NaN/Inf), for the same phantom written as ``.nii.gz``, ``.nii``
and ``.mha``. The content check is the price of refusing a bad folder before any output: each volume is read twice.

Target (exit 0): header + content check cost at most 3x the baseline read, for every format.

    flock /tmp/heavy.lock python benchmarks/bench_input_preflight.py [--shape 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _shared import call_times

TARGET_RATIO = 3.0


def _best_time(fn, path: Path, repeats: int) -> float:
    return min(call_times(fn, [path] * repeats))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, default=None, help="voxels per axis (default: the generator's, 48..96)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import SimpleITK as sitk

    from monai_sadaan.data import generate_phantom, save_phantom
    from monai_sadaan.data.image_folder import check_volume_content, check_volume_header

    phantom = generate_phantom("normal", seed=0, shape=args.shape)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".nii.gz", ".nii", ".mha"):
            path = save_phantom(phantom, Path(tmp) / f"ct{suffix}")[0]
            header = _best_time(check_volume_header, path, args.repeats)
            content = _best_time(check_volume_content, path, args.repeats)
            load = _best_time(lambda p: sitk.ReadImage(str(p)), path, args.repeats)
            ratio = (header + content) / load
            ok &= ratio <= TARGET_RATIO
            print(
                f"{suffix:7s} size {check_volume_header(path)} ({path.stat().st_size / 2**20:.1f} MiB): "
                f"header {header * 1e3:.1f} ms, content {content * 1e3:.1f} ms, ITK read {load * 1e3:.1f} ms; "
                f"pre-flight / read = {ratio:.2f} (target <= {TARGET_RATIO})"
            )
    print("target met" if ok else "target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
