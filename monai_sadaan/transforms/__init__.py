"""SADAAn's MONAI transforms, laid out by concern as ``monai.transforms`` is (``array.py`` for the array transforms
``Foo``, ``dictionary.py`` for ``Food`` / ``FooD`` / ``FooDict``):

* ``intensity/``: the CT window (:class:`CTWindow`).
* ``spatial/``: a whole volume to the network's grid and back (:class:`FitToSpatialSize`, :class:`CTToNetworkGrid`;
  ``functional.py``: :class:`NetworkGridRecord`, :func:`input_grid_labels`, :func:`input_grid_probabilities`).
* ``absence/``: augmentations that make structures absent in the image and the label map
  (:class:`RandFieldOfViewCrop`, :class:`RandStructureEdgeCrop`, :class:`RandSyntheticResection`).
* ``targets/``: the training targets derived from the label map once, after the augmentations
  (:class:`LabelMapToStructures`, the target keys).
* ``post/``: the network's output to label maps (:class:`InputGridLabelMapd`, :class:`PresenceAwareLabelMapd`, ...).

The checks they share live with their concern: :func:`check_volume` in ``spatial/functional.py``,
:func:`check_label_map` and :func:`structure_label_values` in ``targets/array.py``.

Every public name is importable from here, e.g. ``monai_sadaan.transforms.CTWindowd`` in a bundle config, and is
imported on first use: inference of one image loads the spatial transforms (with the CT window they apply) and the
post-processing, not the dictionary CT window, the absence augmentations or the targets.
"""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names

_PACKAGE = "monai_sadaan.transforms"


def _variants(stem: str, array_module: str | None, dictionary_module: str) -> dict[str, str]:
    """``stem`` (when it has an array transform), ``{stem}d``, ``{stem}D``, ``{stem}Dict`` -> their modules."""
    table = {f"{stem}{suffix}": f"{_PACKAGE}.{dictionary_module}" for suffix in ("d", "D", "Dict")}
    return table if array_module is None else {stem: f"{_PACKAGE}.{array_module}", **table}


_LAZY: dict[str, str] = {
    **_variants("CTWindow", "intensity.array", "intensity.dictionary"),
    **_variants("FitToSpatialSize", "spatial.array", "spatial.dictionary"),
    **_variants("CTToNetworkGrid", "spatial.array", "spatial.dictionary"),
    **{
        name: f"{_PACKAGE}.spatial.functional"
        for name in ("NetworkGridRecord", "find_network_grid_record", "input_grid_labels", "input_grid_probabilities",
                     "check_volume")
    },
    **{
        name: value
        for stem in ("SADAAnPredictionToItems", "PresenceAwareLabelMap", "InputGridLabelMap", "VoxelVolume")
        for name, value in _variants(stem, None, "post.dictionary").items()
    },
    **{
        name: value
        for stem in ("RandFieldOfViewCrop", "RandStructureEdgeCrop", "RandSyntheticResection")
        for name, value in _variants(stem, "absence.array", "absence.dictionary").items()
    },
    **_variants("LabelMapToStructures", "targets.array", "targets.dictionary"),
    **{
        name: f"{_PACKAGE}.targets.array"
        for name in ("presence_from_masks", "check_label_map", "structure_label_values")
    },
    **{
        name: f"{_PACKAGE}.targets.dictionary"
        for name in ("SEGMENTATION_TARGETS", "PRESENCE_TARGETS", "ATTENTION_TARGETS")
    },
}  # fmt: skip

__all__ = sorted(_LAZY)

__getattr__ = lazy_names(__name__, _LAZY)
