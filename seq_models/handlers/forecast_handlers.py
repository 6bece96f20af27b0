"""Ignite handlers for IAM4VP evaluators: write forecasts (files + PNG strips) and score them against baselines."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.engines import Workflow

from monai_glue import atomic_open, atomic_write_with, parse_bool
from seq_models.baselines import optical_flow_forecast, persistence_forecast
from seq_models.metrics.forecast_metrics import per_sample_forecast_metrics
from seq_models.writers.forecast_writer import ForecastRun, forecast_dataset, plot_forecast_strips, write_forecast

__all__ = ["ForecastScoreReport", "ForecastWriterHandler"]


def _batch_parts(output: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    if not isinstance(output, dict) or "pred" not in output:
        raise TypeError("expected engine.state.output to be a dict with 'pred' (run the evaluator with decollate=False)")
    label = output.get("label")
    truth = label.get("target") if isinstance(label, dict) else label
    return output["image"], output["pred"], truth


class ForecastWriterHandler:
    """After each iteration, write every sample's forecast as NetCDF or Zarr and one PNG strip per channel group.

    Files: ``<output_dir>/forecast_<n>.nc`` (or ``.zarr``) holding ``forecast``, ``history`` and, when the batch
    has targets, ``truth``; ``<output_dir>/forecast_<n>_<group>.png``; ``<output_dir>/forecast_manifest.json``
    listing them. A run's files are staged in a hidden folder and swapped in when the engine completes
    (:class:`~seq_models.writers.forecast_writer.ForecastRun`): they replace exactly the files the previous run
    listed, so a shorter run leaves no stale forecasts of a longer one; a failed run changes nothing; files this
    tool did not write are never deleted (a ``forecast_<n>*`` file the manifest does not list makes the run
    refuse to start, naming it).

    Args:
        output_dir: folder for the outputs.
        file_format: ``"nc"`` or ``"zarr"``.
        channel_names: names of the channels (SEVIRI order by default).
        step_minutes: minutes between frames.
        write_png: also draw the strips.

    Used without :meth:`attach` (calling the handler directly), call :meth:`commit` after the last batch.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        file_format: str = "nc",
        channel_names: Sequence[str] | None = None,
        step_minutes: int = 15,
        write_png: bool = True,
    ) -> None:
        if file_format not in ("nc", "zarr"):
            raise ValueError(f"expected file_format 'nc' or 'zarr', got {file_format!r}")
        self.output_dir = Path(output_dir)
        self.file_format = file_format
        self.channel_names = channel_names
        self.step_minutes = step_minutes
        self.write_png = parse_bool(write_png, "write_png")
        self.count = 0
        self.written: list[Path] = []
        self.run = ForecastRun(self.output_dir)

    def attach(self, engine: Workflow) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, lambda _: self.begin())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, lambda _: self.commit())
        engine.add_event_handler(Events.EXCEPTION_RAISED, self._failed)

    def begin(self) -> None:
        """Start a run: check the output folder, stage the files of this run from sample 0."""
        self.run.begin()
        self.count = 0
        self.written = []

    def commit(self) -> list[Path]:
        """Swap this run's files into ``output_dir``; return their paths."""
        self.written = self.run.commit()
        return self.written

    def _failed(self, engine: Workflow, e: BaseException) -> None:
        self.run.abort()  # no partial output: the folder keeps the previous run's files
        raise e

    def __call__(self, engine: Workflow) -> None:
        if self.run.staging is None:
            self.begin()
        history, pred, truth = _batch_parts(engine.state.output)
        for i in range(pred.shape[0]):
            ds = forecast_dataset(
                pred[i].detach().cpu().numpy(),
                history=history[i].detach().cpu().numpy(),
                truth=None if truth is None else truth[i].detach().cpu().numpy(),
                channel_names=self.channel_names,
                step_minutes=self.step_minutes,
                attrs={"model": "IAM4VP", "sample": self.count},
            )
            stem = self.run.path(f"forecast_{self.count:05d}.{self.file_format}")
            write_forecast(ds, stem)
            if self.write_png:
                plot_forecast_strips(ds, stem.with_suffix(""))
            self.count += 1


