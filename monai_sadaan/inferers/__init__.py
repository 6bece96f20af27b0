from __future__ import annotations

from .prefetch import PrefetchDataLoader, threads_beside_prefetch
from .whole_volume import WholeVolumeInferer

__all__ = ["PrefetchDataLoader", "WholeVolumeInferer", "threads_beside_prefetch"]
