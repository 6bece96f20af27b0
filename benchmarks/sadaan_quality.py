"""Held-out quality of SADAAn against a plain MONAI UNet of similar size trained the same way.

    python benchmarks/sadaan_quality.py [--sadaan_ckpt bundles/.../models/model.pt] [--unet_epochs 12]
        [--heldout_cases 420 --heldout_seed 3]

Both models read the bundle's phantom dataset (same generator, seed and splits as ``configs/train.json``) through
the bundle's own preprocessing; the UNet is trained with the bundle's training pipeline (same augmentations,
optimiser, learning rate, batch size and number of epochs) on a Dice + BCE loss over the same structure masks.
A plain segmenter has no presence head: it calls a structure present when it predicts at least ``min_voxels``
voxels of it, which is how absence is read from nnU-Net or TotalSegmentator outputs.

``--no_unet`` scores SADAAn alone (no baseline trained or loaded), e.g. to compare SADAAn weights.
Test-time normalisation follows ``configs/evaluate.json`` (``test_time_norm`` true, as the shipped weights need;
:mod:`monai_sadaan.networks.test_time_norm`); ``--override test_time_norm=false`` scores without it. Weights with a
fitted presence fusion need ``--override presence_fusion=true`` (``train.json`` builds the network without it).

``--heldout_cases N`` scores both models on a fresh set of ``N`` phantoms (dataset seed ``--heldout_seed``, every case
in the test split) that no training run of the bundle reads, instead of the 21-case test split.

Per scenario it prints presence accuracy, mean Dice on present structures, and the false-positive volume on
absent structures (fraction of absent structures with no predicted voxel, mean predicted mL). Targets for SADAAn:
presence accuracy >= 0.98 in every scenario, mean Dice >= 0.85, >= 95 % of absent structures without a predicted
voxel. Exit status 0 when SADAAn meets them; the figures are printed last.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "sadaan_abdominal_ct_segmentation"
sys.path.insert(0, str(ROOT))


def _parser(bundle_root: Path, data_dir: Path, num_cases: int, extra: list[str]):
    from monai.bundle import ConfigParser

    p = ConfigParser()
    p.read_config([str(BUNDLE / "configs" / "train.json"), str(BUNDLE / "configs" / "evaluate.json")])
    p["bundle_root"] = str(bundle_root)
    p["data_dir"] = str(data_dir)
    p["num_cases"] = num_cases
    p["device"] = "$torch.device('cpu')"
    for item in extra:
        k, v = item.split("=", 1)
        p[k] = json.loads(v)
    return p


def _unet(num_structures: int):
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=3, in_channels=1, out_channels=num_structures, channels=(8, 16, 32, 64, 128),
        strides=(2, 2, 2, 2), num_res_units=2,
    )  # fmt: skip


class _UNetAsDict(torch.nn.Module):
    """Give a plain UNet the outputs the evaluation reads: presence = at least ``min_voxels`` predicted voxels."""

    def __init__(self, unet: torch.nn.Module, min_voxels: int) -> None:
        super().__init__()
        self.unet = unet
        self.min_voxels = min_voxels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        probs = torch.sigmoid(self.unet(x))
        masks = (probs > 0.5).float()
        counts = masks.flatten(2).sum(-1)
        presence = (counts >= self.min_voxels).float()
        return {"presence_probs": presence, "segmentation_masks": masks}


def train_unet(p, epochs: int, lr: float, out: Path) -> torch.nn.Module:
    from monai.engines import SupervisedTrainer
    from monai.losses import DiceCELoss

    from monai_glue import DictTargetPrepareBatch

    names = p.get_parsed_content("structure_names")
    unet = _unet(len(names))
    loader = p.get_parsed_content("train#dataloader")
    loss = DiceCELoss(sigmoid=True)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=epochs,
        train_data_loader=loader,
        network=unet,
        optimizer=torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-5),
        loss_function=loss,
        prepare_batch=DictTargetPrepareBatch("image", {"label": "segmentation_targets"}),
        decollate=False,
    )
    trainer.prepare_batch = _SingleTarget(trainer.prepare_batch)
    trainer.run()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(unet.state_dict(), out)
    return unet


class _SingleTarget:
    """DictTargetPrepareBatch gives a dict of targets; DiceCELoss wants the mask tensor itself."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __call__(self, batch, device=None, non_blocking=False, **kwargs):
        image, targets = self.inner(batch, device, non_blocking, **kwargs)
        return image, targets["label"]


