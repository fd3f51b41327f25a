"""A sweep: a TOML file under ``bench/sweeps/`` plus command-line overrides, validated once.

``load_sweep`` turns the file and the overrides into a frozen ``SweepConfig``; every check
happens here, at the edge, with a message a user can act on, so the runner can trust it.
``expand`` then gives one ``StepSpec`` per configuration: the cartesian product of the axes.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.devices import rank_devices, resolve_devices
from bench.errors import UsageError
from bench.timers import TimingOptions
from multinet import IMPLEMENTATIONS, OPTIMIZERS, SCENARIOS, SETUPS, SIZE_PRESETS, StepSpec
from multinet.optim import resolve_impl
from multinet.step import COMPILE_MODES, DDP_WRAPS, PRECISIONS, unsupported

SWEEPS_DIR = Path(__file__).resolve().parent / "sweeps"
DEFAULT_SWEEP = SWEEPS_DIR / "default.toml"
# Far beyond any batch that fits a GPU at these sizes: a larger number is a typo.
MAX_BATCH_SIZE = 1 << 20

# axis name -> its valid values (None: positive integers)
AXES: dict[str, Any] = {
    "scenarios": SCENARIOS,
    "sizes": SIZE_PRESETS,
    "batch_sizes": None,
    "devices": None,  # checked against the machine by resolve_devices
    "optimizer_setups": SETUPS,
    "optimizers": OPTIMIZERS,
    "optimizer_impls": IMPLEMENTATIONS,
    # optional axes: a sweep file may leave them out (then their defaults)
    "precisions": PRECISIONS,
    "compile_modes": COMPILE_MODES,
    "cuda_graphs": None,  # booleans
    "n_networks": None,  # integers >= 2; used by scenarios whose network count is a parameter
    "ddp_wraps": DDP_WRAPS[1:],  # under --distributed only; `none` is what a single process runs
}
OPTIONAL_AXES = {"precisions": ["fp32"], "compile_modes": ["none"], "cuda_graphs": [False],
                 "n_networks": [2], "ddp_wraps": ["joint"]}
SCALARS = {"seed": int, "repeats": int, "threads": int}
TIMING_KEYS = {f.name: f.type for f in dataclasses.fields(TimingOptions)}


@dataclass(frozen=True)
class SweepConfig:
    scenarios: tuple[str, ...]
    sizes: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    devices: tuple[str, ...]
    optimizer_setups: tuple[str, ...]
    optimizers: tuple[str, ...]
    optimizer_impls: tuple[str, ...]
    precisions: tuple[str, ...] = ("fp32",)
    compile_modes: tuple[str, ...] = ("none",)
    cuda_graphs: tuple[bool, ...] = (False,)
    n_networks: tuple[int, ...] = (2,)
    ddp_wraps: tuple[str, ...] = ("joint",)
    seed: int = 0
    repeats: int = 1
    threads: int = 0  # 0: leave torch's default
    timing: TimingOptions = field(default_factory=TimingOptions)
    notices: tuple[str, ...] = ()  # things fixed up on the way in (duplicates dropped)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_axis(name: str, values: Any, source: str, notices: list[str]) -> tuple:
    if not isinstance(values, list):
        raise UsageError(f"{source}: {name!r} must be a list, got {values!r}")
    if not values:
        raise UsageError(f"{source}: {name!r} is empty; give at least one value")
    valid = AXES[name]
    for value in values:
        if name == "cuda_graphs":
            if not isinstance(value, bool):
                raise UsageError(f"{source}: cuda_graphs must hold true/false, got {value!r}")
        elif name == "n_networks":
            if not _is_int(value) or value < 2:
                raise UsageError(f"{source}: n_networks must be integers >= 2 (a chain or an "
                                 f"ensemble needs two networks), got {value!r}")
        elif name == "batch_sizes":
            if not _is_int(value) or value <= 0:
                raise UsageError(f"{source}: batch sizes must be positive integers, got {value!r}")
            if value > MAX_BATCH_SIZE:
                raise UsageError(f"{source}: batch size {value} exceeds the limit of "
                                 f"{MAX_BATCH_SIZE}")
        elif not isinstance(value, str):
            raise UsageError(f"{source}: {name!r} must hold names, got {value!r}")
        elif valid is not None and value not in valid:
            raise UsageError(f"{source}: unknown {name.rstrip('s').replace('_', ' ')} "
                             f"{value!r}; valid: {', '.join(sorted(valid))}")
    unique = tuple(dict.fromkeys(values))
    if len(unique) != len(values):
        notices.append(f"{source}: duplicate values in {name!r} dropped")
    return unique


def _check_scalar(name: str, value: Any, source: str) -> int:
    if not _is_int(value):
        raise UsageError(f"{source}: {name!r} must be an integer, got {value!r}")
    if name == "repeats" and value < 1 or name in ("seed", "threads") and value < 0:
        raise UsageError(f"{source}: {name!r} out of range: {value!r}")
    return value


def _check_timing(values: Any, source: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise UsageError(f"{source}: [timing] must be a table")
    unknown = set(values) - set(TIMING_KEYS)
    if unknown:
        raise UsageError(f"{source}: unknown key {sorted(unknown)[0]!r} in [timing]; "
                         f"valid: {', '.join(TIMING_KEYS)}")
    for name, value in values.items():
        want_int = TIMING_KEYS[name] in (int, "int")
        ok = _is_int(value) if want_int else isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            kind = "an integer" if want_int else "a number"
            raise UsageError(f"{source}: timing {name!r} must be {kind}, got {value!r}")
    return values


def read_sweep_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"sweep file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"sweep file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read sweep file {path}: {exc.strerror}") from None


def load_sweep(path: Path | None = None, overrides: Mapping[str, Any] | None = None,
               timing_overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """The sweep in ``path`` (default: default.toml), with ``overrides`` (axis or scalar
    name -> value) and ``timing_overrides`` applied on top."""
    path = Path(path) if path else DEFAULT_SWEEP
    return sweep_from_mapping(read_sweep_file(path), f"sweep file {path.name}", overrides,
                              timing_overrides)


def sweep_from_mapping(raw: Mapping[str, Any], source: str,
                       overrides: Mapping[str, Any] | None = None,
                       timing_overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """A sweep from the keys of a sweep file, checked as a file's are; ``source`` names where
    they came from in error messages."""
    if not isinstance(raw, Mapping):
        raise UsageError(f"{source}: expected a table of sweep keys")
    unknown = set(raw) - set(AXES) - set(SCALARS) - {"timing"}
    if unknown:
        valid = ", ".join([*AXES, *SCALARS, "timing"])
        raise UsageError(f"{source}: unknown key {sorted(unknown)[0]!r}; valid: {valid}")
    missing = set(AXES) - set(OPTIONAL_AXES) - set(raw) - set(overrides or {})
    if missing:
        raise UsageError(f"{source}: missing {', '.join(sorted(missing))}")

    notices: list[str] = []
    values: dict[str, Any] = {}
    for name in AXES:
        given_on_cli = overrides and name in overrides
        src = "command line" if given_on_cli else source
        value = overrides[name] if given_on_cli else raw.get(name, OPTIONAL_AXES.get(name))
        values[name] = _check_axis(name, value, src, notices)
    for name in SCALARS:
        given_on_cli = overrides and name in overrides and overrides[name] is not None
        if given_on_cli or name in raw:
            values[name] = _check_scalar(name, overrides[name] if given_on_cli else raw[name],
                                         "command line" if given_on_cli else source)
    timing = {**_check_timing(raw.get("timing", {}), source),
              **_check_timing(dict(timing_overrides or {}), "command line")}
    return SweepConfig(**values, timing=TimingOptions(**timing), notices=tuple(notices))


def sweep_to_mapping(config: SweepConfig, devices: list[str] | None = None) -> dict[str, Any]:
    """The keys of a sweep file that give ``config`` back through ``sweep_from_mapping``;
    ``devices`` replaces the device axis (with the devices `auto` resolved to, say)."""
    data = {name: list(getattr(config, name)) for name in AXES}
    if devices is not None:
        data["devices"] = list(devices)
    data.update({name: getattr(config, name) for name in SCALARS})
    data["timing"] = dataclasses.asdict(config.timing)
    return data


def expand_all(config: SweepConfig, local_rank: int | None = None
               ) -> tuple[list[StepSpec], list[tuple[StepSpec, str]]]:
    """Every configuration of the sweep, devices resolved (`auto` included) and `auto`
    implementations resolved per device; combinations that resolve to the same spec once.
    Returns those that can run, and those that cannot (fused kernels a device lacks, CUDA
    graphs off CUDA, fp16 off CUDA) with the reason: never attempted, listed once.

    ``local_rank``: under --distributed, this rank's LOCAL_RANK. Its devices are its own
    (``rank_devices``) and the ``ddp_wraps`` axis applies; in a single process every spec
    has ``ddp_wrap = "none"``. Every rank gets its specs in the same order."""
    if local_rank is None:
        devices, wraps = resolve_devices(config.devices), ("none",)
    else:
        devices, wraps = rank_devices(config.devices, local_rank), config.ddp_wraps
    specs: dict[StepSpec, None] = {}
    for (scenario, size, device, batch, setup, opt, impl, precision, compile_mode, graph,
         n, wrap) in itertools.product(
            config.scenarios, config.sizes, devices, config.batch_sizes,
            config.optimizer_setups, config.optimizers, config.optimizer_impls,
            config.precisions, config.compile_modes, config.cuda_graphs, config.n_networks,
            wraps):
        if SCENARIOS[scenario].min_networks is None:
            n = 2  # a fixed set of networks: the axis does not apply
        spec = StepSpec(scenario, batch, device, setup, opt, resolve_impl(impl, device), size,
                        config.seed, precision, compile_mode, n, graph, wrap)
        specs[spec] = None
    runnable, skipped = [], []
    for spec in specs:
        reason = unsupported(spec)
        if reason is None:
            runnable.append(spec)
        else:
            skipped.append((spec, reason))
    return runnable, skipped


def expand(config: SweepConfig, local_rank: int | None = None) -> list[StepSpec]:
    """The configurations of the sweep that can run here; at least one, else UsageError."""
    runnable, skipped = expand_all(config, local_rank)
    if not runnable:
        raise UsageError(f"no configuration of this sweep can run here: {skipped[0][1]}")
    return runnable


def parse_list(option: str, text: str, kind: type = str) -> list:
    """A comma-separated command-line list; integers checked here so the error names the
    option."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if kind is bool:
        words = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
        bad = [i for i in items if i.lower() not in words]
        if bad:
            raise UsageError(f"{option}: {bad[0]!r} is not on or off")
        return [words[i.lower()] for i in items]
    if kind is int:
        try:
            return [int(item) for item in items]
        except ValueError:
            bad = next(i for i in items if not i.lstrip("-").isdigit())
            raise UsageError(f"{option}: {bad!r} is not an integer") from None
    return items

