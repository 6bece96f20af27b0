from __future__ import annotations

from .scenario_report import ScenarioMetricsReport, summarise_case_rows
from .training_state import TrainingStateCheckpoint

__all__ = ["ScenarioMetricsReport", "summarise_case_rows", "TrainingStateCheckpoint"]
