"""GRU regression on real series shipped with statsmodels: held-out RMSE against persistence and linear AR.

For each series in ``--series`` the GRU (PaddedGRURegressor) is trained with MONAI's SupervisedTrainer once per
seed in ``--seeds``; each seed's held-out RMSE is reported with their mean and standard deviation (ddof 1), and
the RMSE of the seeds' mean forecast. The held-out tail (``--test-size``, or each series' default) is scored once,
one step ahead from the true past, for the GRU, persistence and a linear AR model whose order statsmodels picks
by AIC on the head (``ar_select_order``); for a seasonal series (elnino, co2) also the seasonal-anomaly AR (the
head's phase means removed, order by AIC), which is then the hybrid's linear part; for a multivariate series
(macrodata: inflation with unemployment and the T-bill rate) also the VAR equation of the target over the same
inputs as the GRU, order by AIC (``VAR.select_order``).

The training recipe defaults to the GRU bundle's ``configs/train.json`` (what the GRU predicts, ``target``: the next
value, its change, or the residual of the AR(AIC) forecast in the "AR + GRU" hybrid, whose linear part is the same
AR model as the baseline (the seasonal-anomaly one where there is a period), fitted on the same head; hidden size,
layers, window, stride, batch, learning rate, AdamW weight decay, zero-started output layer, epochs, patience,
validation steps and whether their lead-in is scored, skipped warm-up steps); command-line options override it. On
series too short for its window or validation part, the window is cut to half the training steps and the validation
part to a quarter of the head (said in the table).

    flock /tmp/heavy.lock .venv/bin/python benchmarks/gru_quality.py --threads 1 --markdown /tmp/gru_quality.md

Target (issue 28): the GRU's mean RMSE below every baseline by more than two standard deviations of the seed
spread, on every series. Exit status 0 when that holds for all series run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from seq_models.baselines.autoregressive import LinearARForecaster, persistence_forecast
from monai_glue import parse_bool
from seq_models.data.series import STATSMODELS_SERIES, TARGETS, SeriesRegressionData
from seq_models.workflows.gru_regression import fit_gru_to_series, predict_series

BUNDLE_TRAIN = Path(__file__).resolve().parents[1] / "bundles" / "gru_timeseries_regression" / "configs" / "train.json"
#: held-out tail per series: sunspots 60 years, elnino 10 years of months, nile 20 years, co2 5 years of weeks,
#: macrodata 10 years of quarters
TEST_SIZE = {"sunspots": 60, "elnino": 120, "nile": 20, "co2": 260, "macrodata": 40}
RECIPE_KEYS = {
    "hidden": "hidden_size", "layers": "num_layers", "window": "window", "stride": "stride", "batch_size": "batch_size",
    "lr": "learning_rate", "epochs": "max_epochs", "patience": "patience", "val_size": "val_size",
    "loss_skip_first": "loss_skip_first", "target": "target", "weight_decay": "weight_decay", "zero_head": "zero_head",
    "val_skip_lead_in": "val_skip_lead_in",
}


def bundle_recipe() -> dict:
    """The training recipe in the bundle's ``configs/train.json``, under this script's option names."""
    cfg = json.loads(BUNDLE_TRAIN.read_text())
    missing = sorted(key for key in RECIPE_KEYS.values() if key not in cfg)
    if missing:
        raise KeyError(f"expected the keys {missing} in {BUNDLE_TRAIN}, got {sorted(cfg)}")
    return {arg: cfg[key] for arg, key in RECIPE_KEYS.items()}


def run_series(name: str, args: argparse.Namespace) -> dict:
    test_size = args.test_size or TEST_SIZE[name]
    data = SeriesRegressionData.from_statsmodels(name, test_size=test_size, target=args.target, ar_max_order=30)
    truth = data.test_truth()
    rmse = lambda p: float(np.sqrt(np.mean((np.asarray(p) - truth) ** 2)))  # noqa: E731

    head = slice(0, data.train_end + 1)
    baselines = {"persistence": rmse(persistence_forecast(data.series, test_size))}
    ar = LinearARForecaster(max_order=30).fit(data.series[head])
    baselines[f"linear AR({ar.order}), AIC"] = rmse(ar.predict_tail(data.series, test_size))
    linear_part = ar
    if data.period:
        linear_part = LinearARForecaster(max_order=30, period=data.period).fit(data.series[head])
        seasonal_rmse = rmse(linear_part.predict_tail(data.series, test_size))
        baselines[f"seasonal-anomaly AR({linear_part.order}), AIC"] = seasonal_rmse
    if data.ar_order is not None and data.ar_order != linear_part.order:  # the hybrid's linear part is a baseline
        raise RuntimeError(
            f"expected the hybrid's AR order to be the baseline's {linear_part.order}, got {data.ar_order}"
        )
    if data.exog is not None:
        var = LinearARForecaster(max_order=30).fit(data.series[head], data.exog[head])
        var_pred = var.predict_tail(data.series, test_size, data.exog)
        baselines[f"VAR({var.order}) equation, AIC, same inputs"] = rmse(var_pred)

    val_size = min(args.val_size, data.train_end // 4) if args.val_size else 0
    window = min(args.window, (data.train_end - val_size) // 2)
    adapted = (window, val_size) != (args.window, args.val_size)
    start = time.perf_counter()
    preds, infos = [], []
    for seed in args.seeds:
        net, info = fit_gru_to_series(
            data, hidden_size=args.hidden, num_layers=args.layers, window=window, stride=args.stride,
            val_size=val_size, batch_size=args.batch_size, max_epochs=args.epochs, lr=args.lr,
            patience=args.patience, seed=seed, loss_skip_first=min(args.loss_skip_first, window // 4),
            weight_decay=args.weight_decay, zero_head=args.zero_head, val_skip_lead_in=args.val_skip_lead_in,
        )
        with torch.no_grad():
            preds.append(data.test_predictions(predict_series(net, data.features, mode="full").numpy()))
        infos.append(info)
        print(f"  {name} seed {seed}: RMSE {rmse(preds[-1]):.4f}, epochs {info['epochs_run']}", flush=True)
    per_seed = [rmse(p) for p in preds]
    mean, std = float(np.mean(per_seed)), float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0
    best_name = min(baselines, key=baselines.get)
    best = baselines[best_name]
    return {
        "series": name, "values": len(data.series), "test_size": test_size, "features": data.num_features,
        "window": window, "val_size": val_size, "adapted": adapted, "baselines": baselines, "best_baseline": best_name,
        "per_seed": per_seed, "mean": mean, "std": std, "ensemble": rmse(np.mean(preds, axis=0)),
        "epochs": [i["epochs_run"] for i in infos], "seconds": time.perf_counter() - start,
        "margin_in_std": (best - mean) / std if std > 0 else float("inf") if best > mean else float("-inf"),
        "pass": best - mean > 2 * std,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    recipe = bundle_recipe()
    ap.add_argument("--series", nargs="+", default=list(TEST_SIZE), choices=sorted(STATSMODELS_SERIES))
    ap.add_argument("--test-size", type=int, default=0, help="held-out tail (0: each series' default)")
    ap.add_argument("--val-size", type=int, default=recipe["val_size"], dest="val_size")
    ap.add_argument("--hidden", type=int, default=recipe["hidden"])
    ap.add_argument("--layers", type=int, default=recipe["layers"])
    ap.add_argument("--window", type=int, default=recipe["window"])
    ap.add_argument("--stride", type=int, default=recipe["stride"])
    ap.add_argument("--batch-size", type=int, default=recipe["batch_size"], dest="batch_size")
    ap.add_argument("--epochs", type=int, default=recipe["epochs"])
    ap.add_argument("--patience", type=int, default=recipe["patience"])
    ap.add_argument("--lr", type=float, default=recipe["lr"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--loss-skip-first", type=int, default=recipe["loss_skip_first"], dest="loss_skip_first")
    ap.add_argument("--target", choices=TARGETS, default=recipe["target"],
                    help="what the GRU predicts: the next standardised value, its change from the last one, or the "
                    "residual of the linear AR(AIC) forecast (hybrid; the AR forecast is also an input)")
    ap.add_argument("--weight-decay", type=float, default=recipe["weight_decay"], dest="weight_decay",
                    help="AdamW's decoupled weight decay")
    ap.add_argument("--zero-head", type=lambda v: parse_bool(v, "--zero-head"), default=parse_bool(recipe["zero_head"]),
                    dest="zero_head", help="start the GRU's output layer at zero (true/false)")
    ap.add_argument("--val-skip-lead-in", type=lambda v: parse_bool(v, "--val-skip-lead-in"),
                    default=parse_bool(recipe["val_skip_lead_in"]), dest="val_skip_lead_in",
                    help="score only the validation steps, not the training lead-in of each window (true/false)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--markdown", default=None, help="also write the table to this markdown file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from_bundle = all(getattr(args, k) == v for k, v in recipe.items())

    results = []
    for name in args.series:
        print(f"{name}: training {len(args.seeds)} seeds", flush=True)
        results.append(run_series(name, args))

    lines = [
        f"Recipe: {'the GRU bundle train.json' if from_bundle else 'train.json with overrides'}: hidden {args.hidden}, "
        f"layers {args.layers}, window {args.window}, stride {args.stride}, batch {args.batch_size}, lr {args.lr}, "
        f"at most {args.epochs} epochs, patience {args.patience}, validation {args.val_size} head steps, first "
        f"{args.loss_skip_first} steps of each window out of the loss, AdamW weight decay {args.weight_decay}, "
        f"output layer started at zero: {args.zero_head}, validation lead-in scored: {not args.val_skip_lead_in}; "
        f"GRU target: {args.target}; seeds {args.seeds}. "
        "RMSE in the series' units, "
        "held-out tail scored one step ahead from the true past.",
        "",
        f"| series | values / held out | persistence | linear AR (AIC) | seasonal-anomaly AR (AIC) | VAR (AIC) | "
        f"GRU mean +- std ({len(args.seeds)} seeds) | GRU seeds' mean forecast | GRU mean vs best baseline | "
        "best baseline - GRU mean, in std | target met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b = r["baselines"]

        def cell(prefix: str, absent: str) -> str:
            found = [(k, v) for k, v in b.items() if k.startswith(prefix)]
            return f"{found[0][1]:.4g} (p={found[0][0].split(')')[0].split('(')[1]})" if found else absent

        note = f" (window {r['window']}, validation {r['val_size']})" if r["adapted"] else ""
        lines.append(
            f"| {r['series']}{note} | {r['values']} / {r['test_size']} | {b['persistence']:.4g} | "
            f"{cell('linear AR', 'n/a')} | {cell('seasonal-anomaly AR', 'n/a (no period)')} | "
            f"{cell('VAR', 'n/a (univariate)')} | {r['mean']:.4g} +- {r['std']:.2g} | {r['ensemble']:.4g} | "
            f"{100 * (r['mean'] / b[r['best_baseline']] - 1):+.2f} % | {r['margin_in_std']:+.1f} | "
            f"{'yes' if r['pass'] else 'NO'} |"
        )
    lines += ["", "Per-seed RMSE and epochs run:", ""]
    for r in results:
        lines.append(
            f"- {r['series']}: " + ", ".join(f"{v:.4g}" for v in r["per_seed"]) + f"; epochs {r['epochs']}; "
            f"{r['seconds']:.0f} s for all seeds"
        )
    ok = all(r["pass"] for r in results)
    verdict = "yes" if ok else "NO"
    lines += ["", f"GRU below every baseline by more than 2 std of the seed spread on every series: {verdict}"]
    text = "\n".join(lines)
    print(text)
    if args.json or args.markdown:
        from monai_glue import atomic_open

        if args.json:
            with atomic_open(args.json) as f:
                json.dump({"args": vars(args), "results": results}, f, indent=2)
        if args.markdown:
            with atomic_open(args.markdown) as f:
                f.write(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
