"""``sadaan-phantoms`` (``python -m monai_sadaan.data``): write N synthetic CT phantoms as NIfTI plus a
decathlon-style datalist JSON; with ``convert`` as the first argument, convert a public data set layout into the
bundle's datalist instead (:func:`~monai_sadaan.data.convert_dataset`).

Example::

    sadaan-phantoms --output_dir data/phantoms --num_cases 140 --seed 0
    sadaan-phantoms --output_dir data/kidneys --num_cases 20 --scenarios normal nephrectomy_left --weights 1 1
    sadaan-phantoms --output_dir data/trunk --num_cases 1500 --generator trunk --domain_randomization 0.3 \
        --fov_weights abdomen=3 chest=1 pelvis=1 whole_trunk=1 --num_workers 2
    python -m monai_sadaan.data convert --layout totalsegmentator --input Totalsegmentator_dataset_v201 \
        --output_dir data/totalseg_sadaan --num_workers 8
    python -m monai_sadaan.data convert --layout folders --images RawData/Training/img \
        --labels RawData/Training/label --label_table btcv_labels.csv --output_dir data/btcv_sadaan
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .phantoms import DEFAULT_STRUCTURES, KNOWN_STRUCTURES
from .scenarios import SCENARIOS, TRUNK_SCENARIOS

__all__ = ["build_convert_parser", "build_parser", "convert_main", "main"]


def _bounded_int(text: str, minimum: int, what: str) -> int:
    """``int(text)`` if at least ``minimum``; otherwise argparse's error ``expected a {what}, got ...``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a {what}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _bounded_int(text, 1, "positive integer")


