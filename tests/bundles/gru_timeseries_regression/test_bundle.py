from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "gru_timeseries_regression"


def test_metadata_has_mandatory_keys():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    for key in ("schema", "version", "changelog", "monai_version", "pytorch_version", "numpy_version", "task",
                "description", "authors", "copyright", "network_data_format"):
        assert key in meta, key
    assert set(meta["network_data_format"]) == {"inputs", "outputs"}
    assert (BUNDLE / "LICENSE").is_file() and (BUNDLE / "docs" / "README.md").is_file()


@pytest.mark.slow
def test_train_infer_evaluate_export(tmp_path):
    from monai.bundle import ckpt_export, run

    cfg = BUNDLE / "configs"
    run(config_file=str(cfg / "train.json"), bundle_root=str(tmp_path), max_epochs=2, patience=1, hidden_size=8)
    ckpt = tmp_path / "models" / "model.pt"
    assert ckpt.is_file()
    preds = {}
    for mode in ("full", "sliding_window", "streaming"):
        run(config_file=str(cfg / "inference.json"), bundle_root=str(tmp_path), mode=mode, hidden_size=8,
            window=128, burn_in=64)
        with open(tmp_path / "eval" / f"predictions_{mode}.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 309 and rows[0]["target_step"] == "1"
        preds[mode] = torch.tensor([float(r["prediction"]) for r in rows])
    assert (preds["streaming"] - preds["full"]).abs().max() <= 1e-3  # 6 significant digits in the CSV
    assert (preds["sliding_window"] - preds["full"]).abs().max() <= 1e-2
    run(config_file=[str(cfg / "inference.json"), str(cfg / "evaluate.json")], bundle_root=str(tmp_path), hidden_size=8)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["ar_order"] >= 1 and abs(metrics["gru"] - metrics["gru_streaming"]) < 1e-4
    # predictions are raw sunspot numbers whatever the target kind (a standardised output would sit near 0..3)
    assert 20.0 < float(preds["full"][:-1].mean()) < 80.0
    assert (tmp_path / "eval" / "heldout.png").stat().st_size > 1000
    ts = tmp_path / "models" / "model_single_step.ts"
    ckpt_export(net_id="single_step_def", filepath=str(ts), ckpt_file=str(ckpt), meta_file=str(cfg / "metadata.json"),
                config_file=str(cfg / "inference.json"), bundle_root=str(tmp_path), hidden_size=8)
    scripted = torch.jit.load(str(ts))
    from seq_models.data.series import SeriesRegressionData
    from seq_models.networks.gru_regression import PaddedGRURegressor
    from seq_models.workflows.gru_regression import load_gru_weights

    train_cfg = json.loads((cfg / "train.json").read_text())
    data = SeriesRegressionData.from_statsmodels(
        train_cfg["series"], test_size=train_cfg["test_size"], target=train_cfg["target"]
    )
    batch = load_gru_weights(PaddedGRURegressor(data.num_features, 8, 1), ckpt).eval()
    x = torch.as_tensor(data.features)[None, :50]
    with torch.no_grad():
        ref = batch(x)[0]
        h = scripted.init_hidden(1)
        ys = []
        for t in range(50):
            y, h = scripted(x[:, t], h)
            ys.append(y[0, 0])
    assert (torch.stack(ys) - ref).abs().max() <= 1e-5
