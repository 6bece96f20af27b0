"""Seed 002's torchinfo table, reproduced row for row by SpatialAttentionMedicalSegmenter (full size, slow)."""

from __future__ import annotations

import re

import pytest
import torch

from monai_sadaan.networks import SpatialAttentionMedicalSegmenter

torchinfo = pytest.importorskip("torchinfo")

# Verbatim from shared/seeds/002_f0de12ba1cb22526.txt ("torchinfo summary"), torchinfo 1.8.0, input (2, 1, 64, 64, 64).
SEED_002_TABLE = """\
======================================================================================================================================================================
Layer (type (var_name))                                                Input Shape      Output Shape     Param #          Param %          Kernel Shape     Mult-Adds
======================================================================================================================================================================
SpatialAttentionMedicalSegmenter (SpatialAttentionMedicalSegmenter)    [2, 1, 64, 64, 64] [2, 5, 64, 64, 64] --                    --          --               --
├─Encoder (encoder)                                                    [2, 1, 64, 64, 64] [2, 128, 64, 64, 64] --                    --          --               --
│    └─Sequential (enc1)                                               [2, 1, 64, 64, 64] [2, 16, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 1, 64, 64, 64] [2, 16, 64, 64, 64] 448                0.01%          [3, 3, 3]        234,881,024
│    │    └─BatchNorm3d (1)                                            [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] 32                 0.00%          --               64
│    │    └─ReLU (2)                                                   [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] 6,928              0.09%          [3, 3, 3]        3,632,267,264
│    │    └─BatchNorm3d (4)                                            [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] 32                 0.00%          --               64
│    │    └─ReLU (5)                                                   [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] --                    --          --               --
│    └─MaxPool3d (pool)                                                [2, 16, 64, 64, 64] [2, 16, 32, 32, 32] --                    --          2                --
│    └─Sequential (enc2)                                               [2, 16, 32, 32, 32] [2, 32, 32, 32, 32] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 16, 32, 32, 32] [2, 32, 32, 32, 32] 13,856             0.17%          [3, 3, 3]        908,066,816
│    │    └─BatchNorm3d (1)                                            [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] 64                 0.00%          --               128
│    │    └─ReLU (2)                                                   [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] 27,680             0.35%          [3, 3, 3]        1,814,036,480
│    │    └─BatchNorm3d (4)                                            [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] 64                 0.00%          --               128
│    │    └─ReLU (5)                                                   [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] --                    --          --               --
│    └─MaxPool3d (pool)                                                [2, 32, 32, 32, 32] [2, 32, 16, 16, 16] --               (recursive)      2                --
│    └─Sequential (enc3)                                               [2, 32, 16, 16, 16] [2, 64, 16, 16, 16] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 32, 16, 16, 16] [2, 64, 16, 16, 16] 55,360             0.69%          [3, 3, 3]        453,509,120
│    │    └─BatchNorm3d (1)                                            [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] 128                0.00%          --               256
│    │    └─ReLU (2)                                                   [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] 110,656            1.38%          [3, 3, 3]        906,493,952
│    │    └─BatchNorm3d (4)                                            [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] 128                0.00%          --               256
│    │    └─ReLU (5)                                                   [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] --                    --          --               --
│    └─MaxPool3d (pool)                                                [2, 64, 16, 16, 16] [2, 64, 8, 8, 8] --               (recursive)      2                --
│    └─Sequential (enc4)                                               [2, 64, 8, 8, 8] [2, 128, 8, 8, 8] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 64, 8, 8, 8] [2, 128, 8, 8, 8] 221,312            2.76%          [3, 3, 3]        226,623,488
│    │    └─BatchNorm3d (1)                                            [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] 256                0.00%          --               512
│    │    └─ReLU (2)                                                   [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] 442,496            5.52%          [3, 3, 3]        453,115,904
│    │    └─BatchNorm3d (4)                                            [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] 256                0.00%          --               512
│    │    └─ReLU (5)                                                   [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] --                    --          --               --
│    └─MaxPool3d (pool)                                                [2, 128, 8, 8, 8] [2, 128, 4, 4, 4] --               (recursive)      2                --
│    └─Sequential (enc5)                                               [2, 128, 4, 4, 4] [2, 256, 4, 4, 4] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 128, 4, 4, 4] [2, 256, 4, 4, 4] 884,992           11.04%          [3, 3, 3]        113,278,976
│    │    └─BatchNorm3d (1)                                            [2, 256, 4, 4, 4] [2, 256, 4, 4, 4] 512                0.01%          --               1,024
│    │    └─ReLU (2)                                                   [2, 256, 4, 4, 4] [2, 256, 4, 4, 4] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 256, 4, 4, 4] [2, 256, 4, 4, 4] 1,769,728         22.07%          [3, 3, 3]        226,525,184
│    │    └─BatchNorm3d (4)                                            [2, 256, 4, 4, 4] [2, 256, 4, 4, 4] 512                0.01%          --               1,024
│    │    └─ReLU (5)                                                   [2, 256, 4, 4, 4] [2, 256, 4, 4, 4] --                    --          --               --
│    └─ConvTranspose3d (up4)                                           [2, 256, 4, 4, 4] [2, 128, 8, 8, 8] 262,272            3.27%          [2, 2, 2]        268,566,528
│    └─Sequential (dec4)                                               [2, 256, 8, 8, 8] [2, 128, 8, 8, 8] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 256, 8, 8, 8] [2, 128, 8, 8, 8] 884,864           11.03%          [3, 3, 3]        906,100,736
│    │    └─BatchNorm3d (1)                                            [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] 256                0.00%          --               512
│    │    └─ReLU (2)                                                   [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] 442,496            5.52%          [3, 3, 3]        453,115,904
│    │    └─BatchNorm3d (4)                                            [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] 256                0.00%          --               512
│    │    └─ReLU (5)                                                   [2, 128, 8, 8, 8] [2, 128, 8, 8, 8] --                    --          --               --
│    └─ConvTranspose3d (up3)                                           [2, 128, 8, 8, 8] [2, 64, 16, 16, 16] 65,600             0.82%          [2, 2, 2]        537,395,200
│    └─Sequential (dec3)                                               [2, 128, 16, 16, 16] [2, 64, 16, 16, 16] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 128, 16, 16, 16] [2, 64, 16, 16, 16] 221,248            2.76%          [3, 3, 3]        1,812,463,616
│    │    └─BatchNorm3d (1)                                            [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] 128                0.00%          --               256
│    │    └─ReLU (2)                                                   [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] 110,656            1.38%          [3, 3, 3]        906,493,952
│    │    └─BatchNorm3d (4)                                            [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] 128                0.00%          --               256
│    │    └─ReLU (5)                                                   [2, 64, 16, 16, 16] [2, 64, 16, 16, 16] --                    --          --               --
│    └─ConvTranspose3d (up2)                                           [2, 64, 16, 16, 16] [2, 32, 32, 32, 32] 16,416             0.20%          [2, 2, 2]        1,075,838,976
│    └─Sequential (dec2)                                               [2, 64, 32, 32, 32] [2, 32, 32, 32, 32] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 64, 32, 32, 32] [2, 32, 32, 32, 32] 55,328             0.69%          [3, 3, 3]        3,625,975,808
│    │    └─BatchNorm3d (1)                                            [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] 64                 0.00%          --               128
│    │    └─ReLU (2)                                                   [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] 27,680             0.35%          [3, 3, 3]        1,814,036,480
│    │    └─BatchNorm3d (4)                                            [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] 64                 0.00%          --               128
│    │    └─ReLU (5)                                                   [2, 32, 32, 32, 32] [2, 32, 32, 32, 32] --                    --          --               --
│    └─ConvTranspose3d (up1)                                           [2, 32, 32, 32, 32] [2, 16, 64, 64, 64] 4,112              0.05%          [2, 2, 2]        2,155,872,256
│    └─Sequential (dec1)                                               [2, 32, 64, 64, 64] [2, 16, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 32, 64, 64, 64] [2, 16, 64, 64, 64] 13,840             0.17%          [3, 3, 3]        7,256,145,920
│    │    └─BatchNorm3d (1)                                            [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] 32                 0.00%          --               64
│    │    └─ReLU (2)                                                   [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] 6,928              0.09%          [3, 3, 3]        3,632,267,264
│    │    └─BatchNorm3d (4)                                            [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] 32                 0.00%          --               64
│    │    └─ReLU (5)                                                   [2, 16, 64, 64, 64] [2, 16, 64, 64, 64] --                    --          --               --
│    └─Conv3d (final_conv)                                             [2, 16, 64, 64, 64] [2, 128, 64, 64, 64] 2,176              0.03%          [1, 1, 1]        1,140,850,688
├─AnatomicalAttentionModule (attention_module)                         [2, 128, 64, 64, 64] [2, 5, 64, 64, 64] 1,310,720         16.34%          --               --
│    └─Sequential (attention_conv)                                     [2, 128, 64, 64, 64] [2, 5, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 128, 64, 64, 64] [2, 64, 64, 64, 64] 221,248            2.76%          [3, 3, 3]        115,997,671,424
│    │    └─BatchNorm3d (1)                                            [2, 64, 64, 64, 64] [2, 64, 64, 64, 64] 128                0.00%          --               256
│    │    └─ReLU (2)                                                   [2, 64, 64, 64, 64] [2, 64, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 64, 64, 64, 64] [2, 5, 64, 64, 64] 325                0.00%          [1, 1, 1]        170,393,600
│    │    └─Sigmoid (4)                                                [2, 5, 64, 64, 64] [2, 5, 64, 64, 64] --                    --          --               --
│    └─Sequential (feature_matcher)                                    [2, 128, 64, 64, 64] [2, 5, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 128, 64, 64, 64] [2, 128, 64, 64, 64] 442,496            5.52%          [3, 3, 3]        231,995,342,848
│    │    └─BatchNorm3d (1)                                            [2, 128, 64, 64, 64] [2, 128, 64, 64, 64] 256                0.00%          --               512
│    │    └─ReLU (2)                                                   [2, 128, 64, 64, 64] [2, 128, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 128, 64, 64, 64] [2, 5, 64, 64, 64] 645                0.01%          [1, 1, 1]        338,165,760
├─AbsenceDetectionHead (absence_detector)                              [2, 128, 64, 64, 64] [2, 5]           --                    --          --               --
│    └─AdaptiveAvgPool3d (global_pool)                                 [2, 128, 64, 64, 64] [2, 128, 1, 1, 1] --                    --          --               --
│    └─ModuleList (absence_classifiers)                                --               --               --                    --          --               --
│    │    └─Sequential (0)                                             [2, 129]         [2, 2]           10,466             0.13%          --               20,932
│    │    └─Sequential (1)                                             [2, 129]         [2, 2]           10,466             0.13%          --               20,932
│    │    └─Sequential (2)                                             [2, 129]         [2, 2]           10,466             0.13%          --               20,932
│    │    └─Sequential (3)                                             [2, 129]         [2, 2]           10,466             0.13%          --               20,932
│    │    └─Sequential (4)                                             [2, 129]         [2, 2]           10,466             0.13%          --               20,932
│    └─Sequential (confidence_head)                                    [2, 128]         [2, 5]           --                    --          --               --
│    │    └─Linear (0)                                                 [2, 128]         [2, 64]          8,256              0.10%          --               16,512
│    │    └─ReLU (1)                                                   [2, 64]          [2, 64]          --                    --          --               --
│    │    └─Linear (2)                                                 [2, 64]          [2, 5]           325                0.00%          --               650
│    │    └─Sigmoid (3)                                                [2, 5]           [2, 5]           --                    --          --               --
├─SegmentationHead (segmentation_head)                                 [2, 128, 64, 64, 64] [2, 5, 64, 64, 64] --                    --          --               --
│    └─Sequential (feature_refine)                                     [2, 128, 64, 64, 64] [2, 64, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (0)                                                 [2, 128, 64, 64, 64] [2, 64, 64, 64, 64] 221,248            2.76%          [3, 3, 3]        115,997,671,424
│    │    └─BatchNorm3d (1)                                            [2, 64, 64, 64, 64] [2, 64, 64, 64, 64] 128                0.00%          --               256
│    │    └─ReLU (2)                                                   [2, 64, 64, 64, 64] [2, 64, 64, 64, 64] --                    --          --               --
│    │    └─Conv3d (3)                                                 [2, 64, 64, 64, 64] [2, 64, 64, 64, 64] 110,656            1.38%          [3, 3, 3]        58,015,612,928
│    │    └─BatchNorm3d (4)                                            [2, 64, 64, 64, 64] [2, 64, 64, 64, 64] 128                0.00%          --               256
│    │    └─ReLU (5)                                                   [2, 64, 64, 64, 64] [2, 64, 64, 64, 64] --                    --          --               --
│    └─Conv3d (segmentation_layer)                                     [10, 64, 64, 64, 64] [10, 5, 64, 64, 64] 325                0.00%          [1, 1, 1]        851,968,000
======================================================================================================================================================================
Total params: 8,019,230
Trainable params: 8,019,230
Non-trainable params: 0
Total mult-adds (Units.GIGABYTES): 557.92
======================================================================================================================================================================
Input size (MB): 2.10
Forward/backward pass size (MB): 4171.24
Params size (MB): 26.83
Estimated Total Size (MB): 4200.18
======================================================================================================================================================================
"""

