from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monai_sadaan.losses import DEFAULT_LOSS_WEIGHTS, LOSS_COMPONENTS, SpatialAttentionLoss

LOG2 = math.log(2.0)


def make_outputs(b: int = 2, s: int = 3, spatial=(2, 3, 4), fill_logit: float = 0.0, requires_grad: bool = False):
    """Network-like outputs with every value at a chosen constant (probabilities 0.5 by default)."""
    shape = (b, s, *spatial)
    out = {
        "segmentation_logits": torch.full(shape, fill_logit),
        "attention_maps": torch.full(shape, 0.5),
        "absence_logits": torch.zeros(b, s, 2),
        "confidence_scores": torch.full((b, s), 0.5),
        "feature_responses": torch.full(shape, fill_logit),
    }
    for v in out.values():
        v.requires_grad_(requires_grad)
    return out


def make_targets(presence, spatial=(2, 3, 4)):
    presence = torch.as_tensor(presence, dtype=torch.float32)
    b, s = presence.shape
    seg = torch.zeros(b, s, *spatial)
    seg[..., : spatial[-1] // 2] = 1.0  # half of each present volume is foreground
    seg = seg * presence.view(b, s, 1, 1, 1)
    return {"segmentation_targets": seg, "presence_targets": presence}


def loss_fn(**kw) -> SpatialAttentionLoss:
    return SpatialAttentionLoss(["a", "b", "c"], **kw)


# ---------------------------------------------------------------- construction


def test_default_weights_are_the_seeds():
    assert loss_fn().weights == {
        "segmentation": 1.0,
        "absence": 2.0,
        "attention_supervision": 0.3,
        "confidence": 0.1,
        "dice": 1.0,
        "false_positive_suppression": 0.5,
        "feature_response_supervision": 0.0,  # beside the seed, off by default
        "absent_top_voxels": 0.0,  # beside the seed, off by default
    }
    assert set(DEFAULT_LOSS_WEIGHTS) == set(LOSS_COMPONENTS)


def test_partial_weights_override_and_unknown_keys_raise():
    w = loss_fn(weights={"absence": 5.0}).weights
    assert w["absence"] == 5.0 and w["dice"] == 1.0 and w["segmentation"] == 1.0
    with pytest.raises(ValueError, match="unknown loss weight keys \\['dicee'\\]"):
        loss_fn(weights={"dicee": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        loss_fn(weights={"dice": -1.0})
    with pytest.raises(ValueError, match="focal_alpha"):
        loss_fn(focal_alpha=1.5)
    with pytest.raises(ValueError, match="focal_gamma"):
        loss_fn(focal_gamma=-1.0)
    with pytest.raises(ValueError, match="structure names"):
        SpatialAttentionLoss([])


def test_returns_total_and_every_component_as_a_zero_dim_tensor():
    out = loss_fn()(make_outputs(), make_targets([[1, 0, 1], [0, 1, 1]]))
    assert list(out) == ["total", *LOSS_COMPONENTS]
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())


# ---------------------------------------------------------------- components by hand


def test_segmentation_is_bce_over_present_pairs_only():
    targets = make_targets([[1, 0, 0]])
    outputs = make_outputs(b=1)
    outputs["segmentation_logits"][0, 1:] = 50.0  # absent structures predicted everywhere: must not count
    out = loss_fn()(outputs, targets)
    assert out["segmentation"].item() == pytest.approx(LOG2, rel=1e-6)  # logit 0 -> BCE log 2 for 0 and 1
    # a better prediction of the present structure lowers it
    better = make_outputs(b=1)
    better["segmentation_logits"][0, 0] = torch.where(targets["segmentation_targets"][0, 0] > 0, 3.0, -3.0)
    expected = F.softplus(torch.tensor(-3.0)).item()
    assert loss_fn()(better, targets)["segmentation"].item() == pytest.approx(expected, rel=1e-6)


def test_dice_over_present_pairs_only():
    targets = make_targets([[1, 0, 0]])
    outputs = make_outputs(b=1)  # p = 0.5 everywhere
    out = loss_fn()(outputs, targets)
    n = targets["segmentation_targets"][0, 0].numel()
    inter, denom = 0.5 * n / 2, 0.5 * n + n / 2
    assert out["dice"].item() == pytest.approx(1 - (2 * inter + 1e-5) / (denom + 1e-5), rel=1e-6)
    perfect = make_outputs(b=1)
    perfect["segmentation_logits"][0, 0] = torch.where(targets["segmentation_targets"][0, 0] > 0, 40.0, -40.0)
    assert loss_fn()(perfect, targets)["dice"].item() == pytest.approx(0.0, abs=1e-6)


def test_absence_focal_by_hand_and_plain_cross_entropy_limit():
    targets = make_targets([[1, 0, 1]])
    outputs = make_outputs(b=1)  # logits (0, 0): p_t = 0.5
    got = loss_fn()(outputs, targets)["absence"].item()
    # alpha_t (1 - p_t)^2 CE: present 0.25, absent 0.75
    expected = (0.25 + 0.75 + 0.25) / 3 * 0.25 * LOG2
    assert got == pytest.approx(expected, rel=1e-6)

    logits = torch.randn(2, 3, 2)
    outputs = make_outputs()
    outputs["absence_logits"] = logits
    targets = make_targets([[1, 0, 1], [0, 0, 1]])
    plain = loss_fn(focal_alpha=None, focal_gamma=0.0)(outputs, targets)["absence"]
    ce = F.cross_entropy(logits.reshape(-1, 2), targets["presence_targets"].reshape(-1).long())
    torch.testing.assert_close(plain, ce)


def test_absence_prefers_the_right_call():
    targets = make_targets([[1, 0, 1]])
    right, wrong = make_outputs(b=1), make_outputs(b=1)
    right["absence_logits"] = torch.tensor([[[-2.0, 2.0], [2.0, -2.0], [-2.0, 2.0]]])
    wrong["absence_logits"] = -right["absence_logits"]
    loss = loss_fn()
    neutral = make_outputs(b=1)
    assert loss(right, targets)["absence"] < loss(neutral, targets)["absence"] < loss(wrong, targets)["absence"]


def test_false_positive_suppression_is_mean_probability_on_absent_pairs():
    targets = make_targets([[1, 0, 0]])
    loss = loss_fn()
    outputs = make_outputs(b=1, fill_logit=0.0)
    assert loss(outputs, targets)["false_positive_suppression"].item() == pytest.approx(0.5)
    empty = make_outputs(b=1, fill_logit=-40.0)
    empty["segmentation_logits"][0, 0] = 40.0  # present structure: not penalised
    assert loss(empty, targets)["false_positive_suppression"].item() == pytest.approx(0.0, abs=1e-12)
    # predicted volume on absent structure 1: a quarter of its voxels, then half
    values = []
    for frac in (0.25, 0.5):
        o = make_outputs(b=1, fill_logit=-40.0)
        flat = o["segmentation_logits"][0, 1].view(-1)
        flat[: int(frac * flat.numel())] = 40.0
        values.append(loss(o, targets)["false_positive_suppression"].item())
    assert values[0] == pytest.approx(0.25 / 2) and values[1] == pytest.approx(0.5 / 2)
    # nothing absent -> 0
    assert loss(outputs, make_targets([[1, 1, 1]]))["false_positive_suppression"].item() == 0.0


def test_attention_supervision_bce_and_default_target_is_the_mask():
    targets = make_targets([[1, 0, 1]])
    loss = loss_fn()
    outputs = make_outputs(b=1)
    assert loss(outputs, targets)["attention_supervision"].item() == pytest.approx(LOG2, rel=1e-6)
    outputs["attention_maps"] = targets["segmentation_targets"].clone()
    assert loss(outputs, targets)["attention_supervision"].item() < 1e-5
    explicit = dict(targets, attention_targets=targets["segmentation_targets"].clone())
    outputs = make_outputs(b=1)
    outputs["attention_maps"] = torch.rand_like(outputs["attention_maps"])
    torch.testing.assert_close(
        loss(outputs, targets)["attention_supervision"], loss(outputs, explicit)["attention_supervision"]
    )
    soft = dict(targets, attention_targets=torch.full_like(targets["segmentation_targets"], 0.5))
    assert loss(outputs, soft)["attention_supervision"] != loss(outputs, targets)["attention_supervision"]


def test_absent_top_voxels_averages_the_most_confident_voxels_of_absent_structures():
    presence = [[1, 0, 1], [0, 1, 1]]  # absent pairs: (0, 1) and (1, 0)
    outputs, targets = make_outputs(fill_logit=-30.0, requires_grad=False), make_targets(presence)
    logits = outputs["segmentation_logits"]
    logits[0, 1, 0, 0, 0] = 5.0  # one voxel painted confidently (probability 0.9933)
    logits[0, 1, 1, 2, :3] = 0.0  # three at probability 0.5
    logits[0, 0] = 30.0  # a present pair painted everywhere: not counted
    logits.requires_grad_(True)
    out = loss_fn(absent_top_k=2)(outputs, targets)
    # by hand: pair (0, 1) averages its top two, sigmoid(5) and 0.5; pair (1, 0) is empty (sigmoid(-30) ~ 1e-13)
    p5 = 1 / (1 + math.exp(-5))
    assert out["absent_top_voxels"].item() == pytest.approx(((p5 + 0.5) / 2 + 0.0) / 2, abs=1e-6)
    # weight 0 by default: the total is the seed's six-part sum; a weight adds it
    seed_total = sum(DEFAULT_LOSS_WEIGHTS[k] * out[k] for k in LOSS_COMPONENTS if k != "absent_top_voxels")
    torch.testing.assert_close(out["total"], seed_total)
    weighted = loss_fn(absent_top_k=2, weights={"absent_top_voxels": 3.0})(outputs, targets)
    torch.testing.assert_close(weighted["total"], seed_total + 3.0 * out["absent_top_voxels"])
    # the gradient reaches only the two voxels it averages (the segmentation BCE and Dice see present pairs only;
    # the seed's false-positive term touches every voxel, so it is switched off here)
    only_top = loss_fn(absent_top_k=2, weights={k: 0.0 for k in LOSS_COMPONENTS} | {"absent_top_voxels": 1.0})
    only_top(outputs, targets)["total"].backward()
    touched = (logits.grad.abs() > 1e-12).nonzero().tolist()
    assert len(touched) == 2 and [0, 1, 0, 0, 0] in touched
    # top_k larger than the volume averages every voxel; no absent pair gives 0
    every = loss_fn(absent_top_k=1000)(outputs, targets)["absent_top_voxels"].item()
    assert every == pytest.approx((p5 + 3 * 0.5) / 24 / 2, abs=1e-6)
    assert loss_fn()(outputs, make_targets([[1, 1, 1], [1, 1, 1]]))["absent_top_voxels"].item() == 0.0
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="absent_top_k"):
            loss_fn(absent_top_k=bad)


def test_feature_response_supervision_is_bce_plus_present_dice_and_off_by_default():
    presence = [[1, 0, 1], [0, 1, 1]]
    outputs, targets = make_outputs(fill_logit=0.0), make_targets(presence)
    outputs["feature_responses"] = torch.zeros(2, 3, 2, 3, 4)
    outputs["feature_responses"][..., :2] = 3.0  # fires on the half where present structures are
    out = loss_fn()(outputs, targets)
    # by hand: on present pairs half the voxels are right at logit 3 (-log sigmoid(3)) and half at logit 0 (log 2);
    # on absent pairs half are wrong at logit 3 (-log sigmoid(-3)) and half right at logit 0 (log 2)
    n_present = np.asarray(presence).sum()
    n_absent = np.asarray(presence).size - n_present
    right3, wrong3 = -math.log(1 / (1 + math.exp(-3))), -math.log(1 / (1 + math.exp(3)))
    bce = (n_present * (right3 + LOG2) / 2 + n_absent * (wrong3 + LOG2) / 2) / (n_present + n_absent)
    # soft Dice on present pairs: sigmoid(3) on the 12 foreground voxels, 0.5 on the 12 others
    p3 = 1 / (1 + math.exp(-3))
    dice = 1 - (2 * 12 * p3 + 1e-5) / (12 * p3 + 12 * 0.5 + 12 + 1e-5)
    expected = bce + dice
    assert out["feature_response_supervision"].item() == pytest.approx(expected, rel=1e-5)
    # weight 0 by default: the total is the seed's six-part sum
    seed_total = sum(DEFAULT_LOSS_WEIGHTS[k] * out[k] for k in LOSS_COMPONENTS if k != "feature_response_supervision")
    torch.testing.assert_close(out["total"], seed_total)
    weighted = loss_fn(weights={"feature_response_supervision": 2.0})(outputs, targets)
    torch.testing.assert_close(weighted["total"], seed_total + 2.0 * out["feature_response_supervision"])
    # absent from the outputs: 0 at weight 0, a KeyError naming the key when it is needed
    del outputs["feature_responses"]
    assert loss_fn()(outputs, targets)["feature_response_supervision"].item() == 0.0
    with pytest.raises(KeyError, match="feature_responses"):
        loss_fn(weights={"feature_response_supervision": 1.0})(outputs, targets)
    outputs["feature_responses"] = torch.zeros(2, 3, 2, 3, 5)
    with pytest.raises(ValueError, match=r"expected feature_responses of shape \(2, 3, 2, 3, 4\)"):
        loss_fn()(outputs, targets)


def test_confidence_by_hand_and_confident_wrong_costs_most():
    targets = make_targets([[1, 0, 1]])
    loss = loss_fn()
    # p_t = 0.5 and confidence 0.5: BCE log 2
    assert loss(make_outputs(b=1), targets)["confidence"].item() == pytest.approx(LOG2, rel=1e-6)

    def conf_loss(absence_sign: float, confidence: float) -> float:
        o = make_outputs(b=1)
        o["absence_logits"] = absence_sign * torch.tensor([[[-3.0, 3.0], [3.0, -3.0], [-3.0, 3.0]]])
        o["confidence_scores"] = torch.full((1, 3), confidence)
        return loss(o, targets)["confidence"].item()

    right_confident, right_unsure = conf_loss(1.0, 0.95), conf_loss(1.0, 0.2)
    wrong_confident, wrong_unsure = conf_loss(-1.0, 0.95), conf_loss(-1.0, 0.2)
    assert right_confident < right_unsure
    assert wrong_unsure < wrong_confident
    assert wrong_confident == max(right_confident, right_unsure, wrong_confident, wrong_unsure)


def test_total_is_weighted_sum_and_follows_weight_override():
    outputs, targets = make_outputs(), make_targets([[1, 0, 1], [0, 1, 0]])
    outputs["segmentation_logits"] = torch.randn_like(outputs["segmentation_logits"])
    outputs["absence_logits"] = torch.randn(2, 3, 2)
    weights = {"segmentation": 0.7, "absence": 3.0, "dice": 0.0}
    for loss in (loss_fn(), loss_fn(weights=weights)):
        out = loss(outputs, targets)
        expected = sum(loss.weights[k] * out[k] for k in LOSS_COMPONENTS)
        torch.testing.assert_close(out["total"], expected)
    a, b = loss_fn()(outputs, targets), loss_fn(weights=weights)(outputs, targets)
    torch.testing.assert_close(b["total"] - a["total"], -0.3 * a["segmentation"] + 1.0 * a["absence"] - a["dice"])


@pytest.mark.parametrize(
    "presence",
    [[[0, 0, 0], [0, 0, 0]], [[1, 1, 1], [1, 1, 1]], [[1, 0, 1], [0, 1, 0]]],
    ids=["absent", "present", "mixed"],
)
def test_finite_gradients_in_all_batch_kinds(presence):
    outputs = make_outputs(requires_grad=True)
    with torch.no_grad():
        outputs["segmentation_logits"].normal_()
        outputs["absence_logits"].normal_()
        outputs["attention_maps"].uniform_(0.0, 1.0)
        outputs["confidence_scores"].uniform_(0.0, 1.0)
        outputs["attention_maps"][0, 0, 0, 0, 0] = 0.0  # saturated values must stay finite
        outputs["confidence_scores"][0, 0] = 1.0
    out = loss_fn()(outputs, make_targets(presence))
    out["total"].backward()
    assert torch.isfinite(out["total"])
    for key, v in outputs.items():
        assert v.grad is not None and torch.isfinite(v.grad).all(), key
    grad_norm = outputs["segmentation_logits"].grad.abs().sum()
    assert grad_norm > 0  # BCE/Dice (present) or false-positive suppression (absent) always pull on logits
    if np.all(np.asarray(presence) == 0):
        assert out["segmentation"].item() == 0.0 and out["dice"].item() == 0.0
    if np.all(np.asarray(presence) == 1):
        assert out["false_positive_suppression"].item() == 0.0


def test_gradient_step_lowers_each_component():
    torch.manual_seed(1)
    outputs = make_outputs(requires_grad=False)
    outputs = {
        k: (torch.randn_like(v) * 0.5 if "logits" in k else v.clone()).requires_grad_(True) for k, v in outputs.items()
    }
    targets = make_targets([[1, 0, 1], [0, 1, 0]])
    loss = loss_fn()
    before = loss(outputs, targets)
    for name in LOSS_COMPONENTS:
        grads = torch.autograd.grad(before[name], list(outputs.values()), retain_graph=True, allow_unused=True)
        stepped = {
            k: (v - 0.05 * g if g is not None else v).detach() for (k, v), g in zip(outputs.items(), grads)
        }
        stepped["attention_maps"] = stepped["attention_maps"].clamp(0, 1)
        stepped["confidence_scores"] = stepped["confidence_scores"].clamp(0, 1)
        assert loss(stepped, targets)[name] < before[name], name


# ---------------------------------------------------------------- errors


def test_shape_mismatches_raise_value_error_with_expected_and_got():
    loss = loss_fn()
    targets = make_targets([[1, 0, 1], [0, 1, 0]])
    outputs = make_outputs()
    outputs["segmentation_logits"] = torch.zeros(2, 3, 2, 3, 5)
    msg = r"expected segmentation_logits of shape \(2, 3, 2, 3, 4\).*got \(2, 3, 2, 3, 5\)"
    with pytest.raises(ValueError, match=msg):
        loss(outputs, targets)
    outputs = make_outputs()
    outputs["absence_logits"] = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"expected absence_logits of shape \(2, 3, 2\).*got \(2, 3\)"):
        loss(outputs, targets)
    outputs = make_outputs()
    outputs["confidence_scores"] = torch.zeros(2, 4)
    with pytest.raises(ValueError, match=r"confidence_scores.*\(2, 3\).*got \(2, 4\)"):
        loss(outputs, targets)
    with pytest.raises(ValueError, match=r"presence_targets.*\(2, 3\).*got \(2,\)"):
        loss(make_outputs(), dict(targets, presence_targets=torch.ones(2)))
    with pytest.raises(ValueError, match=r"attention_targets.*got \(2, 3, 1, 1, 1\)"):
        loss(make_outputs(), dict(targets, attention_targets=torch.ones(2, 3, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"expected 2 structures"):
        SpatialAttentionLoss(["a", "b"])(make_outputs(), targets)
    with pytest.raises(KeyError, match="confidence_scores"):
        outputs = make_outputs()
        del outputs["confidence_scores"]
        loss(outputs, targets)
    with pytest.raises(KeyError, match="presence_targets"):
        loss(make_outputs(), {"segmentation_targets": targets["segmentation_targets"]})


# ---------------------------------------------------------------- MONAI engine path


class TinyAbsenceNet(torch.nn.Module):
    """Smallest network with SADAAn's output dict, for the engine test."""

    def __init__(self, num_structures: int) -> None:
        super().__init__()
        self.seg = torch.nn.Conv3d(1, num_structures, 3, padding=1)
        self.att = torch.nn.Conv3d(1, num_structures, 3, padding=1)
        self.absence = torch.nn.Linear(2, num_structures * 2)
        self.confidence = torch.nn.Linear(2, num_structures)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = torch.stack([x.mean((1, 2, 3, 4)), x.amax((1, 2, 3, 4))], dim=1)
        absence_logits = self.absence(pooled).view(x.shape[0], -1, 2)
        logits = self.seg(x)
        return {
            "segmentation_logits": logits,
            "segmentation_probs": torch.sigmoid(logits),
            "attention_maps": torch.sigmoid(self.att(x)),
            "absence_logits": absence_logits,
            "presence_probs": absence_logits.softmax(-1)[..., 1],
            "confidence_scores": torch.sigmoid(self.confidence(pooled)),
        }


def test_supervised_trainer_with_component_loss_and_transforms():
    from ignite.engine import Events
    from monai.data import DataLoader, Dataset
    from monai.engines import SupervisedTrainer
    from monai.transforms import Compose, EnsureTyped

    from monai_glue import ComponentLoss, DictTargetPrepareBatch, LossComponentsHandler
    from monai_sadaan.transforms import CTWindowd, LabelMapToStructuresd

    rng = np.random.default_rng(0)
    structures = {"liver": 1, "spleen": 2}
    items = []
    for i in range(4):
        label = np.zeros((1, 8, 8, 8), np.int64)
        label[0, 1:4, 1:5, 1:5] = 1
        if i % 2 == 0:  # spleen absent in half of the cases
            label[0, 5:7, 5:7, 5:7] = 2
        image = rng.normal(-100, 20, label.shape).astype(np.float32) + 150.0 * label
        items.append({"image": image, "label": label})
    transforms = Compose(
        [
            CTWindowd("image"),
            LabelMapToStructuresd("label", structures, attention_sigma=1.0),
            EnsureTyped(["image", "segmentation_targets", "presence_targets", "attention_targets"]),
        ]
    )
    loader = DataLoader(Dataset(items, transforms), batch_size=2)
    net = TinyAbsenceNet(len(structures))
    loss = ComponentLoss(SpatialAttentionLoss(list(structures)))
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=3,
        train_data_loader=loader,
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-2),
        loss_function=loss,
        prepare_batch=DictTargetPrepareBatch(
            "image", ["segmentation_targets", "presence_targets", "attention_targets"]
        ),
        decollate=False,
    )
    LossComponentsHandler(loss).attach(trainer)
    epoch_totals = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: epoch_totals.append(e.state.metrics["loss_total"]))
    trainer.run()
    out = trainer.state.output
    for name in ("total", *LOSS_COMPONENTS):
        assert np.isfinite(out[f"loss_{name}"]), name
    assert out["loss_total"] == pytest.approx(out["loss"].item(), rel=1e-5)
    assert len(epoch_totals) == 3 and epoch_totals[-1] < epoch_totals[0]


