"""``python -m monai_sadaan.data``: the ``sadaan-phantoms`` command."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
