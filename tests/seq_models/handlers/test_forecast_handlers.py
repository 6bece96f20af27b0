"""Forecast handlers (:mod:`seq_models.handlers.forecast_handlers`): the score report pools pixels like the metrics;
the writer handler stages files and aborts on an exception."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from seq_models.handlers import ForecastScoreReport, ForecastWriterHandler
from seq_models.writers.forecast_writer import FORECAST_MANIFEST


def test_score_report_pools_pixels_like_the_metrics(tmp_path):
    class Engine:
        class state:
            output = None

    report = ForecastScoreReport(tmp_path, baselines=("persistence",))
    history = torch.rand(2, 3, 2, 8, 8)
    truth = torch.rand(2, 2, 2, 8, 8)
    Engine.state.output = {"image": history, "pred": truth.clone(), "label": {"target": truth}}
    report.update(Engine)
    results = report.results()
    np.testing.assert_allclose(results["IAM4VP"]["mae"], 0.0)
    expected = (history[:, -1:].expand(-1, 2, -1, -1, -1) - truth).abs().mean(dim=(0, 3, 4)).numpy()
    np.testing.assert_allclose(results["persistence"]["mae"], expected, rtol=1e-5)
    report.write()
    assert (tmp_path / "mae_by_lead.png").exists() and (tmp_path / "summary.json").exists()


def test_the_handler_stages_files_and_aborts_on_an_exception(tmp_path):
    from ignite.engine import Engine, Events

    history, pred = torch.rand(1, 2, 11, 8, 8), torch.rand(1, 2, 11, 8, 8)

    def step(engine, batch):
        if batch == 1:
            raise RuntimeError("disk full")
        return {"image": history, "pred": pred, "label": None}

    engine = Engine(step)
    handler = ForecastWriterHandler(tmp_path / "out", write_png=False)
    handler.attach(engine)
    engine.run([0, 0], max_epochs=1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["forecast_00000.nc", "forecast_00001.nc", FORECAST_MANIFEST]
    with pytest.raises(RuntimeError, match="disk full"):
        engine.run([0, 0, 1], max_epochs=1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["forecast_00000.nc", "forecast_00001.nc", FORECAST_MANIFEST]
    assert engine.has_event_handler(handler._failed, Events.EXCEPTION_RAISED)
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".forecast-staging-")]
