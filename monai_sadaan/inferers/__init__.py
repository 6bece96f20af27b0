"""SADAAn inference: :class:`WholeVolumeInferer` (the whole volume at the network's grid and back),
:class:`PrefetchDataLoader` (the next case read while one is inferred) and the cascade's stage 2
(:class:`CascadeRefined`, :class:`KeepSourced`, :func:`load_refine_network`), each imported on first use: a run with
the cascade switched off never imports it."""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names, names_by_module

_LAZY: dict[str, str] = names_by_module(
    {
        "monai_sadaan.inferers.cascade": ("CascadeRefined", "KeepSourced", "load_refine_network"),
        "monai_sadaan.inferers.prefetch": ("PrefetchDataLoader", "threads_beside_prefetch", "usable_cores"),
        "monai_sadaan.inferers.whole_volume": ("WholeVolumeInferer",),
    }
)

__all__ = sorted(_LAZY)

__getattr__ = lazy_names(__name__, _LAZY)
