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
:mod:`.checkpoint`          ``torch.load(..., weights_only=True)`` with clear errors, :class:`SafeCheckpointLoader`,
                            wrappers whose state dict is their network's (:class:`StateOfWrappedModel`)
:mod:`.config_values`       :func:`parse_bool`, :func:`parse_device` for values from configs and command lines
:mod:`.bundles`             where the bundles are (checkout or wheel) and the ``sadaan-bundle`` command
:mod:`.lazy_names`          :func:`lazy_names`: package attributes imported on first use
=========================== ===========================================================================

Names are imported lazily, so ``from monai_glue import parse_bool`` does not import MONAI's engines.
"""

from __future__ import annotations

from .lazy_names import lazy_names, names_by_module

_LAZY: dict[str, str] = names_by_module(
    {
        "monai_glue.prepare_batch": ("DictTargetPrepareBatch",),
        "monai_glue.loss_adapter": ("ComponentLoss", "LossComponentsHandler"),
        "monai_glue.output_transforms": ("PickFromDictOutput",),
        "monai_glue.atomic": (
            "OutputFolderError", "atomic_directory", "atomic_open", "atomic_torch_save", "atomic_write_with",
        ),
        "monai_glue.checkpoint": (
            "CheckpointError", "SafeCheckpointLoader", "StateOfWrappedModel", "load_checkpoint",
            "load_state_dict_checked", "unwrap_model",
        ),
        "monai_glue.config_values": ("parse_bool", "parse_device"),
    }
)  # fmt: skip

__all__ = sorted(_LAZY)


__getattr__ = lazy_names(__name__, _LAZY)
