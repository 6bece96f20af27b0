from __future__ import annotations

from .absent_false_positive import (
    AbsentCleanRateMetric,
    AbsentFalsePositiveVolumeMetric,
    compute_absent_false_positive_volume,
)
from .present_dice import PresentStructureDiceMetric, compute_present_dice
from .presence import PresenceAccuracyMetric, PresenceAUROCMetric, compute_presence_accuracy, compute_presence_auroc

__all__ = [
    "AbsentCleanRateMetric",
    "AbsentFalsePositiveVolumeMetric",
    "compute_absent_false_positive_volume",
    "PresentStructureDiceMetric",
    "compute_present_dice",
    "PresenceAccuracyMetric",
    "PresenceAUROCMetric",
    "compute_presence_accuracy",
    "compute_presence_auroc",
]
