"""SADAAn served by MONAI Label, the server 3D Slicer's MONAI Label module talks to (guide: docs/slicer.md).

============================ ==========================================================================================
module                       what it holds
============================ ==========================================================================================
:mod:`.inference`            :class:`BundleCaseInference`: the bundle's inference for one image, in process (no
                             ``monailabel`` needed), and :class:`CaseResult` (label map, presence rows, params)
:mod:`.app`                  :class:`SADAAnApp` / :class:`SADAAnInferTask`: the MONAI Label app (needs ``monailabel``)
:mod:`.__main__`             ``python -m monai_sadaan.monailabel app DEST`` / ``serve --studies DIR``
``requirements.txt``         the server environment (``make monailabel`` makes ``.venv-monailabel``)
============================ ==========================================================================================

monailabel 0.8.5 cannot share an environment with monai-sadaan (its pydicom-seg pins jsonschema<4, this package
needs jsonschema>=4), so the server runs from its own environment, into which this package is installed without
its dependencies; ``requirements.txt`` says what it holds and why.
"""

from __future__ import annotations
