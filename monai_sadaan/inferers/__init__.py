from __future__ import annotations

from .whole_volume import WholeVolumeInferer

__all__ = ["WholeVolumeInferer"]
