"""Ways to fit the presence fusion on the frozen shipped network, against the shipped recipe.

    python benchmarks/sadaan_presence_fusion_variants.py --work_dir W [--ckpt bundles/.../models/model.pt]
        [--fit 7:720:fov6] [--select 9:420:uniform --select 10:600:partial_fov] [--extra_fit 21:1500:fov6]

Each set is ``SEED:CASES:WEIGHTS`` with ``WEIGHTS`` one of ``uniform`` (every scenario alike), ``fov6`` (partial field
of view six times each other scenario, as ``configs/presence_fusion.json``) or ``partial_fov`` (only that
scenario). Sets are generated under ``W`` the way the bundle generates them (``ensure_phantom_datalist``); the
``--fit`` set is split 70/15/15 and its training split fits every variant, its validation split is reported; every
case of a ``--select`` set is scored; ``--extra_fit`` adds all its cases to the fitting cases of the variants named
``+extra`` (``presence_fusion.json`` fits on seed 7's training split plus all of seed 21). The network runs once
per set (its presence evidence is cached in ``W/evidence{K}_*.pt``, ``K`` evidence values); the variants are fitted
on that evidence with :func:`monai_sadaan.engines.fit_presence_rule` and applied by the network's own
:class:`~monai_sadaan.networks.PresenceEvidenceFusion` (gate ``edge_fraction >= 0.2``):

* ``head only``: no fusion;
* ``0.7.0 recipe``: logistic regression on the first twelve evidence values (those before bundle 0.8.0), fitted
  to all pairs (case, structure), L2 1e-3;
* ``regression, all pairs``: the same on all the evidence;
* ``regression, gated pairs``: fitted only to the pairs it decides (``fit_gated_only``), L2 1e-4;
* ``hidden layer (H), gated pairs``: a hidden tanh layer of ``H`` units beside the regression, L2 1e-3, fitted to
  the gated pairs; ``H = 16`` with ``+extra`` is bundle 0.8.0's recipe (the denominator of the last column).

It prints one row per variant (errors on the fitting set's validation split, and per selection set the wrong
partial-field-of-view calls and the wrong calls elsewhere), then each variant's total selection errors over the
0.8.0 recipe's. ``--sweep`` adds the shipped recipe's neighbours (other starting seeds of the hidden layer and
their average, 8 hidden units, a weaker and a stronger penalty, lower edge gates).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "sadaan_abdominal_ct_segmentation"
sys.path.insert(0, str(ROOT))

from monai_sadaan.data import SCENARIOS  # noqa: E402
from monai_sadaan.engines import collect_presence_evidence, fit_presence_rule  # noqa: E402
from monai_sadaan.networks import PresenceEvidenceFusion  # noqa: E402
from monai_sadaan.networks.blocks.presence_fusion import LEGACY_EVIDENCE_COUNT, PRESENCE_EVIDENCE_NAMES  # noqa: E402

EDGE = PRESENCE_EVIDENCE_NAMES.index("edge_fraction")
GATE = 0.2
WEIGHTS = {
    "uniform": {s: 1 for s in SCENARIOS},
    "fov6": {s: (6 if s == "partial_fov" else 1) for s in SCENARIOS},
    "partial_fov": {"partial_fov": 1},
}

Rule = Callable[[torch.Tensor], torch.Tensor]  # evidence [N, S, K] -> present-minus-absent logit [N, S]


def parse_set(text: str) -> tuple[int, int, str]:
    """``"SEED:CASES:WEIGHTS"`` -> ``(seed, cases, weights)``."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or parts[2] not in WEIGHTS:
        raise argparse.ArgumentTypeError(f"expected SEED:CASES:WEIGHTS with WEIGHTS in {sorted(WEIGHTS)}, got {text!r}")
    return int(parts[0]), int(parts[1]), parts[2]


