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
* ``utils.py``: the shape and structure-table checks they share.

Every public name is importable from here, e.g. ``monai_sadaan.transforms.CTWindowd`` in a bundle config. The
post-processing, absence-augmentation and target names are imported on first use: inference of one image needs only
the intensity and spatial ones (and post-processing needs the network's presence gating, the voxel volume and the
label-map checks).
"""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names

from .intensity.array import CTWindow
from .intensity.dictionary import CTWindowd, CTWindowD, CTWindowDict
from .spatial.array import CTToNetworkGrid, FitToSpatialSize
from .spatial.dictionary import (
    CTToNetworkGridd,
    CTToNetworkGridD,
    CTToNetworkGridDict,
    FitToSpatialSized,
    FitToSpatialSizeD,
    FitToSpatialSizeDict,
)
from .spatial.functional import (
    NetworkGridRecord,
    find_network_grid_record,
    input_grid_labels,
    input_grid_probabilities,
)
from .utils import check_label_map, check_volume, structure_label_values

_PACKAGE = "monai_sadaan.transforms"
_LAZY: dict[str, str] = {
    **{
        name: f"{_PACKAGE}.post.dictionary"
        for stem in ("SADAAnPredictionToItems", "PresenceAwareLabelMap", "InputGridLabelMap", "VoxelVolume")
        for name in (f"{stem}d", f"{stem}D", f"{stem}Dict")
    },
    **{
        name: f"{_PACKAGE}.absence.{'array' if name == stem else 'dictionary'}"
        for stem in ("RandFieldOfViewCrop", "RandStructureEdgeCrop", "RandSyntheticResection")
        for name in (stem, f"{stem}d", f"{stem}D", f"{stem}Dict")
    },
    "LabelMapToStructures": f"{_PACKAGE}.targets.array",
    "presence_from_masks": f"{_PACKAGE}.targets.array",
    **{
        name: f"{_PACKAGE}.targets.dictionary"
        for name in ("LabelMapToStructuresd", "LabelMapToStructuresD", "LabelMapToStructuresDict",
                     "SEGMENTATION_TARGETS", "PRESENCE_TARGETS", "ATTENTION_TARGETS")
    },
}
__getattr__ = lazy_names(__name__, _LAZY)

__all__ = [
    # intensity
    "CTWindow",
    "CTWindowd",
    "CTWindowD",
    "CTWindowDict",
    # spatial
    "FitToSpatialSize",
    "FitToSpatialSized",
    "FitToSpatialSizeD",
    "FitToSpatialSizeDict",
    "CTToNetworkGrid",
    "CTToNetworkGridd",
    "CTToNetworkGridD",
    "CTToNetworkGridDict",
    "NetworkGridRecord",
    "find_network_grid_record",
    "input_grid_labels",
    "input_grid_probabilities",
    # shared checks
    "check_label_map",
    "check_volume",
    "structure_label_values",
    # absence augmentation, targets, post-processing: imported on first use
    *_LAZY,
]
