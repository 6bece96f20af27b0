from __future__ import annotations

from .prefetch import PrefetchDataLoader
from .whole_volume import WholeVolumeInferer

__all__ = ["PrefetchDataLoader", "WholeVolumeInferer"]
