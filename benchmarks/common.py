"""Shared helpers of the benchmark scripts: machine description, timing, table printing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def cpu_model() -> str:
    """The CPU's model name and widest vector extension, from /proc/cpuinfo (a wall-clock budget buys different step
    counts on different CPUs of the same kind of machine): e.g. "AMD EPYC (avx2)"."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    vector = next((flag for flag in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if flag in flags), "no avx2")
    return f"{name or platform.machine()} ({vector})"


def shipped_config(component: str) -> dict:
    """Constructor arguments of a shipped-checkpoint component ("vae", "transformer"), without private keys."""
    from hivae.loading import default_checkpoint

    config = json.loads((default_checkpoint() / component / "config.json").read_text())
    return {k: v for k, v in config.items() if not k.startswith("_")}


def peak_memory_mib() -> float:
    """Peak memory of this process so far: CUDA max allocated on a GPU, else the resident-set high-water mark."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # unlike ru_maxrss, not inherited across exec
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(arguments: list[str]) -> dict:
    """Run `python *arguments` in a fresh process (so its peak memory is its own); its last stdout line is JSON."""
    done = subprocess.run([sys.executable, *arguments], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"benchmark {' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def add_parallel_arguments(parser, what: str) -> None:
    """--jobs (how many `what` train side by side) and --threads (torch threads per one; default: the cores / jobs)."""
    parser.add_argument("--jobs", type=int, default=1, help=f"{what} trained side by side")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per job (default: the cores / --jobs)")


def resolve_parallel(parser, args) -> None:
    """Check --jobs / --threads, fill the default threads, and use them in this process too (its evaluation shares
    the machine like the training)."""
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        parser.error(f"--jobs {args.jobs} / --threads {args.threads}: expected at least 1")
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    torch.set_num_threads(args.threads)


def run_process(command: list[str], threads: int | None = None) -> int:
    """Run `command` (on `threads` OpenMP/MKL threads; None: the default) from the repository root; returns its peak
    RSS (MiB). Exits naming the script when it fails."""
    print("+", " ".join(command), flush=True)
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{Path(command[1]).name} failed (exit {os.waitstatus_to_exitcode(status)}): {command[2:6]}")
    return round(usage.ru_maxrss / 1024)  # KiB -> MiB (Linux)


def timed(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Median seconds of `fn()` over `repeats` runs after `warmup` runs (CUDA-synchronised)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def print_table(rows: list[dict], columns: list[str]) -> None:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    widths = {c: max([len(c), *(len(fmt(r.get(c, ""))) for r in rows)]) for c in columns}  # header only if no rows
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(fmt(row.get(c, "")).ljust(widths[c]) for c in columns))


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` under a temporary name, then rename: readers (and a stopped or concurrent benchmark) never see
    half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"machine": machine(), "torch": torch.__version__, **payload}, indent=2))
    print(f"wrote {path.resolve()}")
    return path
