"""``python -m monai_sadaan.bundles``: the ``sadaan-bundle`` command (see :mod:`monai_sadaan.bundles`)."""

import sys

from monai_sadaan.bundles import main

if __name__ == "__main__":
    sys.exit(main())
