"""``python -m monai_glue.bundles``: the ``sadaan-bundle`` command (see :mod:`monai_glue.bundles`)."""

import sys

from monai_glue.bundles import main

if __name__ == "__main__":
    sys.exit(main())
