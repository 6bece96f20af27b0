"""``sadaan-phantoms``: write N synthetic CT phantoms as NIfTI plus a decathlon-style datalist JSON.

Example::

    sadaan-phantoms --output_dir data/phantoms --num_cases 140 --seed 0
    sadaan-phantoms --output_dir data/kidneys --num_cases 20 --scenarios normal nephrectomy_left --weights 1 1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .phantoms import DEFAULT_STRUCTURES, KNOWN_STRUCTURES
from .scenarios import SCENARIOS

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="sadaan-phantoms",
        description="Write synthetic CT-like abdominal phantoms with absence scenarios (NIfTI) and a datalist JSON.",
    )
    parser.add_argument("--output_dir", required=True, help="dataset folder (imagesTr/, labelsTr/, dataset.json)")
    parser.add_argument("--num_cases", required=True, type=_positive_int, help="number of cases to write")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), metavar="SCENARIO",
        help=f"scenarios to draw from (default all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--weights", nargs="+", type=float, default=None, help="relative frequency per scenario")
    parser.add_argument(
        "--splits", nargs=3, type=float, default=(0.7, 0.15, 0.15), metavar=("TRAIN", "VAL", "TEST"),
        help="fractions of training, validation and test cases (default 0.7 0.15 0.15)",
    )
    parser.add_argument(
        "--structures", nargs="+", default=list(DEFAULT_STRUCTURES), metavar="NAME",
        help=f"labelled structures, label values 1, 2, ... in this order (from {', '.join(KNOWN_STRUCTURES)})",
    )
    parser.add_argument("--min_voxels", type=_positive_int, default=20, help="presence threshold in voxels (default 20)")
    parser.add_argument("--shape", nargs=3, type=_positive_int, default=None, help="fixed grid size (default random)")
    parser.add_argument("--spacing", nargs=3, type=float, default=None, help="fixed voxel size in mm (default random)")
    parser.add_argument("--orientation", default=None, help="fixed orientation code such as RAS or LPS (default random)")
    parser.add_argument(
        "--image_dtype", choices=("float32", "int16"), default="float32",
        help="image file type: float32 (default) or int16 rounded HU (half the disk space)",
    )
    parser.add_argument("--num_workers", type=_non_negative_int, default=0, help="parallel processes (default 0)")
    parser.add_argument(
        "--preview", type=_non_negative_int, default=4, help="cases drawn into OUTPUT_DIR/preview.png (default 4, 0: none)"
    )
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns 0 on success. Bad arguments exit with status 2 and a message naming the problem."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.weights is not None and len(args.weights) != len(args.scenarios):
        parser.error(f"--weights: expected one weight per scenario ({len(args.scenarios)}), got {len(args.weights)}")
    unknown = [s for s in args.structures if s not in KNOWN_STRUCTURES]
    if unknown:
        parser.error(f"--structures: expected names from {', '.join(KNOWN_STRUCTURES)}, got {', '.join(unknown)}")
    if len(set(args.structures)) != len(args.structures):
        parser.error(f"--structures: expected distinct names, got {' '.join(args.structures)}")

    from .datalist import write_phantom_dataset

    structures = {name: i + 1 for i, name in enumerate(args.structures)}
    try:
        path = write_phantom_dataset(
            args.output_dir,
            args.num_cases,
            seed=args.seed,
            scenarios=args.scenarios,
            weights=args.weights,
            splits=args.splits,
            structures=structures,
            min_voxels=args.min_voxels,
            shape=args.shape,
            spacing=args.spacing,
            orientation=args.orientation,
            progress=not args.no_progress,
            num_workers=args.num_workers,
            preview=args.preview,
            image_dtype=args.image_dtype,
        )
    except ValueError as e:
        parser.error(str(e))
    print(f"wrote {args.num_cases} cases and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
