"""Synthetic CT-like abdominal phantoms with absence scenarios, whole-trunk phantoms cut to clinical fields of view
(:mod:`monai_sadaan.data.trunk`), their writers, decathlon-style datalists, and the converter of public data set
layouts (TotalSegmentator, Decathlon / nnU-Net, image and label folders) to them."""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names, names_by_module

_LAZY: dict[str, str] = names_by_module(
    {
        "monai_sadaan.data.phantoms": (
            "DEFAULT_STRUCTURES", "KNOWN_STRUCTURES", "TISSUE_HU", "Phantom", "check_structures", "generate_phantom",
            "structure_presence",
        ),
        "monai_sadaan.data.trunk": ("FIELDS_OF_VIEW", "TrunkPhantom", "generate_trunk_phantom"),
        "monai_sadaan.data.dataset_layouts": (
            "LABEL_NAME_SYNONYMS", "LAYOUTS", "TOTALSEGMENTATOR_V2_CLASSES", "DatasetLayoutError", "DatasetSource",
            "SubjectSource", "check_datalist_structures", "convert_dataset", "label_name_key",
            "presence_pattern_name", "read_dataset_layout", "read_label_table", "resolve_structure_mapping",
            "split_by_presence_pattern",
        ),
        "monai_sadaan.data.scenarios": (
            "REMOVABLE_ORGANS", "SCENARIOS", "TRUNK_SCENARIOS", "FieldOfViewCut", "check_scenarios",
        ),
        "monai_sadaan.data.datalist": ("SPLITS", "DatalistError", "load_datalist", "write_phantom_dataset"),
        "monai_sadaan.data.geometry": (
            "affine_to_itk_geometry", "itk_geometry_to_affine", "orientation_affine", "parse_orientation",
            "ras_to_lps", "voxel_volume_ml",
        ),
        "monai_sadaan.data.writers": ("phantom_to_sitk", "save_phantom", "save_phantom_dicom_series", "save_volume"),
        "monai_sadaan.data.preview": ("plot_phantom_overview",),
        "monai_sadaan.data.trunk.dataset": ("write_trunk_dataset",),
    }
)  # fmt: skip

__all__ = sorted(_LAZY)

__getattr__ = lazy_names(__name__, _LAZY)
