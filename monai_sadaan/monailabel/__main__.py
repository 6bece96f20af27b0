"""Command line: make a MONAI Label app folder for SADAAn, or start a MONAI Label server with it.

    python -m monai_sadaan.monailabel app DEST
    python -m monai_sadaan.monailabel serve --studies DIR [--port 8000] [--host 127.0.0.1] [--app_dir DIR]
        [--bundle BUNDLE_DIR] [--device auto|cpu|cuda:0] [-- more monailabel start_server arguments]

``app`` writes ``DEST/main.py``, the file ``monailabel start_server --app DEST`` loads. ``serve`` writes that folder
(default: ``$XDG_CACHE_HOME/monai_sadaan/monailabel_app``, else ``~/.cache/...``) and then becomes
``monailabel start_server --app APP_DIR --studies DIR --host HOST --port PORT`` with ``--conf bundle`` and
``--conf device`` when given. The server writes its logs into the app folder (``logs/app.log``) and its datastore
index and saved labels into the studies folder, as MONAI Label always does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["APP_MAIN", "default_app_dir", "write_app", "server_command", "main"]

APP_MAIN = '''"""MONAI Label app folder for SADAAn (written by python -m monai_sadaan.monailabel app).

monailabel start_server loads this file and serves the MONAILabelApp subclass it finds here.
"""

from monai_sadaan.monailabel.app import SADAAnApp  # noqa: F401
'''
"""Text of the app folder's ``main.py``."""


def default_app_dir() -> Path:
    """Where ``serve`` puts the app folder when none is given (a per-user cache folder)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "monai_sadaan" / "monailabel_app"


def write_app(dest: str | os.PathLike) -> Path:
    """Write the app folder ``dest`` (its ``main.py``); return it as an absolute path.

    Raises:
        FileExistsError: ``dest/main.py`` exists with other content (another app's folder is never overwritten).
    """
    folder = Path(dest).expanduser().resolve()
    main_py = folder / "main.py"
    if main_py.exists():
        if main_py.read_text(encoding="utf-8") == APP_MAIN:
            return folder
        raise FileExistsError(
            f"expected {folder} to be a new folder or a SADAAn app folder, found another main.py there; "
            "choose another folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = main_py.with_name(f".main.py.{os.getpid()}.tmp")
    tmp.write_text(APP_MAIN, encoding="utf-8")
    os.replace(tmp, main_py)
    return folder


def server_command(
    app_dir: str | os.PathLike,
    studies: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    bundle: str | None = None,
    device: str | None = None,
    extra: Sequence[str] = (),
    python: str | None = None,
) -> list[str]:
    """The ``monailabel start_server`` command line (run with ``python``, default this interpreter)."""
    cmd = [python or sys.executable, "-m", "monailabel.main", "start_server", "--app", os.fspath(app_dir),
           "--studies", studies, "--host", host, "--port", str(int(port))]  # fmt: skip
    if bundle:
        cmd += ["--conf", "bundle", str(Path(bundle).expanduser().resolve())]
    if device:
        cmd += ["--conf", "device", device]
    return cmd + list(extra)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monai_sadaan.monailabel", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_app = sub.add_parser("app", help="write a MONAI Label app folder (main.py) for SADAAn")
    p_app.add_argument("dest", help="the app folder to write")
    p_serve = sub.add_parser("serve", help="start a MONAI Label server with SADAAn")
    p_serve.add_argument("--studies", required=True, help="folder of images (NIfTI, NRRD) or a DICOMweb address")
    p_serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--app_dir", default=None, help=f"app folder (default {default_app_dir()})")
    p_serve.add_argument("--bundle", default=None, help="bundle folder (default: the shipped SADAAn bundle)")
    p_serve.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1 ...")
    p_serve.add_argument("extra", nargs="*", help="after --: more monailabel start_server arguments")
    args = parser.parse_args(argv)

    if args.command == "app":
        print(write_app(args.dest))
        return 0
    try:
        import monailabel  # noqa: F401
    except ImportError:
        print(
            "error: monailabel is not installed in this Python environment "
            f"({sys.executable}); make it with `make monailabel` and run .venv-monailabel/bin/python",
            file=sys.stderr,
        )
        return 2
    studies = args.studies
    if not studies.startswith(("http://", "https://")):
        if not os.path.isdir(studies):
            print(f"error: expected a folder of studies, found no folder at {studies}", file=sys.stderr)
            return 2
        studies = str(Path(studies).resolve())
    app_dir = write_app(args.app_dir or default_app_dir())
    cmd = server_command(app_dir, studies, args.host, args.port, args.bundle, args.device, args.extra)
    print("starting:", " ".join(cmd), flush=True)
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
