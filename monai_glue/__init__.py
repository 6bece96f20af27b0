"""Glue shared by ``monai_sadaan`` and ``seq_models``, depending on neither: MONAI engine adapters for dict
targets and dict outputs, atomic writes, safe checkpoint loading, strict parsing of config switches, and the
locator of the shipped bundles.

=========================== ===========================================================================
module                      what it holds
=========================== ===========================================================================
:mod:`.prepare_batch`       :class:`DictTargetPrepareBatch`: a batch with several targets for MONAI engines
:mod:`.loss_adapter`        :class:`ComponentLoss`, :class:`LossComponentsHandler`: a loss returning a dict
:mod:`.output_transforms`   :class:`PickFromDictOutput`: one tensor of a network's dict output for metrics
:mod:`.atomic`              atomic files and folders (temporary name, then rename), guarded output folders
:mod:`.checkpoint`          ``torch.load(..., weights_only=True)`` with clear errors, :class:`SafeCheckpointLoader`
:mod:`.config_values`       :func:`parse_bool`, :func:`parse_device` for values from configs and command lines
:mod:`.bundles`             where the bundles are (checkout or wheel) and the ``sadaan-bundle`` command
:mod:`.lazy_names`          :func:`lazy_names`: package attributes imported on first use
=========================== ===========================================================================

Names are imported lazily, so ``from monai_glue import parse_bool`` does not import MONAI's engines.
"""

from __future__ import annotations

from .lazy_names import lazy_names

_LAZY: dict[str, str] = {
    "DictTargetPrepareBatch": "monai_glue.prepare_batch",
    "ComponentLoss": "monai_glue.loss_adapter",
    "LossComponentsHandler": "monai_glue.loss_adapter",
    "PickFromDictOutput": "monai_glue.output_transforms",
    "OutputFolderError": "monai_glue.atomic",
    "atomic_directory": "monai_glue.atomic",
    "atomic_open": "monai_glue.atomic",
    "atomic_torch_save": "monai_glue.atomic",
    "atomic_write_with": "monai_glue.atomic",
    "CheckpointError": "monai_glue.checkpoint",
    "SafeCheckpointLoader": "monai_glue.checkpoint",
    "load_checkpoint": "monai_glue.checkpoint",
    "load_state_dict_checked": "monai_glue.checkpoint",
    "unwrap_model": "monai_glue.checkpoint",
    "parse_bool": "monai_glue.config_values",
    "parse_device": "monai_glue.config_values",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_names(__name__, _LAZY)