def _non_negative_int(text: str) -> int:
    return _bounded_int(text, 0, "non-negative integer")


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="sadaan-phantoms",
        description="Write synthetic CT-like abdominal phantoms with absence scenarios (NIfTI) and a datalist JSON.",
        epilog="To convert a public data set layout into the bundle's datalist instead: "
        "python -m monai_sadaan.data convert --help",
    )
    parser.add_argument("--output_dir", required=True, help="dataset folder (imagesTr/, labelsTr/, dataset.json)")
    parser.add_argument("--num_cases", required=True, type=_positive_int, help="number of cases to write")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--generator", choices=("abdomen", "trunk"), default="abdomen",
        help="abdomen: the abdominal phantoms (default, the shipped weights' world); trunk: whole-trunk phantoms cut "
        "to clinical fields of view (monai_sadaan.data.trunk)",
    )  # fmt: skip
    parser.add_argument(
        "--scenarios", nargs="+", choices=TRUNK_SCENARIOS, default=None, metavar="SCENARIO",
        help=f"scenarios to draw from (default all of the generator's): {', '.join(TRUNK_SCENARIOS)} "
        "(pancreatectomy: trunk only)",
    )  # fmt: skip
    parser.add_argument(
        "--fov_weights", nargs="+", default=None, metavar="NAME=WEIGHT",
        help="trunk: relative frequency per field of view (chest, chest_abdomen, abdomen, abdomen_pelvis, pelvis, "
        "slab, whole_trunk); default the generator's",
    )  # fmt: skip
    parser.add_argument(
        "--domain_randomization", type=float, default=0.0, metavar="FRACTION",
        help="trunk: fraction of cases rendered with random tissue intensities (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--phase", default="random", help="trunk: non_contrast, arterial, portal_venous or random (default random)"
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


def _json_mapping(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        import ast

        try:  # MONAI-style Python literals: "{'liver': 3}"
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise argparse.ArgumentTypeError(f"expected a JSON mapping such as '{{\"liver\": 3}}', got {text!r}") from None
    if not isinstance(value, dict) or not value:
        raise argparse.ArgumentTypeError(f"expected a non-empty JSON mapping, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite non-negative number, got {text!r}")
    return value


def build_convert_parser() -> argparse.ArgumentParser:
    """The ``convert`` command's argument parser."""
    from .dataset_layouts import DEFAULT_MIN_VOXELS, LAYOUTS

    parser = argparse.ArgumentParser(
        prog="python -m monai_sadaan.data convert",
        description=(
            "Convert a labelled CT data set (TotalSegmentator, Medical Segmentation Decathlon / nnU-Net raw, or image "
            "and label folders with a label table) into the SADAAn bundle's datalist: label maps remapped to the "
            "bundle's structures under OUTPUT_DIR/labels, OUTPUT_DIR/dataset.json with presence per subject and "
            "training / validation / test splits. Train with: python -m monai.bundle run ... --datalist "
            "OUTPUT_DIR/dataset.json (see docs/fine_tuning.md)."
        ),
    )
    parser.add_argument("--layout", required=True, choices=LAYOUTS, help="the data set's layout (msd, nnunet: decathlon)")
    parser.add_argument("--input", default=None, help="the data set folder (folders layout: parent of imagesTr/labelsTr)")
    parser.add_argument("--images", default=None, help="folders layout: the image folder (default INPUT/imagesTr)")
    parser.add_argument("--labels", default=None, help="folders layout: the label folder (default INPUT/labelsTr)")
    parser.add_argument(
        "--label_table", default=None,
        help="value -> name table of the label maps: a .json / .csv file or a JSON mapping (required for folders; "
        "replaces dataset.json's labels or the TotalSegmentator v2 class map)",
    )  # fmt: skip
    parser.add_argument("--output_dir", required=True, help="new or empty folder (or an earlier output of this command)")
    parser.add_argument(
        "--structures", type=_json_mapping, default=None,
        help="the bundle's structures, name -> label value, as a JSON mapping (default the bundle's five: "
        "left_kidney 1, right_kidney 2, liver 3, spleen 4, pancreas 5); train with the same --structures",
    )  # fmt: skip
    parser.add_argument(
        "--mapping", type=_json_mapping, default=None,
        help="structure -> the data set's label name(s) or value(s), for names that do not match, e.g. "
        "'{\"liver\": [\"liver\", \"cancer\"]}'",
    )  # fmt: skip
    parser.add_argument(
        "--min_voxels", type=_positive_int, default=DEFAULT_MIN_VOXELS,
        help=f"voxels of a present structure (default {DEFAULT_MIN_VOXELS}, the bundle's)",
    )  # fmt: skip
    parser.add_argument(
        "--splits", nargs=3, type=float, default=(0.7, 0.15, 0.15), metavar=("TRAIN", "VAL", "TEST"),
        help="fractions of training, validation and test subjects (default 0.7 0.15 0.15)",
    )  # fmt: skip
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the split (default 0)")
    parser.add_argument(
        "--split_file", default=None,
        help="subject -> split (JSON, or CSV with subject/image_id and split columns, such as TotalSegmentator's meta.csv)",
    )  # fmt: skip
    parser.add_argument("--exclude", nargs="+", default=[], metavar="PATTERN", help="subject names to leave out (fnmatch)")
    parser.add_argument("--limit", type=_positive_int, default=None, help="convert only the first N subjects")
    parser.add_argument(
        "--affine_tolerance", type=_non_negative_float, default=1e-3,
        help="largest difference (mm) between an image's and its label's affine entries (default 0.001)",
    )  # fmt: skip
    parser.add_argument(
        "--no_laterality_check", action="store_true",
        help="accept subjects whose left kidney / spleen lies right of the right kidney / liver (situs inversus)",
    )  # fmt: skip
    parser.add_argument("--num_workers", type=_non_negative_int, default=0, help="parallel processes (default 0)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def convert_main(argv: Sequence[str] | None = None) -> int:
    """Run ``convert``; returns 0 on success. Bad arguments and refused data sets exit with status 2 and the
    message naming the problem (every refused subject, with what was expected and what came)."""
    import json

    from .dataset_layouts import DatasetLayoutError, convert_dataset
    from .phantoms import DEFAULT_STRUCTURES

    parser = build_convert_parser()
    args = parser.parse_args(argv)
    if args.layout != "folders" and args.input is None:
        parser.error(f"--input: expected the data set folder for the {args.layout} layout")
    if args.layout == "folders" and args.input is None and (args.images is None or args.labels is None):
        parser.error("--input, or both --images and --labels: expected the folders of the folders layout")
    structures = args.structures if args.structures is not None else dict(DEFAULT_STRUCTURES)
    try:
        path = convert_dataset(
            args.layout,
            args.output_dir,
            root=args.input,
            images_dir=args.images,
            labels_dir=args.labels,
            label_table=args.label_table,
            structures=structures,
            mapping=args.mapping,
            min_voxels=args.min_voxels,
            splits=args.splits,
            seed=args.seed,
            split_file=args.split_file,
            exclude=args.exclude,
            limit=args.limit,
            affine_tolerance=args.affine_tolerance,
            check_laterality=not args.no_laterality_check,
            num_workers=args.num_workers,
            progress=not args.no_progress,
        )
    except DatasetLayoutError as e:
        parser.error(str(e))
    data = json.loads(path.read_text(encoding="utf-8"))
    print(
        f"wrote {path}: {data['numTraining']} training, {data['numValidation']} validation, {data['numTest']} test subjects"
    )
    for name, counts in data["presence_counts"].items():
        labels = ", ".join(data["structure_mapping"][name]["labels"])
        print(f"  {name:<16} <- {labels:<30} present in {counts['present']}, absent in {counts['absent']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns 0 on success. Bad arguments exit with status 2 and a message naming the problem.
    With ``convert`` as the first argument, run :func:`convert_main` on the rest."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert":
        return convert_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.scenarios is None:
        args.scenarios = list(TRUNK_SCENARIOS if args.generator == "trunk" else SCENARIOS)
    if args.generator == "abdomen":
        extra = [s for s in args.scenarios if s not in SCENARIOS]
        if extra:
            parser.error(f"--scenarios: expected names from {', '.join(SCENARIOS)} with --generator abdomen, got {extra}")
        if args.fov_weights is not None or args.domain_randomization or args.phase != "random":
            parser.error("--fov_weights, --domain_randomization, --phase: expected only with --generator trunk")
    fov_weights = None
    if args.fov_weights is not None:
        fov_weights = {}
        for item in args.fov_weights:
            name, sep, value = item.partition("=")
            try:
                fov_weights[name] = float(value)
            except ValueError:
                sep = ""
            if not sep:
                parser.error(f"--fov_weights: expected NAME=WEIGHT items such as abdomen=2, got {item!r}")
    if args.weights is not None and len(args.weights) != len(args.scenarios):
        parser.error(f"--weights: expected one weight per scenario ({len(args.scenarios)}), got {len(args.weights)}")
    unknown = [s for s in args.structures if s not in KNOWN_STRUCTURES]
    if unknown:
        parser.error(f"--structures: expected names from {', '.join(KNOWN_STRUCTURES)}, got {', '.join(unknown)}")
    if len(set(args.structures)) != len(args.structures):
        parser.error(f"--structures: expected distinct names, got {' '.join(args.structures)}")

    if args.generator == "trunk" and args.spacing is not None:
        parser.error("--spacing: expected only with --generator abdomen (the trunk grid follows the field of view)")
    if args.generator == "trunk":
        from .trunk.dataset import write_trunk_dataset as write_dataset

        options = {"fov_weights": fov_weights, "domain_randomization": args.domain_randomization, "phase": args.phase}
    else:
        from .datalist import write_phantom_dataset as write_dataset

        options = {"spacing": args.spacing}
    try:
        path = write_dataset(
            args.output_dir, args.num_cases, seed=args.seed, scenarios=args.scenarios, weights=args.weights,
            splits=args.splits, structures={name: i + 1 for i, name in enumerate(args.structures)},
            min_voxels=args.min_voxels, shape=args.shape, orientation=args.orientation,
            progress=not args.no_progress, num_workers=args.num_workers, preview=args.preview,
            image_dtype=args.image_dtype, **options,
        )  # fmt: skip
    except ValueError as e:
        parser.error(str(e))
    print(f"wrote {args.num_cases} cases and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