SUMMARY_KWARGS = {
    "input_size": (2, 1, 64, 64, 64),
    "depth": 3,
    "col_names": ("input_size", "output_size", "num_params", "params_percent", "kernel_size", "mult_adds"),
    "row_settings": ("var_names",),
    "verbose": 0,
}


def fold(table: str) -> list[str]:
    """Rows with white space folded; separator rules (whose width depends on column widths) become "=" / "-"."""
    rows = []
    for line in table.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        if set(line) <= {"="} or set(line) <= {"-"}:
            line = line[0]
        rows.append(line)
    return rows


def total(rows: list[str], label: str) -> str:
    (row,) = [r for r in rows if r.startswith(label)]
    return row.split(":")[-1].strip()


def layer_row(rows: list[str], name: str) -> str:
    (row,) = [r for r in rows if f"({name})" in r]
    return row


@pytest.fixture(scope="module")
def tables() -> dict[str, list[str]]:
    """torchinfo tables of the seed configuration with the literal and the efficient segmentation head."""
    out = {}
    for efficient in (False, True):
        torch.manual_seed(0)
        net = SpatialAttentionMedicalSegmenter(memory_efficient_head=efficient)
        out["efficient" if efficient else "literal"] = fold(str(torchinfo.summary(net, **SUMMARY_KWARGS)))
        del net
    return out


