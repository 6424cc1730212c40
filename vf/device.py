"""Where a run computes: the device, its precision (bf16 or fp32) and, under torchrun, the process group."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .config import Config


def pick_device() -> torch.device:
    """cuda (this process's GPU under torchrun), then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_description() -> str:
    """The device a number was measured on, and the weights, for the results files."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
    else:
        name = f"CPU, {os.cpu_count()} cores ({cpu_model()})" + (", bf16 instructions" if cpu_has_fast_bf16() else "")
    # device-pack's unpack.sh sets MINILM_DIR: MiniLM restored from fp16 weights and int8 word embeddings
    return name + ("; MiniLM packed fp16/int8" if os.environ.get("MINILM_DIR") else "")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name and its widest vector instructions (AVX-512 or AVX2): CPU speeds differ between machines
    that all report "2 cores"."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        return "unknown model"
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    flags = set(cpuinfo.split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{names[0] if names else 'unknown model'}, {vector}"


def cpu_has_fast_bf16() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX, where bf16 autocast pays (results/bench_cpu_bf16.json)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_fits(device: torch.device) -> bool:
    """Whether bf16 autocast pays on this device: CUDA, and CPUs with bf16 instructions (not mps)."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())


def eval_bf16_enabled(cfg: Config) -> bool:
    """Whether the in-training evaluations score under bf16: cfg.eval_bf16, else where training would."""
    choice = cfg.eval_bf16 if cfg.eval_bf16 is not None else cfg.bf16
    return choice if choice is not None else bf16_fits(pick_device())


def under_torchrun() -> bool:
    """True in a process started by torchrun (even with one process: its batches are then DistributedSampler's)."""
    return "WORLD_SIZE" in os.environ


def join_process_group() -> tuple[int, int]:
    """(rank, world size): under torchrun, after joining the process group (NCCL on GPUs, gloo on CPUs); else (0, 1)."""
    import torch.distributed as dist
    if not under_torchrun():
        return 0, 1
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _mean_across_ranks(values: list[float], world: int) -> float:
    """The mean of every rank's values (each rank passes its own list; all ranks must call it)."""
    if world == 1:
        return float(np.mean(values)) if values else float("nan")
    import torch.distributed as dist
    total = torch.tensor([float(np.sum(values)), float(len(values))], dtype=torch.float64)
    dist.all_reduce(total)
    return float(total[0] / total[1]) if total[1] else float("nan")
