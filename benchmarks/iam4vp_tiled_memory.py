"""Peak CPU memory of tiled IAM4VP inference: 372x614 frames against 744x1228 frames, and tiled vs whole-frame.

Part 1, memory. The seed-size IAM4VP (12x11x372x614, latent 64, N_S 4, N_T 6) forecasts one step of a 372x614
frame (one tile) and of a 744x1228 frame (9 overlapping tiles through MONAI's sliding window). Each run happens in
a fresh Python process and reports its peak resident set size (``ru_maxrss``): fresh processes keep one run's
allocator caches out of the other's figure, and RSS counts everything the process touched (torch, oneDNN
scratch, the frame, the stitched output) without tracing overhead. The ratio big/small must be <= 1.2.

Part 2, agreement. A smaller IAM4VP (latent 16, N_T 2, same tile) forecasts a 744x1228 frame tiled and whole
(the same weights in a model built for the whole frame, ``IAM4VP.for_frame_size``). At the first lead time the two
must agree within 1e-4 at every pixel at least ``--margin`` pixels from every tile seam. Later lead times feed the
stitched forecasts back in, so seam effects reach further with each step; their differences are printed as
information.

    flock /tmp/heavy.lock python benchmarks/iam4vp_tiled_memory.py --markdown docs/benchmarks/iam4vp_tiled_memory.md
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from _shared import write_markdown_report

TILE = (372, 614)
TOLERANCE = 1e-4


def child(height: int, width: int, threads: int) -> None:
    """Run one tiled forecast step and print a JSON line with the peak RSS."""
    from seq_models.inferers import TiledForecaster
    from seq_models.networks.iam4vp import IAM4VP

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = IAM4VP((12, 11, *TILE)).eval()
    history = torch.rand(1, 12, 11, height, width)
    start = time.perf_counter()
    with torch.no_grad():
        out = TiledForecaster(steps=1, overlap=0.25, mode="gaussian")(history, model)
    seconds = time.perf_counter() - start
    assert out.shape == (1, 1, 11, height, width), out.shape
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"height": height, "width": width, "peak_mb": peak_mb, "seconds": seconds}))


def measure(height: int, width: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(height), str(width), "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def agreement(margin: int, steps: int, threads: int) -> list[float]:
    from seq_models.inferers import AutoregressiveForecaster, TiledForecaster
    from seq_models.inferers.tiled_forecast import away_from_seams
    from seq_models.networks.iam4vp import IAM4VP

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tile_model = IAM4VP((12, 11, *TILE), latent_channels=16, num_convolutions_time=2).eval()
    frame = (2 * TILE[0], 2 * TILE[1])
    frame_model = tile_model.for_frame_size(*frame).eval()
    history = torch.rand(1, 12, 11, *frame)
    tiled = TiledForecaster(steps=steps, overlap=0.25, mode="gaussian")
    with torch.no_grad():
        a = tiled(history, tile_model)
        b = AutoregressiveForecaster(steps=steps)(history, frame_model)
    plan = tiled.plan(tile_model, *frame)
    mask = away_from_seams(frame, plan["tile"], plan["starts"], margin, padded=plan["padded"])
    diffs = [float((a[0, k] - b[0, k]).abs()[..., mask].max()) for k in range(steps)]
    means = [float((a[0, k] - b[0, k]).abs().mean()) for k in range(steps)]
    return diffs, means, float(mask.float().mean()), plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--margin", type=int, default=64, help="pixels from seams for the agreement check")
    parser.add_argument("--steps", type=int, default=2, help="lead times in the agreement check")
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--agreement_only", action="store_true", help="skip the memory part (print part 2 only)")
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, args.threads)
        return 0

    lines: list[str] = []
    mem_ok = True
    diffs, means, kept, plan = agreement(args.margin, args.steps, args.threads)
    if not args.agreement_only:
        small = measure(*TILE, args.threads)
        big = measure(2 * TILE[0], 2 * TILE[1], args.threads)
        ratio = big["peak_mb"] / small["peak_mb"]
        mem_ok = ratio <= 1.2
        lines += [
            "| frame | tiles | peak RSS (MB) | time (s) |",
            "|---|---|---|---|",
            f"| 372x614 | 1 | {small['peak_mb']:.0f} | {small['seconds']:.1f} |",
            f"| 744x1228 | {len(plan['starts'][0]) * len(plan['starts'][1])} | {big['peak_mb']:.0f} | {big['seconds']:.1f} |",
            "",
            f"Peak memory ratio 744x1228 / 372x614: {ratio:.3f} (target <= 1.2): {'met' if mem_ok else 'NOT met'}",
            f"(frame 4x the pixels; tile starts y {plan['starts'][0]}, x {plan['starts'][1]}, Gaussian blending)",
            "",
        ]
    eq_ok = diffs[0] <= TOLERANCE
    lines += [
        f"Tiled vs whole-frame pass (latent 16, N_T 2), pixels >= {args.margin} px from every seam and from the "
        f"padded right edge ({2 * TILE[1]} columns padded to {plan['padded'][1]} to put the tiles on the stride grid; "
        f"{kept:.0%} of the frame):",
    ]
    for k, (d, m) in enumerate(zip(diffs, means)):
        lines.append(f"- lead {k + 1}: max |diff| away from seams {d:.2e}; mean |diff| over the whole frame {m:.2e}")
    lines.append(f"Lead 1 within {TOLERANCE:g}: {'yes' if eq_ok else 'NO'}")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        write_markdown_report(
            args.markdown,
            "IAM4VP tiled inference: peak memory and agreement",
            f"Made by (CPU, {args.threads} threads, other jobs were loading the same 2-core machine, so times are "
            "indicative)",
            "iam4vp_tiled_memory.py",
            argv if argv is not None else sys.argv[1:],
            text,
        )
    return 0 if mem_ok and eq_ok else 1


if __name__ == "__main__":
    sys.exit(main())
