from __future__ import annotations

from .checkpoint_loader import SafeCheckpointLoader
from .scenario_report import ScenarioMetricsReport, summarise_case_rows
from .training_state import TrainingStateCheckpoint

__all__ = ["SafeCheckpointLoader", "ScenarioMetricsReport", "summarise_case_rows", "TrainingStateCheckpoint"]
