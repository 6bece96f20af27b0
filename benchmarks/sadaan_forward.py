"""SADAAn forward/training cost at the seed configuration (1 x 1 x 64^3), each variant in a fresh subprocess.

Measured, all in the same run (same machine, same load):

* eval forward, seed layout: ``memory_efficient_head=False`` (the baseline: the literal per-structure copy);
* eval forward, default options: ``memory_efficient_head=True``;
* eval forward, optimised: ``build_fast_inference`` of the default network (BatchNorm folded, the full-resolution
  features kept factorised, ``channels_last_3d``; ``monai_sadaan/networks/fast_inference.py``);
* one ``Conv3d(128, 128, k3, pad 1)`` on ``1 x 128 x 64^3``: the throughput reference (the network's dominant
  layer shape), in multiply-adds per second;
* one training step (forward, loss, backward, SGD step) without and with ``use_checkpoint`` (one timed
  step per subprocess: memory is what is compared).

Every subprocess makes one untimed warm-up call first (library pages, oneDNN kernels, gradient buffers), then
the timed calls. Time: the fastest of ``--repeats`` calls in each of ``--rounds`` subprocesses (variants
interleaved per round so that load from other processes hits all of them alike). Peak memory: the process's peak
resident set during the timed calls minus its resident set just before them, i.e. the activation and workspace
peak of the call itself. The peak is reset after the warm-up through ``/proc/self/clear_refs`` and read from
``VmHWM``; the subprocess runs with ``MALLOC_MMAP_THRESHOLD_=131072`` so that freed tensors go back to the system
and the resident set follows live memory (without ``clear_refs``: ``ru_maxrss`` minus the resident set after
warm-up, which can only overstate). Multiply-adds are torchinfo's (``summary(...).total_mult_adds``) at batch 1.

Targets (exit 0 when all hold): optimised forward memory <= 0.6x and time <= 0.85x the seed layout; its
multiply-adds per second >= 0.9x the single convolution's; checkpointed training step peak memory <= 0.5x.

    flock /tmp/heavy.lock python benchmarks/sadaan_forward.py [--repeats 2] [--rounds 2] [--threads N] [--size 64] [--no-train]

``--variants train,train_checkpointed`` runs only the named variants (comma-separated, from :data:`VARIANTS`);
the tables and targets whose variants all ran are reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

TARGETS = {
    "memory_vs_literal": 0.6,
    "time_vs_literal": 0.85,
    "throughput_vs_conv": 0.9,
    "checkpoint_train_memory": 0.5,
}
FORWARD_VARIANTS = {
    "literal": {"memory_efficient_head": False},
    "efficient": {"memory_efficient_head": True},
    "optimised": {"memory_efficient_head": True},  # then build_fast_inference
}
TRAIN_VARIANTS = {"train": {"use_checkpoint": False}, "train_checkpointed": {"use_checkpoint": True}}
#: every variant, in the order a round runs them
VARIANTS: tuple[str, ...] = (*FORWARD_VARIANTS, "conv", *TRAIN_VARIANTS)
NUM_STRUCTURES = 5


def _status_mib(key: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB, or None where there is none."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the peak resident set (``VmHWM``) to the current one; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    hwm = _status_mib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _mult_adds_saved_by_projection(net, size: tuple[int, int, int]) -> int:
    """Multiply-adds (torchinfo's convention: weights and bias per output voxel) the factorised features skip."""
    voxels = size[0] * size[1] * size[2]
    final = net.encoder.final_conv
    saved = (final.weight.numel() + final.bias.numel()) * voxels
    narrow = final.in_channels + 1
    for conv in (
        net.attention_module.attention_conv[0],
        net.attention_module.feature_matcher[0],
        net.segmentation_head.feature_refine[0],
    ):
        kernel = conv.kernel_size[0] * conv.kernel_size[1] * conv.kernel_size[2]
        saved += conv.out_channels * (conv.in_channels - narrow) * kernel * voxels
    return saved


def _worker(variant: str, repeats: int, threads: int | None, side: int) -> dict:
    """Run one variant in this (fresh) process and return its time and peak memory."""
    import torch

    from monai_sadaan.networks import SpatialAttentionMedicalSegmenter, build_fast_inference

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    SIZE = (side, side, side)
    if variant == "conv":
        layer = torch.nn.Conv3d(128, 128, kernel_size=3, padding=1).eval()
        x = torch.randn(1, 128, *SIZE)

        def call() -> None:
            with torch.inference_mode():
                layer(x)

        # torchinfo's count for a convolution: (weights + bias) x output voxels x batch
        mult_adds = (layer.weight.numel() + layer.bias.numel()) * x[0, 0].numel()
    elif variant == "mult_adds":
        from torchinfo import summary

        out = {}
        for name in ("literal", "efficient"):
            net = SpatialAttentionMedicalSegmenter(
                num_structures=NUM_STRUCTURES, spatial_size=SIZE, **FORWARD_VARIANTS[name]
            )
            stats = summary(net, input_size=(1, 1, *SIZE), verbose=0, mode="eval")
            out[name] = int(stats.total_mult_adds)
        # the fast graph (build_fast_inference) has other layers than the layer list torchinfo counts. It computes the efficient layout's
        # outputs, so the work it stands for is the efficient count ("optimised"); what it executes is less: the
        # three full-resolution head convolutions read features[0] + 1 channels instead of feature_channels and
        # final_conv is never applied (build_fast_inference)
        out["optimised"] = out["efficient"]
        out["optimised_executed"] = out["efficient"] - _mult_adds_saved_by_projection(net, SIZE)
        return {"variant": variant, "mult_adds": out}
    else:
        options = {**FORWARD_VARIANTS, **TRAIN_VARIANTS}[variant]
        net = SpatialAttentionMedicalSegmenter(num_structures=NUM_STRUCTURES, spatial_size=SIZE, **options)
        x = torch.randn(1, 1, *SIZE)
        mult_adds = None
        if variant.startswith("train"):
            net.train()
            optimiser = torch.optim.SGD(net.parameters(), lr=1e-3)
            seg_target = (torch.rand(1, NUM_STRUCTURES, *SIZE) > 0.5).float()
            presence_target = torch.tensor([[1, 0, 1, 1, 0]])

            def call() -> None:
                optimiser.zero_grad(set_to_none=True)
                out = net(x)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out["segmentation_logits"], seg_target)
                absence = out["absence_logits"].flatten(0, 1)
                loss = loss + torch.nn.functional.cross_entropy(absence, presence_target.flatten())
                loss = loss + out["alignment_scores"].mean() + out["confidence_scores"].mean()
                loss.backward()
                optimiser.step()

        else:
            net.eval()
            if variant == "optimised":
                net = build_fast_inference(net)

            def call() -> None:
                with torch.inference_mode():
                    net(x)

    call()  # warm-up, untimed
    gc.collect()
    peak_reset = _reset_peak()
    base = _status_mib("VmRSS") or _peak_mib()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {
        "variant": variant,
        "time_s": min(times),
        "times_s": times,
        "peak_mib": _peak_mib() - base,
        "peak_reset": peak_reset,
        "mult_adds": mult_adds,
        "threads": torch.get_num_threads(),
    }


