"""Whole-trunk synthetic CT phantoms (neck to pelvic floor) cut to clinical fields of view.

See :func:`generate_trunk_phantom` and ``docs/phantoms.md`` (section "Whole-trunk phantoms").
"""

from __future__ import annotations

from .generator import (
    DEFAULT_FOV_WEIGHTS,
    FIELDS_OF_VIEW,
    TRUNK_GENERATOR_VERSION,
    TrunkPhantom,
    check_fov_weights,
    generate_trunk_phantom,
)
from .physics import INTENSITY_MODES, PHASES, TISSUES, TRUNK_TISSUE_HU

__all__ = [
    "DEFAULT_FOV_WEIGHTS",
    "FIELDS_OF_VIEW",
    "INTENSITY_MODES",
    "PHASES",
    "TISSUES",
    "TRUNK_GENERATOR_VERSION",
    "TRUNK_TISSUE_HU",
    "TrunkPhantom",
    "check_fov_weights",
    "generate_trunk_phantom",
]
