"""The IAM4VP bundle at a tiny size, shared by its tests: a copy of its configs and one config run to the end."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from monai.bundle import ConfigWorkflow

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "iam4vp_cloudcasting"

#: the config ids that make the bundle tiny (16 x 16 frames, two steps of history and forecast, latent 4)
TINY: dict[str, Any] = {
    "history_steps": 2,
    "forecast_steps": 2,
    "frame_height": 16,
    "frame_width": 16,
    "latent_channels": 4,
    "num_convolutions_time": 1,
    "batch_size": 4,
    "device": "cpu",
}


def copy_bundle_configs(tmp_path: Path) -> Path:
    """``tmp_path / "bundle"`` holding a copy of the bundle's ``configs``; returns that folder."""
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "configs", bundle / "configs")
    return bundle


def run_config(bundle: Path, config: str, **overrides: Any) -> ConfigWorkflow:
    """Initialise, run and finalise ``configs/<config>`` of ``bundle`` with :data:`TINY` updated by ``overrides``
    (a ``train`` workflow for ``train.json``, ``infer`` otherwise)."""
    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / config),
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(bundle / "configs" / "logging.conf"),
        workflow_type="train" if config == "train.json" else "infer",
        bundle_root=str(bundle),
        **{**TINY, **overrides},
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow


def exception_chain(error: BaseException | None) -> list[BaseException]:
    """``error`` and its causes, outermost first (MONAI wraps a config's error in "Failed to evaluate ...")."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__
    return chain
