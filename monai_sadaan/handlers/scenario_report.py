"""Per-scenario evaluation report: Dice on present structures, false-positive volume on absent ones, presence
accuracy and AUROC, for every absence scenario (normal, nephrectomy, splenectomy, partial field of view...)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import CommonKeys

from monai_sadaan.metrics import (
    compute_absent_false_positive_volume,
    compute_presence_accuracy,
    compute_presence_auroc,
    compute_present_dice,
)
from monai_glue import atomic_open, atomic_write_with

__all__ = ["ScenarioMetricsReport", "summarise_case_rows"]

SUMMARY_COLUMNS = (
    "scenario",
    "cases",
    "presence_accuracy",
    "presence_auroc",
    "mean_dice_present",
    "absent_structures",
    "absent_clean_rate",
    "mean_fp_volume_ml_absent",
)


def summarise_case_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group per-(case, structure) rows by scenario (plus an ``all`` row) into the summary table.

    Each row needs: case, scenario, present (bool), presence_probability, called_present (bool), dice (float or
    NaN), fp_volume_ml (float or NaN).
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["scenario"]].append(r)
    groups["all"] = list(rows)
    out = []
    for scen in sorted(k for k in groups if k != "all") + ["all"]:
        rs = groups[scen]
        if not rs:
            continue
        probs = torch.tensor([[r["presence_probability"] for r in rs]])
        truth = torch.tensor([[1.0 if r["present"] else 0.0 for r in rs]])
        dices = [r["dice"] for r in rs if r["present"] and not math.isnan(r["dice"])]
        absent = [r for r in rs if not r["present"]]
        out.append(
            {
                "scenario": scen,
                "cases": len({r["case"] for r in rs}),
                "presence_accuracy": float(np.mean([r["called_present"] == r["present"] for r in rs])),
                "presence_auroc": compute_presence_auroc(probs, truth),
                "mean_dice_present": float(np.mean(dices)) if dices else float("nan"),
                "absent_structures": len(absent),
                "absent_clean_rate": float(np.mean([r["fp_volume_ml"] == 0 for r in absent])) if absent else float("nan"),
                "mean_fp_volume_ml_absent": float(np.mean([r["fp_volume_ml"] for r in absent])) if absent else float("nan"),
            }
        )
    return out


def _write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    with atomic_open(path, "w", newline="") as f:
        f.write(buf.getvalue())


def _plot_summary(path: Path, summary: Sequence[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summary if r["scenario"] != "all"]
    names = [r["scenario"] for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, key, title in zip(
        axes,
        ("presence_accuracy", "mean_dice_present", "absent_clean_rate"),
        ("presence accuracy", "mean Dice (present structures)", "absent structures with no predicted voxel"),
    ):
        vals = [0.0 if math.isnan(r[key]) else r[key] for r in rows]
        ax.bar(x, vals, color="tab:blue")
        ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=10)
        for xi, r in zip(x, rows):
            label = "n/a" if math.isnan(r[key]) else f"{r[key]:.2f}"
            ax.text(xi, min(1.0, 0.0 if math.isnan(r[key]) else r[key]) + 0.01, label, ha="center", fontsize=7)
    fig.tight_layout()
    with atomic_write_with(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


class ScenarioMetricsReport:
    """Evaluator handler: scores every case per structure and writes, when the run completes,
    ``per_case.csv`` (one row per case and structure, with the structure's target and predicted voxel counts on the
    model grid, so that calls near the presence threshold can be told apart), ``per_scenario.csv``, ``per_scenario.json`` and
    ``per_scenario.png`` to ``output_dir``.

    Reads, from the engine's batch-form output (``decollate=False``): ``pred["presence_probs"]`` [B, S],
    ``pred["segmentation_masks"]`` [B, S, *spatial], ``label["segmentation_targets"]``, ``label["presence_targets"]``;
    and from the batch: ``scenario_key`` (list of strings) and, optionally, ``voxel_volume_ml_key`` ([B] mL per voxel
    on the model grid).

    Args:
        output_dir: where the report goes.
        structure_names: names of the S structures, in channel order.
        presence_threshold: probability at or above which a structure is called present.
    """

    def __init__(
        self,
        output_dir: str | Path,
        structure_names: Sequence[str],
        presence_threshold: float = 0.5,
        scenario_key: str = "scenario",
        case_key: str = "case",
        voxel_volume_ml_key: str = "voxel_volume_ml",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.structure_names = list(structure_names)
        self.presence_threshold = presence_threshold
        self.scenario_key = scenario_key
        self.case_key = case_key
        self.voxel_volume_ml_key = voxel_volume_ml_key
        self.rows: list[dict[str, Any]] = []
        self.summary: list[dict[str, Any]] = []

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, lambda e: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def update(self, engine: Any) -> None:
        out, batch = engine.state.output, engine.state.batch
        pred, label = out[CommonKeys.PRED], out[CommonKeys.LABEL]
        self.add_batch(
            presence_probs=pred["presence_probs"],
            pred_masks=pred["segmentation_masks"],
            target_masks=label["segmentation_targets"],
            presence_targets=label["presence_targets"],
            scenarios=batch.get(self.scenario_key),
            cases=batch.get(self.case_key),
            voxel_volume_ml=batch.get(self.voxel_volume_ml_key),
        )

    def add_batch(
        self,
        presence_probs: torch.Tensor,
        pred_masks: torch.Tensor,
        target_masks: torch.Tensor,
        presence_targets: torch.Tensor,
        scenarios: Sequence[str] | None = None,
        cases: Sequence[str] | None = None,
        voxel_volume_ml: torch.Tensor | Sequence[float] | None = None,
    ) -> None:
        b, s = presence_probs.shape
        if s != len(self.structure_names):
            raise ValueError(f"expected presence for {len(self.structure_names)} structures, got {s}")
        vv = torch.ones(b) if voxel_volume_ml is None else torch.as_tensor(voxel_volume_ml, dtype=torch.float32).reshape(b)
        dice = compute_present_dice(pred_masks.cpu(), target_masks.cpu())
        fp = compute_absent_false_positive_volume(pred_masks.cpu(), target_masks.cpu(), vv)
        correct = compute_presence_accuracy(presence_probs.cpu(), presence_targets.cpu(), self.presence_threshold)
        target_voxels = (target_masks.detach().cpu().flatten(2) > 0.5).sum(-1)
        predicted_voxels = (pred_masks.detach().cpu().flatten(2) > 0.5).sum(-1)
        for i in range(b):
            case = str(cases[i]) if cases is not None else f"case_{len(self.rows) // s:04d}"
            scen = str(scenarios[i]) if scenarios is not None else "unknown"
            for j, name in enumerate(self.structure_names):
                present = bool(presence_targets[i, j] > 0.5)
                prob = float(presence_probs[i, j])
                self.rows.append(
                    {
                        "case": case,
                        "scenario": scen,
                        "structure": name,
                        "present": present,
                        "presence_probability": prob,
                        "called_present": prob >= self.presence_threshold,
                        "correct": bool(correct[i, j] > 0.5),
                        "dice": float(dice[i, j]),
                        "fp_volume_ml": float(fp[i, j]),
                        "target_voxels": int(target_voxels[i, j]),
                        "predicted_voxels": int(predicted_voxels[i, j]),
                    }
                )

    def write(self, engine: Any = None) -> list[dict[str, Any]]:
        self.summary = summarise_case_rows(self.rows)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        _write_csv(self.output_dir / "per_case.csv", self.rows, list(self.rows[0]) if self.rows else ["case"])
        _write_csv(self.output_dir / "per_scenario.csv", self.summary, SUMMARY_COLUMNS)
        with atomic_open(self.output_dir / "per_scenario.json", "w") as f:
            json.dump(self.summary, f, indent=2, allow_nan=True)
        _plot_summary(self.output_dir / "per_scenario.png", self.summary)
        return self.summary
