"""Time the whole-trunk phantom generator against the abdominal one (``generate_phantom``), in the same run.

Measured: ``generate_trunk_phantom(scenario, seed)`` with its default random field of view, phase and grid
(64-128 voxels per axis), over every trunk scenario, and per named field of view; baseline: ``generate_phantom``
with its default random grid (48-96 voxels per axis) over its scenarios. Both in this process, one core.

Target: the median default trunk case takes about 1 s or less (exit 0 when under ``--target``, otherwise 1).

    flock /tmp/heavy.lock .venv/bin/python benchmarks/bench_trunk_phantoms.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

from _shared import call_times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="seeds per scenario / field of view (default 3)")
    parser.add_argument("--target", type=float, default=1.2, help="seconds per default trunk case (default 1.2)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats: expected an integer >= 1, got {args.repeats}")

    from monai_sadaan.data import SCENARIOS, generate_phantom
    from monai_sadaan.data.scenarios import TRUNK_SCENARIOS
    from monai_sadaan.data.trunk import FIELDS_OF_VIEW, generate_trunk_phantom

    generate_phantom("normal", 0)  # warm-up (imports, caches)
    generate_trunk_phantom("normal", 0)
    seeds = range(100, 100 + args.repeats)
    old = [t for s in SCENARIOS for t in call_times(lambda i, s=s: generate_phantom(s, i), seeds)]
    new = {s: call_times(lambda i, s=s: generate_trunk_phantom(s, i), seeds) for s in TRUNK_SCENARIOS}
    per_fov = {
        f: call_times(lambda i, f=f: generate_trunk_phantom("normal", i, field_of_view=f), seeds) for f in FIELDS_OF_VIEW
    }
    voxels = [generate_trunk_phantom("normal", i).image.size for i in seeds]

    base = statistics.median(old)
    overall = statistics.median([t for ts in new.values() for t in ts])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load:.2f}")
    mvox = statistics.median(voxels) / 1e6
    print(f"median of {args.repeats} seeds per row; default trunk grids hold {mvox:.2f} M voxels")
    print(f"{'case':<46}{'seconds':>9}{'x abdomen':>11}")
    print(f"{'baseline: generate_phantom (all scenarios)':<46}{base:>9.3f}{1.0:>11.2f}")
    for scenario, ts in new.items():
        t = statistics.median(ts)
        print(f"{'generate_trunk_phantom ' + scenario:<46}{t:>9.3f}{t / base:>11.2f}")
    for fov, ts in per_fov.items():
        t = statistics.median(ts)
        print(f"{'  field_of_view=' + fov:<46}{t:>9.3f}{t / base:>11.2f}")
    ok = overall < args.target
    print(f"median default trunk case {overall:.3f} s ({overall / base:.2f} x the abdominal generator); "
          f"target < {args.target:.1f} s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
