from __future__ import annotations

from .parameter_groups import presence_head_parameter_groups
from .presence_fusion_fitting import (
    collect_presence_evidence,
    fit_presence_fusion,
    fit_presence_regression,
    fit_presence_rule,
    save_presence_fusion_fit,
)

__all__ = [
    "collect_presence_evidence",
    "fit_presence_fusion",
    "fit_presence_regression",
    "fit_presence_rule",
    "presence_head_parameter_groups",
    "save_presence_fusion_fit",
]
