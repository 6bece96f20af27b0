from __future__ import annotations

from .atomic import OutputFolderError, atomic_directory, atomic_open, atomic_torch_save, atomic_write_with
from .checkpoint import CheckpointError, load_checkpoint, load_state_dict_checked
from .config_values import parse_bool, parse_device

__all__ = [
    "OutputFolderError",
    "atomic_directory",
    "atomic_open",
    "atomic_torch_save",
    "atomic_write_with",
    "CheckpointError",
    "load_checkpoint",
    "load_state_dict_checked",
    "parse_bool",
    "parse_device",
]
