"""Offline inference on long series: MONAI sliding_window_inference over time (with burn-in) vs the full pass.

Large GRU configuration (148 features, hidden 128, 3 layers), eval mode, batch of one ``--length``-step series.
The baseline is the batch model's full sequential pass; the candidate is TimeSlidingWindowInferer, which runs the
overlapping windows of the same series as one batch and keeps, from each window, the outputs after its burn-in.
Both run in this process on ``--threads`` threads, alternating, median of ``--rounds``. The maximum absolute
difference between the two outputs is reported against ``--tolerance``.

    flock /tmp/heavy.lock python benchmarks/gru_sliding_window.py

Exit status 0 when the windowed pass is >= 2x faster and within the tolerance.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from seq_models.inferers.sliding_window import TimeSlidingWindowInferer
from seq_models.networks.gru_regression import gru_regressor_large


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=4000)
    ap.add_argument("--window", type=int, default=400)
    ap.add_argument("--burn-in", type=int, default=100)
    ap.add_argument("--sw-batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = gru_regressor_large()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 64, 148))
    model.eval()
    x = torch.randn(1, args.length, 148)
    inferer = TimeSlidingWindowInferer(args.window, args.burn_in, sw_batch_size=args.sw_batch_size)

    with torch.no_grad():
        full = model(x)
        windowed = inferer(x, model)
        err = float((full - windowed).abs().max())
        t_full, t_win = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            model(x)
            t_full.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            inferer(x, model)
            t_win.append(time.perf_counter() - t0)
    mf, mw = statistics.median(t_full), statistics.median(t_win)
    n_win = len(range(0, args.length - args.window + 1, args.window - args.burn_in)) + 1
    print(f"torch {torch.__version__}, {args.threads} threads, series of {args.length} steps, window {args.window}, "
          f"burn-in {args.burn_in}, about {n_win} windows, sw_batch_size {args.sw_batch_size}; "
          f"median of {args.rounds} rounds; other processes may share the CPU\n")
    print("| pass | seconds (median) | min | ratio |\n|---|---|---|---|")
    print(f"| full sequential pass (baseline) | {mf:.3f} | {min(t_full):.3f} | 1.00x |")
    print(f"| sliding_window_inference over time, burn-in | {mw:.3f} | {min(t_win):.3f} | {mf / mw:.2f}x |")
    ok = mf / mw >= 2.0 and err <= args.tolerance
    print(f"\nmax |windowed - full| = {err:.2e} (tolerance {args.tolerance:g}); speed-up {mf / mw:.2f}x "
          f"-> {'PASS' if ok else 'FAIL'} (targets >= 2x, within tolerance)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