def count_errors(logits: torch.Tensor, targets: torch.Tensor, scenarios: list[str], scenario: str = "partial_fov"):
    """``(wrong calls in cases of `scenario`, wrong calls in the other cases)``; a call is ``logit >= 0``."""
    wrong = ((logits >= 0).float() != (targets >= 0.5).float()).sum(-1)
    inside = torch.tensor([s == scenario for s in scenarios], dtype=torch.bool)
    return int(wrong[inside].sum()), int(wrong[~inside].sum())


def fusion_rule(
    evidence: torch.Tensor,
    targets: torch.Tensor,
    l2: float,
    gated_only: bool,
    hidden_channels: int = 0,
    legacy: bool = False,
    gate: float = GATE,
    seed: int = 0,
) -> Rule:
    """A fit installed in the network's own fusion (same class; edge gate ``gate``, by default the bundle's).
    ``legacy`` fits a regression on the first twelve evidence values only and loads it the way a checkpoint from
    before bundle 0.8.0 loads; ``seed`` draws the hidden layer's starting weights."""
    used = evidence[..., :LEGACY_EVIDENCE_COUNT] if legacy else evidence
    weights = evidence[..., EDGE] >= gate if gated_only else None
    fit = fit_presence_rule(
        used, targets, l2=l2, max_iter=2000, sample_weights=weights, hidden_channels=hidden_channels, seed=seed
    )
    fusion = PresenceEvidenceFusion(evidence.shape[1], hidden_channels)
    if legacy:
        fusion.load_state_dict({"weight": fit["weight"], "bias": fit["bias"], "evidence_mean": fit["mean"],
                                "evidence_std": fit["std"], "edge_gate": torch.tensor(gate)})  # fmt: skip
    else:
        fusion.set_fit(fit["weight"], fit["bias"], fit["mean"], fit["std"], gate, fit["hidden"])
    return fusion.fused_logit


