"""SADAAn writers: NIfTI label map and probability maps, 3D Slicer ``.seg.nrrd``, colour table, presence report.

Every writer takes a label map indexed ``[i, j, k]`` plus a 4x4 voxel-to-RAS affine (or a MONAI MetaTensor that
carries its affine), writes atomically, and raises a clear error on bad input.

=============================== ======================================================================================
module                          what it holds
=============================== ======================================================================================
:mod:`.structures`              the structure table (names, labels, colours, SNOMED CT terminology) and its colour table
:mod:`.nifti`                   the checks of a label map and its affine, the NIfTI label map and probability maps
:mod:`.slicer_segmentation`     the 3D Slicer ``.seg.nrrd``
:mod:`.presence`                the presence report (JSON and CSV)
:mod:`.case_writer`             every output of one case, all or nothing (:class:`SaveSADAAnOutputsd`)
:mod:`.run_outputs`             marked case folders and the all-or-nothing run (:class:`InferenceRun`)
:mod:`.overview`                the demo's overview PNG
=============================== ======================================================================================

Names are imported on first use: a run that writes no ``.seg.nrrd`` does not import its writer.
"""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names, names_by_module

_LAZY: dict[str, str] = names_by_module(
    {
        "monai_sadaan.data.geometry": ("ras_to_lps", "voxel_volume_ml"),  # the grid's geometry has one home
        "monai_sadaan.io.case_writer": (
            "CASE_FILE_SUFFIXES", "SADAAnCaseWriter", "SaveSADAAnOutputsd", "case_name_from_path", "safe_case_name",
        ),
        "monai_sadaan.io.nifti": ("labelmap_and_affine", "write_label_map_nifti", "write_probability_maps"),
        "monai_sadaan.io.presence": (
            "CALL_TEXT", "PRESENCE_COLUMNS", "PRESENT_VALUE", "StructurePresence", "presence_rows",
            "present_without_voxels", "read_presence_report", "report_findings", "withheld_call_reasons",
            "withhold_presence_calls", "write_presence_report",
        ),
        "monai_sadaan.io.slicer_segmentation": (
            "ABSENT_MODES", "STATUS_ABSENT", "STATUS_PRESENT", "STATUS_WITHHELD", "build_slicer_segmentation",
            "write_slicer_segmentation",
        ),
        "monai_sadaan.io.run_outputs": (
            "CASE_MARKER", "RUN_MANIFEST", "InferenceRun", "InferenceRunFailed", "OutputFolderError",
            "case_folder_problems", "read_case_marker", "register_case_files",
        ),
        "monai_sadaan.io.structures": (
            "COLOUR_TABLE_COLUMNS", "DEFAULT_STRUCTURE_NAMES", "StructureInfo", "read_colour_table", "structure_colours",
            "structure_info", "structure_table", "terminology_dict", "terminology_string", "write_colour_table",
        ),
    }
)  # fmt: skip

__all__ = sorted(_LAZY)

__getattr__ = lazy_names(__name__, _LAZY)