def test_loss_on_the_sadaan_network_outputs():
    """The loss accepts the team's network output dict as it is and sends finite gradients to its parameters."""
    from monai_sadaan.networks import SpatialAttentionMedicalSegmenter

    net = SpatialAttentionMedicalSegmenter(1, 3, (16, 16, 16), features=(2, 4, 4, 4, 4), feature_channels=4)
    outputs = net(torch.randn(2, 1, 16, 16, 16))
    targets = make_targets([[1, 0, 1], [0, 0, 1]], spatial=(16, 16, 16))
    out = loss_fn()(outputs, targets)
    out["total"].backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_low_precision_outputs_give_the_float32_values():
    """Mixed-precision networks hand over bfloat16 outputs; the loss computes in float32 and agrees."""
    outputs = make_outputs()
    outputs["segmentation_logits"] = torch.randn_like(outputs["segmentation_logits"])
    outputs["attention_maps"] = torch.rand_like(outputs["attention_maps"])
    outputs["absence_logits"] = torch.randn(2, 3, 2)
    targets = make_targets([[1, 0, 1], [0, 1, 0]])
    low = {k: v.to(torch.bfloat16) for k, v in outputs.items()}
    ref = loss_fn()({k: v.to(torch.bfloat16).float() for k, v in outputs.items()}, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss_fn()(low, targets)
    for k in ref:
        assert got[k].dtype == torch.float32, k
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6)
