"""The floating-point precision a model runs in: bf16 where the hardware computes it natively, else fp32.

Without native bf16 a CPU emulates it: on a 2-core AMD EPYC with AVX2 only, a bf16 `F.linear` of decode shape ran at
15 GFLOP/s against fp32's 104 (benchmarks/README.md § Throughput), so bf16 there is a slowdown, not a saving.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from hintgrpo.configs import DTYPE_CHOICES

logger = logging.getLogger(__name__)

# x86 CPU flags (Linux /proc/cpuinfo) of instructions that compute bf16 products in hardware.
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU's feature flags, or None where the system does not list them."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return None


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` computes bf16 in hardware, and the evidence."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{torch.cuda.get_device_name(device)} has native bf16"
        return False, f"{torch.cuda.get_device_name(device)} has no native bf16"
    if device.type != "cpu":
        return False, f"native bf16 on {device.type} is not known here"
    flags = cpu_flags()
    if flags is None:
        return False, "the CPU's feature flags are not readable (no /proc/cpuinfo)"
    found = sorted(flags & NATIVE_BF16_CPU_FLAGS)
    if found:
        return True, f"the CPU has {' and '.join(found)}"
    return False, f"the CPU has none of {', '.join(sorted(NATIVE_BF16_CPU_FLAGS))}, so bf16 would be emulated"


def resolve_dtype(choice: str, device: torch.device) -> torch.dtype:
    """`--dtype` as a torch dtype: `auto` is bf16 where `device` has native bf16, else fp32, logged with the reason."""
    if choice not in DTYPE_CHOICES:
        raise ValueError(f"--dtype must be one of {', '.join(DTYPE_CHOICES)}, got {choice!r}")
    if choice != "auto":
        return getattr(torch, choice)
    native, why = native_bf16(device)
    dtype = torch.bfloat16 if native else torch.float32
    logger.info("running in %s (--dtype auto: %s)", "bfloat16" if native else "float32", why)
    return dtype


def generation_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def training_bf16(bf16: bool | None, fp16: bool, use_cpu: bool) -> bool:
    """A training config's `bf16` (bf16 autocast over fp32 master weights), kept only where it runs natively.

    TRL reads an unset `bf16` as on (unless `fp16`); on a CPU without native bf16 it would be emulated, many times
    slower than fp32, so there training runs in fp32 and says why.
    """
    requested = not fp16 if bf16 is None else bf16
    on_cpu = use_cpu or not torch.cuda.is_available()
    if not (requested and on_cpu):
        return requested
    native, why = native_bf16(torch.device("cpu"))
    if not native:
        logger.warning("training in fp32, not with bf16 autocast: %s", why)
    return native