def collect(work_dir: Path, ckpt: Path, seed: int, cases: int, weights: str, splits: list[float], names: list[str]):
    """Evidence, targets and scenarios of the named splits of a generated set (cached in ``work_dir``)."""
    cache = work_dir / f"evidence{len(PRESENCE_EVIDENCE_NAMES)}_seed{seed}_{cases}_{weights}.pt"
    if cache.exists():
        return torch.load(cache, weights_only=True)
    from monai.bundle import ConfigParser
    from monai.data import DataLoader, Dataset

    import monai_sadaan.data
    from monai_sadaan.networks.transfer import load_pretrained_network

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.update({"bundle_root": str(BUNDLE), "data_dir": str(work_dir / f"phantoms_seed{seed}_{cases}_{weights}"),
                   "seed": seed, "num_cases": cases, "data_splits": splits, "data_scenario_weights": WEIGHTS[weights]})  # fmt: skip
    datalist = parser.get_parsed_content("datalist")
    network = load_pretrained_network(parser.get_parsed_content("network_def"), str(ckpt))
    transform = parser.get_parsed_content("validate#preprocessing")
    out = {}
    for split in names:
        items = monai_sadaan.data.load_datalist(datalist, split)
        loader = DataLoader(Dataset(items, transform), batch_size=2, shuffle=False, num_workers=0)
        evidence, targets, _ = collect_presence_evidence(network, loader, "cpu")
        out[split] = {"evidence": evidence, "targets": targets, "scenarios": [it["scenario"] for it in items]}
    torch.save(out, cache)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work_dir", type=Path, required=True)
    ap.add_argument("--ckpt", type=Path, default=BUNDLE / "models" / "model.pt")
    ap.add_argument("--fit", type=parse_set, default=parse_set("7:720:fov6"))
    ap.add_argument("--select", type=parse_set, action="append")
    ap.add_argument("--extra_fit", type=parse_set, default=None)
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="with --extra_fit, also the shipped recipe's neighbours: hidden-layer seeds 1-4 and the five seeds' "
        "logits averaged, 8 hidden units, L2 3e-4 and 3e-3, edge gates 0.15, 0.1 and 0.05",
    )
    args = ap.parse_args(argv)
    if args.sweep and args.extra_fit is None:
        ap.error("--sweep varies the shipped recipe, which fits on --extra_fit too: expected --extra_fit, got none")
    selects = args.select or [parse_set("9:420:uniform"), parse_set("10:600:partial_fov")]
    args.work_dir.mkdir(parents=True, exist_ok=True)

    fit = collect(args.work_dir, args.ckpt, *args.fit, [0.7, 0.15, 0.15], ["training", "validation"])
    x, y = fit["training"]["evidence"], fit["training"]["targets"]
    sel = {f"seed {s[0]}": collect(args.work_dir, args.ckpt, *s, [0.0, 0.0, 1.0], ["test"])["test"] for s in selects}
    variants: dict[str, Rule] = {
        "head only": lambda e: e[..., 0],
        "0.7.0 recipe": fusion_rule(x, y, 1e-3, gated_only=False, legacy=True),
        "regression, all pairs": fusion_rule(x, y, 1e-3, gated_only=False),
        "regression, gated pairs": fusion_rule(x, y, 1e-4, gated_only=True),
        "hidden layer (16), gated pairs": fusion_rule(x, y, 1e-3, gated_only=True, hidden_channels=16),
    }
    if args.extra_fit is not None:
        extra = collect(args.work_dir, args.ckpt, *args.extra_fit, [1.0, 0.0, 0.0], ["training"])["training"]
        xe, ye = torch.cat([x, extra["evidence"]]), torch.cat([y, extra["targets"]])
        variants["0.7.0 recipe +extra"] = fusion_rule(xe, ye, 1e-3, gated_only=False, legacy=True)
        variants["regression, gated pairs +extra"] = fusion_rule(xe, ye, 1e-4, gated_only=True)
        variants["hidden layer (16), gated pairs +extra"] = fusion_rule(xe, ye, 1e-3, gated_only=True, hidden_channels=16)
        variants["hidden layer (32), gated pairs +extra"] = fusion_rule(xe, ye, 1e-3, gated_only=True, hidden_channels=32)
        if args.sweep:
            seeded = [variants["hidden layer (16), gated pairs +extra"]]
            for seed in range(1, 5):
                seeded.append(fusion_rule(xe, ye, 1e-3, gated_only=True, hidden_channels=16, seed=seed))
                variants[f"hidden layer (16), seed {seed} +extra"] = seeded[-1]
            variants["hidden layer (16), seeds 0-4 averaged +extra"] = lambda e: sum(r(e) for r in seeded) / len(seeded)
            variants["hidden layer (8), gated pairs +extra"] = fusion_rule(
                xe, ye, 1e-3, gated_only=True, hidden_channels=8
            )
            for l2 in (3e-4, 3e-3):
                variants[f"hidden layer (16), L2 {l2:g} +extra"] = fusion_rule(
                    xe, ye, l2, gated_only=True, hidden_channels=16
                )
            for gate in (0.15, 0.1, 0.05):
                variants[f"hidden layer (16), gate {gate:g} +extra"] = fusion_rule(
                    xe, ye, 1e-3, gated_only=True, hidden_channels=16, gate=gate
                )
    reference = "hidden layer (16), gated pairs +extra" if args.extra_fit is not None else "hidden layer (16), gated pairs"

    val = fit["validation"]
    header = ["variant", f"seed {args.fit[0]} validation errors"]
    for name, data in sel.items():
        pf = sum(s == "partial_fov" for s in data["scenarios"]) * data["targets"].shape[1]
        header += [f"{name} partial FOV wrong (of {pf})", f"{name} other wrong"]
    header.append(f"selection errors / {reference}")
    rows, totals = [], {}
    for name, rule in variants.items():
        row = [name, str(sum(count_errors(rule(val["evidence"]), val["targets"], val["scenarios"])))]
        total = 0
        for data in sel.values():
            pf, other = count_errors(rule(data["evidence"]), data["targets"], data["scenarios"])
            row += [str(pf), str(other)]
            total += pf + other
        totals[name] = total
        rows.append(row)
    for row in rows:
        row.append(f"{totals[row[0]] / max(totals[reference], 1):.2f}")
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(json.dumps({"selection_errors": totals}))


if __name__ == "__main__":
    main()
