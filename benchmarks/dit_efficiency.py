"""DiT training efficiency: FLOPs per step, achieved TFLOP/s, MFU, SDPA attention kernels and torch.compile.

    python benchmarks/dit_efficiency.py                                   # shipped DiT on 16x64x64 clips, fp32
    python benchmarks/dit_efficiency.py --dtype bf16 --compile            # on a GPU
    python benchmarks/dit_efficiency.py --size 256 --frames 64 --dit DiT-B --batch 8 --dtype bf16 --compile

Model FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` over one training step (forward and
backward matmuls, convolutions and attention). MFU = achieved model FLOP/s / the device's dense peak for the dtype:
known GPUs come from `PEAK_TFLOPS` (vendor datasheets), anything else needs `--peak-tflops`. Each row forces one
set of SDPA kernels with `torch.nn.attention.sdpa_kernel` ("sdpa flash": flash for self-attention, memory-efficient
for the masked text cross-attention); a kernel the device or dtype lacks is reported as an error row rather than
silently replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, peak_memory_mib, print_table, shipped_config, timed, write_json  # noqa: E402
from benchmarks.dit_tokens import cases, dit_training_step  # noqa: E402
from gen.dit import DIT_SIZES, HiVAEDiT  # noqa: E402

# dense (no sparsity) bf16 tensor-core peak TFLOP/s; first substring match of the device name wins
PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.4,
    "H200": 989.4,
    "GH200": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.2,
}

KERNELS = {  # row name -> SDPA backends allowed
    "sdpa (auto)": None,
    # flash serves the unmasked self-attention; the text cross-attention carries a padding / dropout mask, which flash
    # does not take, so it may fall back to the memory-efficient kernel
    "sdpa flash": [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION],
    "sdpa mem-efficient": [SDPBackend.EFFICIENT_ATTENTION],
    "sdpa math": [SDPBackend.MATH],
}


def peak_tflops(device_name: str, dtype: str, override: float | None) -> float | None:
    """Dense peak for `dtype` ("bf16" or "fp32" = TF32 tensor cores, half the bf16 rate) or None if unknown."""
    if override:
        return override
    for key, value in PEAK_TFLOPS.items():
        if key in device_name:
            return value if dtype == "bf16" else value / 2
    return None


def count_flops(step) -> int:
    """Model FLOPs of one call of `step` (forward + backward)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def measure(model, args, device: str, kernels, compiled: bool) -> dict:
    autocast = torch.bfloat16 if args.dtype == "bf16" else None
    if compiled:
        torch._dynamo.reset()  # compile afresh under this row's SDPA kernels (the kernel choice is not a guard)
    module = torch.compile(model) if compiled else model
    step = dit_training_step(module, args.batch, device, autocast)

    def run():
        with sdpa_kernel(kernels) if kernels else contextlib.nullcontext():
            step()

    start = time.perf_counter()
    run()  # first call: compilation when compiled
    first_s = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(run, repeats=args.steps, warmup=1)
    return {
        "step_ms": 1000 * seconds,
        "first_step_s": first_s,
        "peak_mem_MiB": peak_memory_mib() if device == "cuda" else None,  # CPU: RSS would mix all rows
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="clip side in pixels (latent geometry of HiVAE)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--dit", default="shipped", choices=["shipped", *DIT_SIZES], help="DiT size")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per row")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dit_efficiency.json"))
    args = parser.parse_args(argv)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.dit == "shipped":
        hidden, depth, heads = (shipped_config("transformer")[k] for k in ("hidden_size", "depth", "heads"))
    else:
        hidden, depth, heads = DIT_SIZES[args.dit]
    geometry = cases(args.size, args.frames)["hivae (614x)"]
    torch.manual_seed(0)
    model = HiVAEDiT(**geometry, hidden_size=hidden, depth=depth, heads=heads, num_classes=90, text_dim=384)
    model.to(device)
    flops = count_flops(dit_training_step(model, args.batch, device, None))
    peak = peak_tflops(machine(), args.dtype, args.peak_tflops)

    rows = []
    for compiled in (False, True) if args.compile else (False,):
        for name in args.kernels:
            row = {"mode": "compiled" if compiled else "eager", "attention": name}
            try:
                row |= measure(model, args, device, KERNELS[name], compiled)
            except RuntimeError as error:  # e.g. "No available kernel" for flash on this device / dtype
                row["error"] = str(error).splitlines()[0][:80]
                rows.append(row)
                continue
            tflops = flops / (row["step_ms"] / 1000) / 1e12
            row |= {"achieved_TFLOPs": tflops, "mfu": tflops / peak if peak else None}
            rows.append(row)
    print(
        f"DiT {args.dit} ({hidden}x{depth}), {model.num_tokens()} tokens/clip, batch {args.batch}, {args.dtype}, "
        f"{flops / 1e9:.1f} GFLOP per training step, peak {peak or 'unknown'} TFLOP/s on {machine()}"
    )
    print_table(
        rows, ["mode", "attention", "step_ms", "first_step_s", "achieved_TFLOPs", "mfu", "peak_mem_MiB", "error"]
    )
    settings = {k: getattr(args, k) for k in ("size", "frames", "dit", "batch", "dtype", "compile")}
    settings |= {"tokens_per_clip": model.num_tokens(), "flops_per_step": flops, "peak_TFLOPs": peak}
    write_json(args.out, {"settings": settings, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
