"""The MONAI bundles that ship with monai-sadaan: where they are, and one command to run them from any folder.

The repository keeps them in ``bundles/`` at its top level. A built wheel carries a copy of each (configs, docs,
``LICENSE`` and ``models/model.pt``) inside this package, ``monai_glue/bundles/<name>/``, copied by
``setup.py``'s build step; an editable install or a checkout finds the repository's ``bundles/`` instead.

    sadaan-bundle list
    sadaan-bundle path sadaan_abdominal_ct_segmentation        # the folder to pass as --bundle_root
    sadaan-bundle run sadaan_abdominal_ct_segmentation --dataset_dir ~/scans --output_dir ~/sadaan_out
    sadaan-bundle run gru_timeseries_regression --configs inference,evaluate --output_dir gru_out
    sadaan-bundle copy iam4vp_cloudcasting ./iam4vp            # a writable copy, to train or fine-tune

``python -m monai_glue.bundles`` is the same command. ``run`` is ``python -m monai.bundle run`` with the
bundle's ``--config_file``, ``--meta_file``, ``--logging_file`` and ``--bundle_root`` filled in; every other
argument (``--key value``) is passed on as a config override, parsed as MONAI's command line parses it.
Without ``--output_dir`` the outputs go to ``./eval`` in the current folder, never into the installed package.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BUNDLE_NAMES",
    "MissingWeights",
    "bundle_root",
    "bundles_dir",
    "list_bundles",
    "require_weights",
    "bundle_command",
    "main",
]

#: the bundles of this repository, by folder name
BUNDLE_NAMES = ("sadaan_abdominal_ct_segmentation", "gru_timeseries_regression", "iam4vp_cloudcasting")


def _is_bundle(folder: Path) -> bool:
    return (folder / "configs" / "metadata.json").is_file()


def bundles_dir() -> Path:
    """The folder that holds the bundle folders: the installed copy next to this module (wheel installs), else the
    repository's top-level ``bundles/`` (checkout, editable install)."""
    here = Path(__file__).resolve().parent
    if any(_is_bundle(here / name) for name in BUNDLE_NAMES):
        return here
    checkout = here.parents[1] / "bundles"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"expected the monai-sadaan bundles in {here} (installed package) or {checkout} (repository checkout), "
        "found neither; reinstall the package from its wheel or repository"
    )


def list_bundles() -> list[str]:
    """Names of the bundles found in :func:`bundles_dir`, sorted."""
    root = bundles_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _is_bundle(p))


def bundle_root(name: str = "sadaan_abdominal_ct_segmentation") -> Path:
    """Absolute path of one bundle, for ``--bundle_root`` (configs use ``$@bundle_root + '/models/model.pt'``).

    Raises:
        FileNotFoundError: no bundle of that name; the message lists the ones there are.
    """
    root = bundles_dir() / name
    if not _is_bundle(root):
        raise FileNotFoundError(f"expected one of the bundles {list_bundles()}, got {name!r} (looked in {root.parent})")
    return root


class MissingWeights(SystemExit):
    """A bundle's weights file is missing. A ``SystemExit`` whose message is one line (``error: ...``), so
    ``python -m monai.bundle run`` stops with that line and status 1 instead of a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")
        self.message = message


def require_weights(path: str | os.PathLike, how_to: str = "") -> str:
    """Return ``path`` if it is a file, else raise :class:`MissingWeights` naming it and ``how_to`` get weights.

    Meant for a bundle config's ``initialize`` list, before anything is built:
    ``"$monai_glue.bundles.require_weights(@ckpt_path, 'train them with configs/train.json')"``.
    """
    if not os.path.isfile(path):
        hint = f"; {how_to}" if how_to else ""
        raise MissingWeights(f"no trained weights at {path}{hint}")
    return str(path)


def _config_files(root: Path, configs: str) -> list[str]:
    files = []
    for name in (c.strip() for c in configs.split(",") if c.strip()):
        path = root / "configs" / (name if name.endswith((".json", ".yaml", ".yml")) else f"{name}.json")
        if not path.is_file():
            known = sorted(
                p.stem for p in (root / "configs").glob("*.json") if p.stem not in ("metadata", "metadata_schema")
            )
            raise FileNotFoundError(f"expected a config of {root.name} among {known}, got {name!r}")
        files.append(str(path))
    if not files:
        raise ValueError("expected at least one config name in --configs, got none")
    return files


def bundle_command(name: str, args: Sequence[str] = (), configs: str = "inference") -> list[str]:
    """The ``monai.bundle run`` arguments for bundle ``name``: its configs, metadata, logging and root, then
    ``args``; ``--output_dir ./eval`` is added when ``args`` has none."""
    root = bundle_root(name)
    files = _config_files(root, configs)
    command = [
        "--config_file",
        files[0] if len(files) == 1 else repr(files),
        "--meta_file",
        str(root / "configs" / "metadata.json"),
        "--bundle_root",
        str(root),
    ]
    if (root / "configs" / "logging.conf").is_file():
        command += ["--logging_file", str(root / "configs" / "logging.conf")]
    if not any(a == "--output_dir" or a.startswith("--output_dir=") for a in args):
        command += ["--output_dir", str(Path.cwd() / "eval")]
    return command + list(args)


def _usage() -> str:
    return (
        "usage: sadaan-bundle list\n"
        "       sadaan-bundle path NAME\n"
        "       sadaan-bundle run NAME [--configs inference[,evaluate]] [--output_dir DIR] [--key value ...]\n"
        "       sadaan-bundle copy NAME DEST\n"
        f"bundles: {', '.join(BUNDLE_NAMES)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    verb, rest = args[0], args[1:]
    try:
        if verb == "list":
            for name in list_bundles():
                print(name)
            return 0
        if verb == "path" and len(rest) == 1:
            print(bundle_root(rest[0]))
            return 0
        if verb == "copy" and len(rest) == 2:
            dest = Path(rest[1])
            if dest.exists():
                raise FileExistsError(f"expected a new folder to copy the bundle into, got existing {dest}")
            shutil.copytree(bundle_root(rest[0]), dest, ignore=shutil.ignore_patterns("__pycache__"))
            print(dest.resolve())
            return 0
        if verb == "run" and rest and not rest[0].startswith("-"):
            name, extra = rest[0], rest[1:]
            configs = "inference"
            if "--configs" in extra:
                i = extra.index("--configs")
                if i + 1 >= len(extra):
                    raise ValueError("expected config names after --configs, got nothing")
                configs = extra[i + 1]
                extra = extra[:i] + extra[i + 2 :]
            command = bundle_command(name, extra, configs)
        else:
            print(_usage(), file=sys.stderr)
            return 2
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import fire
    from monai.bundle import run

    fire.Fire(run, command=command, name="sadaan-bundle run")
    return 0