def evaluate(model: torch.nn.Module, p, structure_names: list[str], out_dir: Path) -> list[dict]:
    from monai_sadaan.data import load_datalist
    from monai_sadaan.handlers import ScenarioMetricsReport

    report = ScenarioMetricsReport(out_dir, structure_names)
    tf = p.get_parsed_content("validate#preprocessing")
    datalist = p.get_parsed_content("datalist")
    items = load_datalist(datalist, "test")
    if not items:
        raise ValueError(
            f"expected at least one case in the test split of {datalist}, got none (more --num_cases?)"
        )
    model.eval()
    with torch.no_grad():
        for i, item in enumerate(items):
            d = tf(item)
            out = model(d["image"][None])
            report.add_batch(
                out["presence_probs"], out["segmentation_masks"], d["segmentation_targets"][None],
                d["presence_targets"][None], [item["scenario"]], [f"case_{i:03d}"], [d["voxel_volume_ml"]],
            )  # fmt: skip
    return report.write()


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work_dir", default=str(ROOT / "outputs" / "sadaan_quality"))
    ap.add_argument("--data_dir", default=None, help="phantom dataset (default: WORK_DIR/data)")
    ap.add_argument("--num_cases", type=int, default=140)
    ap.add_argument("--sadaan_ckpt", default=str(BUNDLE / "models" / "model.pt"))
    ap.add_argument("--unet_ckpt", default=None, help="reuse a trained baseline instead of training one")
    ap.add_argument("--unet_epochs", type=int, default=12)
    ap.add_argument(
        "--no_unet", action="store_true",
        help="score SADAAn alone: no UNet is trained or loaded, and the false-positive ratio is not printed",
    )  # fmt: skip
    ap.add_argument("--override", nargs="*", default=[], help="config overrides id=json, e.g. spatial_size=[48,48,48]")
    ap.add_argument(
        "--heldout_cases", type=int, default=0,
        help="score both models on a fresh set of this many phantoms, every one in its test split, instead of the "
        "training data's test split (0: the test split)",
    )  # fmt: skip
    ap.add_argument("--heldout_seed", type=int, default=3, help="dataset seed of the fresh held-out set (default 3)")
    ap.add_argument("--heldout_dir", default=None, help="folder of the fresh held-out set (default: WORK_DIR/heldout_seedN)")
    args = ap.parse_args(argv)
    if args.no_unet and args.unet_ckpt:
        ap.error("--no_unet and --unet_ckpt exclude each other")
    if args.heldout_cases < 0:
        ap.error(f"expected --heldout_cases >= 0, got {args.heldout_cases}")
    torch.manual_seed(0)
    work = Path(args.work_dir)
    p = _parser(work, Path(args.data_dir) if args.data_dir else work / "data", args.num_cases, args.override)
    p_eval = p
    if args.heldout_cases:
        heldout_dir = Path(args.heldout_dir) if args.heldout_dir else work / f"heldout_seed{args.heldout_seed}"
        extra = [*args.override, f"seed={args.heldout_seed}", "data_splits=[0, 0, 1]"]
        p_eval = _parser(work, heldout_dir, args.heldout_cases, extra)
    names = p.get_parsed_content("structure_names")

    from monai_glue import load_checkpoint, load_state_dict_checked
    from monai_sadaan.networks import use_input_statistics

    sadaan = p.get_parsed_content("network_def")
    load_state_dict_checked(sadaan, load_checkpoint(args.sadaan_ckpt, key="model"), source=args.sadaan_ckpt)
    # as evaluate.json and inference.json build it: test_time_norm (evaluate.json: true) normalises by each case's statistics
    source_weight = p.get_parsed_content("test_time_norm_source_weight")
    use_input_statistics(sadaan, source_weight, test_time_norm=p.get_parsed_content("test_time_norm"))
    min_voxels = int(p.get_parsed_content("min_voxels"))
    models: dict[str, torch.nn.Module] = {"SADAAn": sadaan}
    t0 = time.time()
    if args.unet_ckpt:
        unet = _unet(len(names))
        load_state_dict_checked(unet, load_checkpoint(args.unet_ckpt), source=args.unet_ckpt)
        models["UNet"] = _UNetAsDict(unet, min_voxels)
    elif not args.no_unet:
        lr = float(p.get_parsed_content("learning_rate"))
        models["UNet"] = _UNetAsDict(train_unet(p, args.unet_epochs, lr, work / "unet_baseline.pt"), min_voxels)
    train_s = time.time() - t0
    rows = {name: evaluate(model, p_eval, names, work / name.lower()) for name, model in models.items()}
    sizes = ", ".join(f"{name} {sum(x.numel() for x in model.parameters()):,}" for name, model in models.items())
    print(f"parameters: {sizes}" + (f"; UNet training {train_s:.0f} s" if "UNet" in models else ""))
    print(f"{'model':<7} {'scenario':<22} {'cases':>5} {'presence acc':>12} {'AUROC':>6} {'Dice present':>12} {'absent clean':>12} {'FP mL absent':>12}")
    for model, summary in rows.items():
        for r in summary:
            print(
                f"{model:<7} {r['scenario']:<22} {r['cases']:>5} {_fmt(r['presence_accuracy']):>12} {_fmt(r['presence_auroc']):>6} "
                f"{_fmt(r['mean_dice_present']):>12} {_fmt(r['absent_clean_rate']):>12} {_fmt(r['mean_fp_volume_ml_absent']):>12}"
            )
    s_all = {r["scenario"]: r for r in rows["SADAAn"]}
    ok_presence = all(r["presence_accuracy"] >= 0.98 for k, r in s_all.items())
    ok_dice = s_all["all"]["mean_dice_present"] >= 0.85
    ok_clean = s_all["all"]["absent_clean_rate"] >= 0.95
    if "UNet" in rows:
        u_all = {r["scenario"]: r for r in rows["UNet"]}["all"]
        u_fp = u_all["mean_fp_volume_ml_absent"]
        fp_ratio = s_all["all"]["mean_fp_volume_ml_absent"] / u_fp if u_fp else float("nan")
        print(f"false-positive volume on absent structures, SADAAn / UNet: {_fmt(fp_ratio)}")
    print(f"targets: presence >= 0.98 every scenario: {ok_presence}; mean Dice >= 0.85: {ok_dice}; absent clean >= 0.95: {ok_clean}")
    return 0 if (ok_presence and ok_dice and ok_clean) else 1


if __name__ == "__main__":
    raise SystemExit(main())
