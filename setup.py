"""Build step that puts the repository's top-level ``bundles/`` into the wheel (metadata lives in setup.cfg).

A wheel (``pip install .``, ``pip wheel .``, ``python -m build``) carries each bundle under
``monai_glue/bundles/<name>/``, where :func:`monai_glue.bundles.bundle_root` finds it. Only what a bundle
ships is copied: ``LICENSE``, ``configs/``, ``docs/``, ``models/model.pt`` and weights trained on real data
(``models/real_*/model.pt``), with ``models/README.md``; local
data, outputs, checkpoints and training states are left out. An editable install copies nothing: the package
then finds the checkout's ``bundles/``. The sdist carries the same files through MANIFEST.in.
"""

from __future__ import annotations

import fnmatch
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLES = os.path.join(HERE, "bundles")
#: files of a bundle that go into the wheel, relative to the bundle's folder (fnmatch patterns, each matching at its
#: own depth only; of the subfolders of models/ only the real-data weights, never run folders)
SHIPPED = ("LICENSE", "configs/*", "docs/*", "models/model.pt", "models/real_*/model.pt", "models/README.md")


def bundle_files(bundle_dir: str) -> list[str]:
    """The files of one bundle that ship, relative to ``bundle_dir``, sorted."""
    out = []
    for folder, dirs, files in os.walk(bundle_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for f in files:
            rel = os.path.relpath(os.path.join(folder, f), bundle_dir).replace(os.sep, "/")
            if any(fnmatch.fnmatchcase(rel, p) and rel.count("/") == p.count("/") for p in SHIPPED):
                out.append(rel)
    return sorted(out)


class build_py_with_bundles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or not os.path.isdir(BUNDLES):
            return
        target = os.path.join(self.build_lib, "monai_glue", "bundles")
        for name in sorted(os.listdir(BUNDLES)):
            src = os.path.join(BUNDLES, name)
            if not os.path.isfile(os.path.join(src, "configs", "metadata.json")):
                continue
            dst = os.path.join(target, name)
            if os.path.isdir(dst):
                shutil.rmtree(dst)  # a stale copy from an earlier build
            for rel in bundle_files(src):
                os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel))


setup(cmdclass={"build_py": build_py_with_bundles})