def select_variants(names: str | None, no_train: bool = False) -> list[str]:
    """The variants to run, in :data:`VARIANTS` order: those named in ``names`` (comma-separated; None: all), without
    the training steps when ``no_train``.

    Raises:
        ValueError: a name not in :data:`VARIANTS`, or nothing left to run.
    """
    chosen = set(VARIANTS) if names is None else {n.strip() for n in names.split(",") if n.strip()}
    unknown = sorted(chosen - set(VARIANTS))
    if unknown:
        raise ValueError(f"expected variants from {', '.join(VARIANTS)}, got {', '.join(unknown)}")
    if no_train:
        chosen -= set(TRAIN_VARIANTS)
    if not chosen:
        raise ValueError(f"expected at least one variant to run, got --variants {names!r} with --no-train {no_train}")
    return [v for v in VARIANTS if v in chosen]


def _run_subprocess(variant: str, repeats: int, threads: int | None, side: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--repeats", str(repeats)]
    cmd += ["--size", str(side)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"worker {variant!r} failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per subprocess (fastest counts)")
    parser.add_argument("--rounds", type=int, default=2, help="subprocesses per variant, interleaved")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--size", type=int, default=64, help="cube side of the input (seed: 64; 32 for a smoke run: the batch-1 training steps need 32 or more)")
    parser.add_argument("--no-train", action="store_true", help="skip the training-step comparison (its target)")
    parser.add_argument(
        "--variants", default=None, help=f"comma-separated variants to run (default all: {','.join(VARIANTS)})"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        parser.error(f"expected --repeats and --rounds >= 1, got {args.repeats} and {args.rounds}")

    if args.worker:
        print(json.dumps(_worker(args.worker, args.repeats, args.threads, args.size)))
        return 0

    try:
        variants = select_variants(args.variants, args.no_train)
    except ValueError as err:
        parser.error(str(err))
    best: dict[str, dict] = {}
    for round_index in range(args.rounds):
        for variant in variants:
            repeats = 1 if variant in TRAIN_VARIANTS else args.repeats  # training steps: memory is the target
            result = _run_subprocess(variant, repeats, args.threads, args.size)
            times = ", ".join(f"{t:.2f}" for t in result["times_s"])
            print(f"round {round_index + 1} {variant:>18}: {times} s, peak +{result['peak_mib']:.0f} MiB", flush=True)
            kept = best.setdefault(variant, result)
            kept["time_s"] = min(kept["time_s"], result["time_s"])
            kept["peak_mib"] = max(kept["peak_mib"], result["peak_mib"]) if round_index else result["peak_mib"]
    forward_ran = all(v in best for v in (*FORWARD_VARIANTS, "conv"))  # the forward table compares all four
    train_ran = all(v in best for v in TRAIN_VARIANTS)
    ratios: dict[str, float] = {}
    any_result = best[variants[0]]
    print()
    print(f"SADAAn seed configuration, input 1x1x{args.size}^3, torch threads {any_result['threads']}, "
          f"{args.rounds} rounds x {args.repeats} calls, fastest call; peak = resident-set peak over the call in a "
          f"fresh subprocess ({'VmHWM after clear_refs' if any_result['peak_reset'] else 'ru_maxrss'})")
    if forward_ran:
        mult_adds = _run_subprocess("mult_adds", 1, args.threads, args.size)["mult_adds"]
        conv = best["conv"]
        conv_rate = conv["mult_adds"] / conv["time_s"]
        literal = best["literal"]
        rows = []
        for name in FORWARD_VARIANTS:
            r = best[name]
            rate = mult_adds[name] / r["time_s"]
            rows.append(
                (name, r["time_s"], r["time_s"] / literal["time_s"], r["peak_mib"], r["peak_mib"] / literal["peak_mib"],
                 mult_adds[name] / 1e9, rate / 1e9, rate / conv_rate)
            )
        ratios["memory_vs_literal"] = best["optimised"]["peak_mib"] / literal["peak_mib"]
        ratios["time_vs_literal"] = best["optimised"]["time_s"] / literal["time_s"]
        ratios["throughput_vs_conv"] = (mult_adds["optimised"] / best["optimised"]["time_s"]) / conv_rate
        print("| variant | time (s) | time vs literal | peak (MiB) | peak vs literal | mult-adds (G) | G mult-adds/s "
              "| vs conv |")
        print("|---|---|---|---|---|---|---|---|")
        for name, t, tr, m, mr, g, rate, vs in rows:
            print(f"| {name} | {t:.2f} | {tr:.2f} | {m:.0f} | {mr:.2f} | {g:.2f} | {rate:.2f} | {vs:.2f} |")
        print(f"| single Conv3d 128->128 k3 | {conv['time_s']:.2f} | | {conv['peak_mib']:.0f} | | "
              f"{conv['mult_adds'] / 1e9:.2f} | {conv_rate / 1e9:.2f} | 1.00 |")
        executed = mult_adds["optimised_executed"]
        executed_rate = executed / best["optimised"]["time_s"]
        print()
        print(f"optimised graph: stands for {mult_adds['optimised'] / 1e9:.2f} G mult-adds of the efficient layout, executes "
              f"{executed / 1e9:.2f} G ({executed / mult_adds['optimised']:.2f}x): executed rate {executed_rate / 1e9:.2f} G/s "
              f"= {executed_rate / conv_rate:.2f}x the single convolution's")
    if train_ran:
        ratios["checkpoint_train_memory"] = best["train_checkpointed"]["peak_mib"] / best["train"]["peak_mib"]
        print()
        print("| training step | time (s) | peak (MiB) | peak vs plain |")
        print("|---|---|---|---|")
        for name in TRAIN_VARIANTS:
            r = best[name]
            plain_peak = best["train"]["peak_mib"]
            print(f"| {name} | {r['time_s']:.2f} | {r['peak_mib']:.0f} | {r['peak_mib'] / plain_peak:.2f} |")
    met = {
        key: (value <= TARGETS[key]) if key != "throughput_vs_conv" else (value >= TARGETS[key])
        for key, value in ratios.items()
    }
    print()
    for key, value in ratios.items():
        sign = ">=" if key == "throughput_vs_conv" else "<="
        print(f"{key}: {value:.3f} (target {sign} {TARGETS[key]}) {'met' if met[key] else 'NOT MET'}")
    if not ratios:
        print(f"no target compares the variants run ({', '.join(variants)})")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
