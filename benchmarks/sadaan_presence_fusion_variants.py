"""Other ways to fit the presence fusion on the frozen shipped network, against the shipped recipe.

    python benchmarks/sadaan_presence_fusion_variants.py --work_dir W [--ckpt bundles/.../models/model.pt]
        [--fit 7:720:fov6] [--select 9:420:uniform --select 10:600:partial_fov] [--extra_fit 21:1500:fov6]

Each set is ``SEED:CASES:WEIGHTS`` with ``WEIGHTS`` one of ``uniform`` (every scenario alike), ``fov6`` (partial field
of view six times each other scenario, as ``configs/presence_fusion.json``) or ``partial_fov`` (only that
scenario). Sets are generated under ``W`` the way the bundle generates them (``ensure_phantom_datalist``); the
``--fit`` set is split 70/15/15 and its training split fits every variant, its validation split is reported; every
case of a ``--select`` set is scored; ``--extra_fit`` adds all its cases to the fitting cases of the variants named
``+extra``. The network runs once per set (its presence evidence is cached in ``W/evidence_*.pt``); the variants
are fitted on that evidence:

* ``shipped recipe``: logistic regression on all pairs (case, structure), L2 1e-3, used where ``edge_fraction >=
  0.2`` (what ``presence_fusion.json`` does);
* ``gated pairs``: the same regression fitted only to the pairs it decides (``fit_gated_only``), L2 1e-3 or 1e-4;
* ``MLP``: a 32-unit tanh layer on the standardised evidence plus a one-hot of the structure, weight decay 1e-3,
  fitted to the gated pairs (not something the network can load; it measures what a non-linear rule would add);
* ``head only``: no fusion.

It prints one row per variant (errors on the fitting set's validation split, and per selection set the wrong
partial-field-of-view calls and the wrong calls elsewhere), then each variant's total selection errors over the
shipped recipe's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "sadaan_abdominal_ct_segmentation"
sys.path.insert(0, str(ROOT))

from monai_sadaan.data import SCENARIOS  # noqa: E402
from monai_sadaan.engines import collect_presence_evidence, fit_presence_regression  # noqa: E402
from monai_sadaan.networks import PresenceEvidenceFusion  # noqa: E402
from monai_sadaan.networks.blocks.presence_fusion import PRESENCE_EVIDENCE_NAMES  # noqa: E402

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


def regression_rule(evidence: torch.Tensor, targets: torch.Tensor, l2: float, gated_only: bool) -> Rule:
    """The fusion the network would install (same class, same gate)."""
    weights = evidence[..., EDGE] >= GATE if gated_only else None
    fusion = PresenceEvidenceFusion(evidence.shape[1])
    fusion.set_fit(*fit_presence_regression(evidence, targets, l2=l2, max_iter=2000, sample_weights=weights), GATE)
    return fusion.fused_logit


def mlp_rule(evidence: torch.Tensor, targets: torch.Tensor, hidden: int = 32, decay: float = 1e-3, seed: int = 0) -> Rule:
    """A one-hidden-layer rule on the gated pairs; the head decides the others, as in the fusion."""
    torch.manual_seed(seed)
    n, s, k = evidence.shape
    mean = evidence.reshape(-1, k).mean(0).double()
    std = evidence.reshape(-1, k).std(0).clamp_min(1e-8).double()

    def features(e: torch.Tensor) -> torch.Tensor:
        z = (e.double() - mean) / std
        return torch.cat([z, torch.eye(s, dtype=z.dtype).expand(e.shape[0], s, s)], -1)

    gated = evidence[..., EDGE] >= GATE
    x, y = features(evidence)[gated], (targets[gated] >= 0.5).double()
    net = torch.nn.Sequential(torch.nn.Linear(k + s, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)).double()
    optimiser = torch.optim.LBFGS(net.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        penalty = sum((p * p).sum() for name, p in net.named_parameters() if name.endswith("weight"))
        loss = F.binary_cross_entropy_with_logits(net(x)[:, 0], y) + decay * penalty
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)

    def rule(e: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.where(e[..., EDGE] >= GATE, net(features(e))[..., 0].float(), e[..., 0])

    return rule


def collect(work_dir: Path, ckpt: Path, seed: int, cases: int, weights: str, splits: list[float], names: list[str]):
    """Evidence, targets and scenarios of the named splits of a generated set (cached in ``work_dir``)."""
    cache = work_dir / f"evidence_seed{seed}_{cases}_{weights}.pt"
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
    args = ap.parse_args(argv)
    selects = args.select or [parse_set("9:420:uniform"), parse_set("10:600:partial_fov")]
    args.work_dir.mkdir(parents=True, exist_ok=True)

    fit = collect(args.work_dir, args.ckpt, *args.fit, [0.7, 0.15, 0.15], ["training", "validation"])
    x, y = fit["training"]["evidence"], fit["training"]["targets"]
    sel = {f"seed {s[0]}": collect(args.work_dir, args.ckpt, *s, [0.0, 0.0, 1.0], ["test"])["test"] for s in selects}
    variants: dict[str, Rule] = {
        "head only": lambda e: e[..., 0],
        "shipped recipe": regression_rule(x, y, 1e-3, gated_only=False),
        "gated pairs, L2 1e-3": regression_rule(x, y, 1e-3, gated_only=True),
        "gated pairs, L2 1e-4": regression_rule(x, y, 1e-4, gated_only=True),
        "MLP, gated pairs": mlp_rule(x, y),
    }
    if args.extra_fit is not None:
        extra = collect(args.work_dir, args.ckpt, *args.extra_fit, [1.0, 0.0, 0.0], ["training"])["training"]
        xe, ye = torch.cat([x, extra["evidence"]]), torch.cat([y, extra["targets"]])
        variants["shipped recipe +extra"] = regression_rule(xe, ye, 1e-3, gated_only=False)
        variants["gated pairs, L2 1e-4 +extra"] = regression_rule(xe, ye, 1e-4, gated_only=True)
        variants["MLP, gated pairs +extra"] = mlp_rule(xe, ye)

    val = fit["validation"]
    header = ["variant", f"seed {args.fit[0]} validation errors"]
    for name, data in sel.items():
        pf = sum(s == "partial_fov" for s in data["scenarios"]) * data["targets"].shape[1]
        header += [f"{name} partial FOV wrong (of {pf})", f"{name} other wrong"]
    header.append("selection errors / shipped recipe")
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
        row.append(f"{totals[row[0]] / max(totals['shipped recipe'], 1):.2f}")
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(json.dumps({"selection_errors": totals}))


if __name__ == "__main__":
    main()
