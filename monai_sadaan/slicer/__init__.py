"""3D Slicer integration: the scripted module ``SADAAn/SADAAn.py`` and its Slicer-free core (:mod:`.core`).

Only the standard library is imported here so that Slicer's Python can import the core.
"""

from __future__ import annotations

from .core import (
    CaseResult,
    InferenceError,
    build_inference_command,
    export_volume,
    find_results,
    prepare_input,
    presence_table,
    read_results,
    run_inference,
)

__all__ = [
    "CaseResult",
    "InferenceError",
    "build_inference_command",
    "export_volume",
    "find_results",
    "prepare_input",
    "presence_table",
    "read_results",
    "run_inference",
]
