"""Where saved suite runs live: one folder per machine, device kind and torch version, so
that ``--benchmark-compare`` never sets a CPU run against a GPU run, or one torch against
another, by accident. ``python -m bench.suite.storage [DEVICE]`` prints the storage URL."""

from __future__ import annotations

import re
import socket
import sys

import torch

from bench.measure.devices import resolve_devices


def device_kind(device: str = "auto") -> str:
    return torch.device(resolve_devices([device])[0]).type


def storage_url(device: str = "auto", root: str = ".benchmarks") -> str:
    host = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname()) or "host"
    torch_version = re.sub(r"[^A-Za-z0-9.]+", "_", torch.__version__)
    return f"file://{root}/{host}/{device_kind(device)}-torch-{torch_version}"


if __name__ == "__main__":
    print(storage_url(*sys.argv[1:2]))