class ForecastScoreReport:
    """Score the model's forecasts and the baselines' on the same batches; write tables when the run ends.

    Per method, lead time and channel: MAE, MSE, SSIM pooled over all valid pixels (NaN-aware, inside ``mask``).
    Outputs: ``scores.csv`` (method, lead_minutes, channel, mae, mse, ssim, pixels), ``summary.json`` (per method
    and lead time, means over channels) and ``mae_by_lead.png``.

    Args:
        output_dir: folder for the outputs.
        baselines: any of ``"persistence"``, ``"optical_flow"``.
        mask: region mask ``(H, W)``.
        channel_names: names of the channels.
        step_minutes: minutes between frames.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        baselines: Sequence[str] = ("persistence", "optical_flow"),
        mask: torch.Tensor | None = None,
        channel_names: Sequence[str] | None = None,
        step_minutes: int = 15,
    ) -> None:
        unknown = [b for b in baselines if b not in ("persistence", "optical_flow")]
        if unknown:
            raise ValueError(f"expected baselines among 'persistence', 'optical_flow', got {unknown}")
        self.output_dir = Path(output_dir)
        self.baselines = tuple(baselines)
        self.mask = mask
        self.channel_names = channel_names
        self.step_minutes = step_minutes
        self._sums: dict[str, dict[str, np.ndarray]] = {}

    def attach(self, engine: Workflow) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self._sums.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, lambda _: self.write())

    def forecasts(self, history: torch.Tensor, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        steps = pred.shape[1]
        out = {"IAM4VP": pred.detach().float().cpu()}
        hist = history.detach().float().cpu()
        if "persistence" in self.baselines:
            out["persistence"] = persistence_forecast(hist, steps)
        if "optical_flow" in self.baselines:
            out["optical_flow"] = optical_flow_forecast(hist, steps)
        return out

    def update(self, engine: Workflow) -> None:
        history, pred, truth = _batch_parts(engine.state.output)
        if truth is None:
            raise ValueError("expected targets in the batch to score forecasts, got none")
        for method, forecast in self.forecasts(history, pred).items():
            per = per_sample_forecast_metrics(forecast, truth.detach().float().cpu(), self.mask)
            count = per["count"]
            sums = self._sums.setdefault(method, {"count": 0.0, "mae": 0.0, "mse": 0.0, "ssim": 0.0})
            sums["count"] = sums["count"] + count.sum(0).numpy()
            for key in ("mae", "mse", "ssim"):
                sums[key] = sums[key] + (torch.nan_to_num(per[key]) * count).sum(0).numpy()

    def results(self) -> dict[str, dict[str, np.ndarray]]:
        """Per method: ``{"mae", "mse", "ssim", "count"}`` arrays ``(K, C)``."""
        out = {}
        for method, sums in self._sums.items():
            count = np.asarray(sums["count"], dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[method] = {k: np.where(count > 0, sums[k] / count, np.nan) for k in ("mae", "mse", "ssim")}
            out[method]["count"] = count
        return out

    def write(self) -> None:
        results = self.results()
        if not results:
            return
        k, c = next(iter(results.values()))["mae"].shape
        names = list(self.channel_names) if self.channel_names else [f"channel_{i}" for i in range(c)]
        with atomic_open(self.output_dir / "scores.csv", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["method", "lead_minutes", "channel", "mae", "mse", "ssim", "pixels"])
            for method, r in results.items():
                for i in range(k):
                    for j in range(c):
                        writer.writerow([method, (i + 1) * self.step_minutes, names[j], f"{r['mae'][i, j]:.6f}",
                                         f"{r['mse'][i, j]:.6f}", f"{r['ssim'][i, j]:.6f}", int(r["count"][i, j])])
        summary = {
            method: {
                key: [float(np.nanmean(r[key][i])) for i in range(k)] for key in ("mae", "mse", "ssim")
            } | {"lead_minutes": [(i + 1) * self.step_minutes for i in range(k)]}
            for method, r in results.items()
        }
        with atomic_open(self.output_dir / "summary.json") as f:
            json.dump(summary, f, indent=2)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for method, s in summary.items():
            ax.plot(s["lead_minutes"], s["mae"], marker="o", label=method)
        ax.set_xlabel("lead time (min)")
        ax.set_ylabel("MAE")
        ax.legend()
        fig.tight_layout()
        with atomic_write_with(self.output_dir / "mae_by_lead.png") as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
