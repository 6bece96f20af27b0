"""Synthetic CT-like abdominal phantoms with absence scenarios, their writers, and decathlon-style datalists."""

from __future__ import annotations

from .datalist import SPLITS, DatalistError, load_datalist, write_phantom_dataset
from .geometry import affine_to_itk_geometry, itk_geometry_to_affine, orientation_affine, parse_orientation
from .phantoms import (
    DEFAULT_STRUCTURES,
    KNOWN_STRUCTURES,
    TISSUE_HU,
    Phantom,
    check_structures,
    generate_phantom,
    structure_presence,
)
from .preview import plot_phantom_overview
from .scenarios import REMOVABLE_ORGANS, SCENARIOS, FieldOfViewCut, check_scenarios
from .writers import phantom_to_sitk, save_phantom, save_phantom_dicom_series, save_volume

__all__ = [
    "DEFAULT_STRUCTURES",
    "KNOWN_STRUCTURES",
    "REMOVABLE_ORGANS",
    "SCENARIOS",
    "SPLITS",
    "TISSUE_HU",
    "DatalistError",
    "FieldOfViewCut",
    "Phantom",
    "affine_to_itk_geometry",
    "check_scenarios",
    "check_structures",
    "generate_phantom",
    "itk_geometry_to_affine",
    "load_datalist",
    "orientation_affine",
    "parse_orientation",
    "phantom_to_sitk",
    "plot_phantom_overview",
    "save_phantom",
    "save_phantom_dicom_series",
    "save_volume",
    "structure_presence",
    "write_phantom_dataset",
]
