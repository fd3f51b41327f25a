"""Parametrizes the suite from a sweep file, exactly as the runner expands it."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bench.sweep.config import expand, load_sweep
from bench.measure.devices import device_name, resolve_devices
from bench.axes import config_id


def pytest_addoption(parser):
    group = parser.getgroup("multinet-bench suite")
    # ~ the home folder, as the command line's paths take it (bench.cli.user_path)
    group.addoption("--suite-sweep", type=lambda text: Path(os.path.expanduser(text)),
                    default=None, help="sweep TOML file (default: bench/sweeps/default.toml)")
    group.addoption("--suite-devices", default="auto", help="devices, comma-separated")
    group.addoption("--suite-rounds", type=int, default=50, help="timed rounds per benchmark")
    group.addoption("--suite-warmup-rounds", type=int, default=5)
    group.addoption("--suite-slow-scenario", default="", metavar="NAME:MS",
                    help="for testing comparisons only: add MS of host sleep to every timed "
                         "call of scenario NAME")


def suite_specs(config):
    sweep = load_sweep(config.getoption("--suite-sweep"),
                       {"devices": config.getoption("--suite-devices").split(",")})
    return expand(sweep)


def pytest_generate_tests(metafunc):
    if "spec" in metafunc.fixturenames:
        specs = suite_specs(metafunc.config)
        metafunc.parametrize("spec", specs, ids=[config_id(s) for s in specs])


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch_version"] = torch.__version__
    machine_info["cuda_version"] = torch.version.cuda
    machine_info["threads"] = torch.get_num_threads()
    machine_info["devices"] = {
        d: device_name(d) for d in resolve_devices(config.getoption("--suite-devices").split(","))}
