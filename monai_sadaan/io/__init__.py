"""SADAAn writers: NIfTI label map and probability maps, 3D Slicer ``.seg.nrrd``, colour table, presence report.

Every writer takes a label map indexed ``[i, j, k]`` plus a 4x4 voxel-to-RAS affine (or a MONAI MetaTensor that
carries its affine), writes atomically, and raises a clear error on bad input.
"""

from __future__ import annotations

from monai_sadaan.data.geometry import ras_to_lps, voxel_volume_ml  # the grid's geometry has one home

from .case_writer import CASE_FILE_SUFFIXES, SADAAnCaseWriter, SaveSADAAnOutputsd, case_name_from_path, safe_case_name
from .colour_table import COLOUR_TABLE_COLUMNS, read_colour_table, write_colour_table
from .labelmap import labelmap_and_affine
from .nifti import write_label_map_nifti, write_probability_maps
from .presence import (
    PRESENCE_COLUMNS,
    StructurePresence,
    presence_rows,
    read_presence_report,
    write_presence_report,
)
from .slicer_segmentation import (
    ABSENT_MODES,
    STATUS_ABSENT,
    STATUS_PRESENT,
    build_slicer_segmentation,
    write_slicer_segmentation,
)
from .run_outputs import (
    CASE_MARKER,
    RUN_MANIFEST,
    InferenceRun,
    InferenceRunFailed,
    OutputFolderError,
    case_folder_problems,
    read_case_marker,
    register_case_files,
)
from .structures import (
    DEFAULT_STRUCTURE_NAMES,
    StructureInfo,
    structure_colours,
    structure_info,
    structure_table,
    terminology_dict,
    terminology_string,
)

__all__ = [
    "ABSENT_MODES",
    "CASE_FILE_SUFFIXES",
    "CASE_MARKER",
    "InferenceRun",
    "InferenceRunFailed",
    "OutputFolderError",
    "RUN_MANIFEST",
    "case_folder_problems",
    "read_case_marker",
    "register_case_files",
    "COLOUR_TABLE_COLUMNS",
    "DEFAULT_STRUCTURE_NAMES",
    "PRESENCE_COLUMNS",
    "STATUS_ABSENT",
    "STATUS_PRESENT",
    "SADAAnCaseWriter",
    "SaveSADAAnOutputsd",
    "StructureInfo",
    "StructurePresence",
    "build_slicer_segmentation",
    "case_name_from_path",
    "labelmap_and_affine",
    "presence_rows",
    "ras_to_lps",
    "read_colour_table",
    "read_presence_report",
    "safe_case_name",
    "structure_colours",
    "structure_info",
    "structure_table",
    "terminology_dict",
    "terminology_string",
    "voxel_volume_ml",
    "write_colour_table",
    "write_label_map_nifti",
    "write_presence_report",
    "write_probability_maps",
    "write_slicer_segmentation",
]
