"""Published dense peak throughput of some GPUs, to express achieved FLOP/s as a fraction.

Figures are the vendors' datasheet numbers without sparsity, in TFLOP/s:
NVIDIA H100 Tensor Core GPU datasheet (SXM5 and PCIe columns), NVIDIA H200 datasheet
(SXM), NVIDIA A100 Tensor Core GPU datasheet (SXM4), NVIDIA L4 and A10 datasheets.
``fp32`` is the plain FP32 (CUDA core) rate, since PyTorch runs fp32 matrix products
without TF32 by default; ``bf16``/``fp16`` are the dense Tensor Core rates.
"""

from __future__ import annotations

# (substring of the CUDA device name, lower-case) -> precision -> TFLOP/s; first match wins
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("h200", {"fp32": 67.0, "bf16": 989.5, "fp16": 989.5}),
    ("h100 pcie", {"fp32": 51.2, "bf16": 756.5, "fp16": 756.5}),
    ("h100", {"fp32": 67.0, "bf16": 989.5, "fp16": 989.5}),  # SXM5 (80GB HBM3)
    ("a100", {"fp32": 19.5, "bf16": 312.0, "fp16": 312.0}),
    ("l4", {"fp32": 30.3, "bf16": 121.0, "fp16": 121.0}),
    ("a10", {"fp32": 31.2, "bf16": 125.0, "fp16": 125.0}),
)


def peak_tflops(device_name: str, precision: str) -> float | None:
    name = device_name.lower()
    for key, peaks in PEAK_TFLOPS:
        if key in name:
            return peaks.get(precision)
    return None
