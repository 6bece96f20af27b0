"""Synthetic CT-like abdominal phantoms with absence scenarios, whole-trunk phantoms cut to clinical fields of view
(:mod:`monai_sadaan.data.trunk`), their writers, decathlon-style datalists, and the converter of public data set
layouts (TotalSegmentator, Decathlon / nnU-Net, image and label folders) to them."""

from __future__ import annotations

from .datalist import SPLITS, DatalistError, load_datalist, write_phantom_dataset
from .dataset_layouts import (
    LABEL_NAME_SYNONYMS,
    LAYOUTS,
    TOTALSEGMENTATOR_V2_CLASSES,
    DatasetLayoutError,
    DatasetSource,
    SubjectSource,
    check_datalist_structures,
    convert_dataset,
    label_name_key,
    presence_pattern_name,
    read_dataset_layout,
    read_label_table,
    resolve_structure_mapping,
    split_by_presence_pattern,
)
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
from .scenarios import REMOVABLE_ORGANS, SCENARIOS, TRUNK_SCENARIOS, FieldOfViewCut, check_scenarios
from .trunk import FIELDS_OF_VIEW, TrunkPhantom, generate_trunk_phantom
from .trunk.dataset import write_trunk_dataset
from .writers import phantom_to_sitk, save_phantom, save_phantom_dicom_series, save_volume

__all__ = [
    "DEFAULT_STRUCTURES",
    "FIELDS_OF_VIEW",
    "KNOWN_STRUCTURES",
    "LABEL_NAME_SYNONYMS",
    "LAYOUTS",
    "REMOVABLE_ORGANS",
    "SCENARIOS",
    "SPLITS",
    "TISSUE_HU",
    "TOTALSEGMENTATOR_V2_CLASSES",
    "TRUNK_SCENARIOS",
    "DatalistError",
    "DatasetLayoutError",
    "DatasetSource",
    "FieldOfViewCut",
    "Phantom",
    "SubjectSource",
    "TrunkPhantom",
    "affine_to_itk_geometry",
    "check_datalist_structures",
    "check_scenarios",
    "check_structures",
    "convert_dataset",
    "generate_phantom",
    "generate_trunk_phantom",
    "itk_geometry_to_affine",
    "label_name_key",
    "load_datalist",
    "orientation_affine",
    "parse_orientation",
    "phantom_to_sitk",
    "plot_phantom_overview",
    "presence_pattern_name",
    "read_dataset_layout",
    "read_label_table",
    "resolve_structure_mapping",
    "save_phantom",
    "save_phantom_dicom_series",
    "save_volume",
    "split_by_presence_pattern",
    "structure_presence",
    "write_phantom_dataset",
    "write_trunk_dataset",
]
