"""GRU regression on a real series shipped with statsmodels: held-out RMSE against persistence and linear AR.

The GRU (PaddedGRURegressor) is trained with MONAI's SupervisedTrainer on the training head, once per seed in
``--seeds``; the GRU forecast is the mean of these models (each seed's own RMSE is printed too). With
``--val-size N`` a SupervisedEvaluator on the last N head steps selects the checkpoint and stops early instead of
training for ``--epochs``. The held-out tail of ``--test-size`` values is scored once, one step ahead from the true
past, for the GRU, persistence and a linear AR model whose order statsmodels picks by AIC on the head.

    flock /tmp/heavy.lock python benchmarks/gru_quality.py            # sunspots, prints a markdown table

Exit status 0 when the GRU beats both baselines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from seq_models.baselines.autoregressive import LinearARForecaster, persistence_forecast
from seq_models.data.series import SeriesRegressionData
from seq_models.workflows.gru_regression import fit_gru_to_series, predict_series


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", default="sunspots", choices=["sunspots", "elnino", "nile", "co2"])
    ap.add_argument("--test-size", type=int, default=60)
    ap.add_argument("--val-size", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=40)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--loss-skip-first", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    data = SeriesRegressionData.from_statsmodels(args.series, test_size=args.test_size)
    truth = data.test_truth()
    rmse = lambda p: float(np.sqrt(np.mean((np.asarray(p) - truth) ** 2)))  # noqa: E731

    pers = persistence_forecast(data.series, args.test_size)
    ar = LinearARForecaster(max_order=30).fit(data.series[: data.train_end + 1])
    ar_pred = ar.predict_tail(data.series, args.test_size)

    t0 = time.perf_counter()
    preds, infos = [], []
    for seed in args.seeds:
        net, info = fit_gru_to_series(
            data, hidden_size=args.hidden, num_layers=args.layers, window=args.window, stride=args.stride,
            val_size=args.val_size, max_epochs=args.epochs, lr=args.lr, patience=args.patience, seed=seed,
            loss_skip_first=args.loss_skip_first,
        )
        preds.append(data.test_predictions(predict_series(net, data.features, mode="full").numpy()))
        infos.append(info)
    train_s = time.perf_counter() - t0
    gru_pred = np.mean(preds, axis=0)
    per_seed = [rmse(p) for p in preds]

    gru_name = f"GRU (mean of {len(args.seeds)} seeds)" if len(args.seeds) > 1 else "GRU"
    rows = {"persistence": rmse(pers), f"linear AR({ar.order})": rmse(ar_pred), gru_name: rmse(gru_pred)}
    print(f"series {args.series}: {len(data.series)} values, held-out tail {args.test_size}, one step ahead")
    print(f"GRU: hidden {args.hidden}, layers {args.layers}, epochs run {[i['epochs_run'] for i in infos]}, "
          f"val_size {args.val_size}, seeds {args.seeds}, training {train_s:.1f} s in all")
    print("per-seed held-out RMSE: " + ", ".join(f"{v:.3f}" for v in per_seed))
    print("\n| model | held-out RMSE | ratio to GRU |\n|---|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v:.3f} | {v / rows[gru_name]:.2f} |")
    best_baseline = min(rows["persistence"], rows[f"linear AR({ar.order})"])
    ok = rows[gru_name] < best_baseline
    n_single = sum(v < best_baseline for v in per_seed)
    print(f"\nGRU / best baseline = {rows[gru_name] / best_baseline:.3f} -> {'PASS' if ok else 'FAIL'} (target < 1); "
          f"{n_single} of {len(per_seed)} single seeds beat the best baseline too")
    if args.json:
        from monai_sadaan.utils import atomic_open

        with atomic_open(args.json) as f:
            json.dump({"args": vars(args), "rmse": rows, "per_seed_rmse": per_seed}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
