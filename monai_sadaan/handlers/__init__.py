from __future__ import annotations

from .scenario_report import ScenarioMetricsReport, summarise_case_rows

__all__ = ["ScenarioMetricsReport", "summarise_case_rows"]
