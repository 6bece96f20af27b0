"""Synthetic CT-like abdominal phantoms with absence scenarios, whole-trunk phantoms cut to clinical fields of view
(:mod:`monai_sadaan.data.trunk`), their writers, decathlon-style datalists, and the converter of public data set
layouts (TotalSegmentator, Decathlon / nnU-Net, image and label folders) to them."""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names

_LAZY: dict[str, str] = {
    "DEFAULT_STRUCTURES": "monai_sadaan.data.phantoms",
    "FIELDS_OF_VIEW": "monai_sadaan.data.trunk",
    "KNOWN_STRUCTURES": "monai_sadaan.data.phantoms",
    "LABEL_NAME_SYNONYMS": "monai_sadaan.data.dataset_layouts",
    "LAYOUTS": "monai_sadaan.data.dataset_layouts",
    "REMOVABLE_ORGANS": "monai_sadaan.data.scenarios",
    "SCENARIOS": "monai_sadaan.data.scenarios",
    "SPLITS": "monai_sadaan.data.datalist",
    "TISSUE_HU": "monai_sadaan.data.phantoms",
    "TOTALSEGMENTATOR_V2_CLASSES": "monai_sadaan.data.dataset_layouts",
    "TRUNK_SCENARIOS": "monai_sadaan.data.scenarios",
    "DatalistError": "monai_sadaan.data.datalist",
    "DatasetLayoutError": "monai_sadaan.data.dataset_layouts",
    "DatasetSource": "monai_sadaan.data.dataset_layouts",
    "FieldOfViewCut": "monai_sadaan.data.scenarios",
    "Phantom": "monai_sadaan.data.phantoms",
    "SubjectSource": "monai_sadaan.data.dataset_layouts",
    "TrunkPhantom": "monai_sadaan.data.trunk",
    "affine_to_itk_geometry": "monai_sadaan.data.geometry",
    "check_datalist_structures": "monai_sadaan.data.dataset_layouts",
    "check_scenarios": "monai_sadaan.data.scenarios",
    "check_structures": "monai_sadaan.data.phantoms",
    "convert_dataset": "monai_sadaan.data.dataset_layouts",
    "generate_phantom": "monai_sadaan.data.phantoms",
    "generate_trunk_phantom": "monai_sadaan.data.trunk",
    "itk_geometry_to_affine": "monai_sadaan.data.geometry",
    "label_name_key": "monai_sadaan.data.dataset_layouts",
    "load_datalist": "monai_sadaan.data.datalist",
    "orientation_affine": "monai_sadaan.data.geometry",
    "parse_orientation": "monai_sadaan.data.geometry",
    "phantom_to_sitk": "monai_sadaan.data.writers",
    "plot_phantom_overview": "monai_sadaan.data.preview",
    "presence_pattern_name": "monai_sadaan.data.dataset_layouts",
    "ras_to_lps": "monai_sadaan.data.geometry",
    "read_dataset_layout": "monai_sadaan.data.dataset_layouts",
    "read_label_table": "monai_sadaan.data.dataset_layouts",
    "resolve_structure_mapping": "monai_sadaan.data.dataset_layouts",
    "save_phantom": "monai_sadaan.data.writers",
    "save_phantom_dicom_series": "monai_sadaan.data.writers",
    "save_volume": "monai_sadaan.data.writers",
    "split_by_presence_pattern": "monai_sadaan.data.dataset_layouts",
    "structure_presence": "monai_sadaan.data.phantoms",
    "voxel_volume_ml": "monai_sadaan.data.geometry",
    "write_phantom_dataset": "monai_sadaan.data.datalist",
    "write_trunk_dataset": "monai_sadaan.data.trunk.dataset",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_names(__name__, _LAZY)
