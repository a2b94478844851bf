"""Fill a GPU's memory until the card reports a given share in use, hold it, then free it by
exiting: the real-data side of GPUMemoryHigh (`harness gpu-check`).

PyTorch's allocator when torch is importable, else the CUDA driver API through ctypes
(libcuda.so.1, which every NVIDIA driver installs). Plain device allocations only, never managed
memory: asking for more managed memory than the card holds can hang the GPU.

Run as `python -m harness.faults.gpu_fill --ratio 0.975 --hold-s 120 [--device 0]`. It prints one
JSON line once filled ({"via", "device", "used", "total", "ratio"}) and exits after `--hold-s`
(or on SIGTERM); the driver frees everything a process held when it ends. Exit 3: no way to
allocate (neither PyTorch nor libcuda.so.1); 4: the card refused before the share was reached.
Only the standard library is imported before a backend is chosen.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import sys
import time
from typing import Any, Protocol

CHUNK = 1 << 30  # 1 GiB a step: a few seconds to fill even a 141 GB card
MIN_CHUNK = 64 << 20
_CUDA_ERROR_OUT_OF_MEMORY = 2


class Device(Protocol):
    """One card: what it reports in use, and one more allocation."""

    def memory(self) -> tuple[int, int]:
        """(used, total) bytes, the whole card's (other processes' allocations count)."""
        ...

    def allocate(self, size: int) -> bool:
        """Allocate `size` bytes and keep them; False when the card refused (out of memory)."""
        ...


def fill(device: Device, ratio: float, chunk: int = CHUNK, min_chunk: int = MIN_CHUNK) -> int:
    """Allocate until the card reports `ratio` of its memory in use; a refused chunk is halved
    down to `min_chunk`. Returns the bytes the card reports in use at the end."""
    used, total = device.memory()
    # Bounded: every step either allocates at least min_chunk or halves the chunk.
    for _ in range(total // min_chunk + chunk.bit_length() + 1):
        if used >= ratio * total:
            break
        size = min(chunk, max(int(ratio * total) - used, min_chunk))
        if device.allocate(size):
            used, total = device.memory()
        elif chunk > min_chunk:
            chunk //= 2
        else:
            break
    return used


class _Torch:
    def __init__(self, index: int) -> None:
        import torch  # type: ignore[import-not-found,unused-ignore]

        self._torch: Any = torch
        self._device = torch.device("cuda", index)
        self._blocks: list[Any] = []

    def memory(self) -> tuple[int, int]:
        free, total = self._torch.cuda.mem_get_info(self._device)
        return int(total - free), int(total)

    def allocate(self, size: int) -> bool:
        try:
            block = self._torch.empty(size, dtype=self._torch.uint8, device=self._device)
        except RuntimeError:  # torch.cuda.OutOfMemoryError is a RuntimeError
            return False
        self._blocks.append(block)
        return True


class _CudaDriver:
    def __init__(self, index: int) -> None:
        self._cuda = ctypes.CDLL("libcuda.so.1")
        self._check(self._cuda.cuInit(0), "cuInit")
        device = ctypes.c_int()
        self._check(self._cuda.cuDeviceGet(ctypes.byref(device), index), "cuDeviceGet")
        context = ctypes.c_void_p()
        retain = self._cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device)
        self._check(retain, "cuDevicePrimaryCtxRetain")
        self._check(self._cuda.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        self._pointers: list[int] = []

    @staticmethod
    def _check(code: int, call: str) -> None:
        if code != 0:
            raise OSError(f"{call} failed with CUDA error {code}")

    def memory(self) -> tuple[int, int]:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self._check(
            self._cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)), "cuMemGetInfo"
        )
        return total.value - free.value, total.value

    def allocate(self, size: int) -> bool:
        pointer = ctypes.c_uint64()
        code = self._cuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(size))
        if code == _CUDA_ERROR_OUT_OF_MEMORY:
            return False
        self._check(code, "cuMemAlloc")
        self._pointers.append(pointer.value)
        return True


def backend() -> str | None:
    """What would allocate here, without starting CUDA: "torch", "cuda-driver" or None."""
    if importlib.util.find_spec("torch") is not None:
        return "torch"
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    return "cuda-driver"


def _open(via: str, index: int) -> Device:
    return _Torch(index) if via == "torch" else _CudaDriver(index)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Fill a GPU's memory to a share, hold, free.")
    parser.add_argument("--ratio", type=float, required=True, help="share of the card to fill")
    parser.add_argument("--hold-s", type=float, required=True, help="seconds to hold it")
    parser.add_argument("--device", type=int, default=0, help="CUDA device (PCI bus order)")
    args = parser.parse_args(argv)
    via = backend()
    if via is None:
        print("no way to allocate GPU memory: neither PyTorch nor libcuda.so.1", flush=True)
        return 3
    # CUDA's own order puts the fastest card first; NVML's (the exporter's `gpu` label) is the
    # PCI bus order: make device N the same card in both.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    device = _open(via, args.device)
    used = fill(device, args.ratio)
    total = device.memory()[1]
    report = {"via": via, "device": args.device, "used": used, "total": total}
    print(json.dumps({**report, "ratio": round(used / total, 4)}), flush=True)
    time.sleep(args.hold_s)
    return 0 if used >= args.ratio * total else 4


if __name__ == "__main__":
    sys.exit(main())
