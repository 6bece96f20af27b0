from __future__ import annotations

from .model_setup import (
    PresenceHeadTuning,
    init_output_priors,
    load_pretrained_encoder,
    load_pretrained_network,
    load_widened_network,
    presence_head_parameter_groups,
)
from .presence_fusion_fitting import (
    collect_presence_evidence,
    fit_presence_fusion,
    fit_presence_regression,
    fit_presence_rule,
    save_presence_fusion_fit,
)

__all__ = [
    "PresenceHeadTuning",
    "collect_presence_evidence",
    "fit_presence_fusion",
    "fit_presence_regression",
    "fit_presence_rule",
    "init_output_priors",
    "load_pretrained_encoder",
    "load_pretrained_network",
    "load_widened_network",
    "presence_head_parameter_groups",
    "save_presence_fusion_fit",
]