def test_seed_table_constant_is_intact():
    rows = fold(SEED_002_TABLE)
    assert len(rows) == 122
    assert total(rows, "Total params") == "8,019,230"
    assert total(rows, "Total mult-adds (Units.GIGABYTES)") == "557.92"


@pytest.mark.slow
def test_literal_head_reproduces_seed_table_row_by_row(tables):
    expected, got = fold(SEED_002_TABLE), tables["literal"]
    assert len(got) == len(expected)
    for index, (want, have) in enumerate(zip(expected, got)):
        assert have == want, f"row {index} differs:\n  seed: {want}\n  ours: {have}"
    assert total(got, "Total params") == "8,019,230"
    assert total(got, "Trainable params") == "8,019,230"
    assert total(got, "Total mult-adds (Units.GIGABYTES)") == "557.92"
    assert total(got, "Forward/backward pass size (MB)") == "4171.24"
    assert total(got, "Params size (MB)") == "26.83"


@pytest.mark.slow
def test_efficient_head_differs_only_in_segmentation_layer_and_totals(tables):
    literal, efficient = tables["literal"], tables["efficient"]
    assert len(literal) == len(efficient)
    differing = [index for index, (a, b) in enumerate(zip(literal, efficient)) if a != b]
    labels = [efficient[i].split(":")[0] if ":" in efficient[i] else efficient[i].split("[")[0].strip() for i in differing]
    assert labels == [
        "│ └─Conv3d (segmentation_layer)",
        "Total mult-adds (Units.GIGABYTES)",
        "Forward/backward pass size (MB)",
        "Estimated Total Size (MB)",
    ]
    # one [B, 64, ...] -> [B, S, ...] convolution instead of [B*S, 64, ...] -> [B*S, S, ...]: 1/S of the work
    row = layer_row(efficient, "segmentation_layer")
    assert "[2, 64, 64, 64, 64] [2, 5, 64, 64, 64] 325" in row and row.endswith(f"{851_968_000 // 5:,}")
    assert total(efficient, "Total params") == "8,019,230"
    assert total(efficient, "Params size (MB)") == "26.83"
    # totals drop by exactly the work and the activations the copy used to cost
    mult_adds = float(total(efficient, "Total mult-adds (Units.GIGABYTES)"))
    assert mult_adds == pytest.approx(557.92 - (851_968_000 - 170_393_600) / 1e9, abs=0.006)
    fwd_bwd = float(total(efficient, "Forward/backward pass size (MB)"))
    saved_mb = 2 * (10 - 2) * 5 * 64**3 * 4 / 1e6  # output of the layer, counted for forward and backward
    assert fwd_bwd == pytest.approx(4171.24 - saved_mb, abs=0.01)


def test_tiny_summary_top_row_is_the_mask_tensor():
    """torchinfo reads the last dict value for the top row: it must stay the [B, S, D, H, W] masks."""
    net = SpatialAttentionMedicalSegmenter(
        num_structures=3, spatial_dims=(16, 16, 32), features=(4, 8, 8, 8, 8), feature_channels=8
    )
    kwargs = {**SUMMARY_KWARGS, "input_size": (2, 1, 16, 16, 32)}
    rows = fold(str(torchinfo.summary(net, **kwargs)))
    top = [r for r in rows if r.startswith("SpatialAttentionMedicalSegmenter")][0]
    assert re.search(r"\[2, 1, 16, 16, 32\] \[2, 3, 16, 16, 32\]", top)
    assert "[6, 4, 16, 16, 32] [6, 3, 16, 16, 32]" not in " ".join(rows)  # efficient head by default
    assert layer_row(rows, "segmentation_layer").startswith("│ └─Conv3d (segmentation_layer) [2, 4, 16, 16, 32] [2, 3, 16, 16, 32]")
