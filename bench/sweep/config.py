"""A sweep: a TOML file under ``bench/sweeps/`` plus command-line overrides, validated once.

``load_sweep`` turns the file and the overrides into a frozen ``SweepConfig``; every check
happens here, at the edge, with a message a user can act on, so the runner can trust it.
``expand`` then gives one ``StepSpec`` per configuration: the cartesian product of the axes
(``bench/axes.py``), in their order. A sweep may add ``[[parts]]``, each a table of axes
that replace the top level's: it is then the union of the top level's product and each
part's (the article's networks at their batch sizes, the real workloads at theirs). Command-line values
replace an axis everywhere, in every part too.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.axes import (AXES, DDP_WRAP, DEVICE, N_NETWORKS, OPTIMIZER_IMPL, OPTIMIZER_SETUP,
                        SCENARIO, Axis, config_id)
from bench.errors import UsageError
from bench.schema import ONLY_KEY as ONLY
from bench.measure.devices import rank_devices, resolve_devices
from bench.measure.timers import TimingOptions
from bench.sweep.groups import COMPARABLE, NOT_COMPARED, Group, compared_axis, form_groups
from multinet import SCENARIOS, StepSpec
from multinet.optim import resolve_impl
from multinet.step import unsupported

SWEEPS_DIR = Path(__file__).resolve().parent.parent / "sweeps"
DEFAULT_SWEEP = SWEEPS_DIR / "default.toml"
# What `make bench` runs where the devices include a GPU: the article's scenarios, kept as
# the launch-bound case, and the real workloads at batch sizes that keep a GPU busy.
DEFAULT_CUDA_SWEEP = SWEEPS_DIR / "default-cuda.toml"
PARTS = "parts"
SWEEP_KEYS = {axis.sweep_key: axis for axis in AXES}
SCALARS = {"seed": int, "repeats": int, "threads": int, "workers": int}
AUTO_WORKERS = 0  # `workers = 0`: as many as the spread between processes asks for
MOST_WORKERS = 4  # the most that `workers = 0` starts
# The axis whose values are timed together, round-robin, and set against each other.
COMPARE_BY = "compare_by"
COMPARE_CHOICES = (*(a.name for a in COMPARABLE), NOT_COMPARED)
TIMING_KEYS = {f.name: f.type for f in dataclasses.fields(TimingOptions)}


@dataclass(frozen=True)
class SweepConfig:
    # axis name -> its values, for every axis of bench/axes.py
    axes: Mapping[str, tuple[Any, ...]]
    seed: int = 0
    repeats: int = 1
    threads: int = 0  # 0: leave torch's default
    # fresh processes that measure the sweep, each every configuration (a repeat of its own);
    # 0: chosen from the spread measured between them (bench/sweep/workers.py)
    workers: int = 1
    compare_by: str = OPTIMIZER_SETUP.name
    timing: TimingOptions = field(default_factory=TimingOptions)
    notices: tuple[str, ...] = ()  # things fixed up on the way in (duplicates dropped)
    # per part: the axes it replaces (axis name -> values); empty: the top level alone
    parts: tuple[Mapping[str, tuple[Any, ...]], ...] = ()
    # the config_ids to measure, of all the sweep holds (empty: every one): a paired round
    # measures again only what is still undecided
    only: tuple[str, ...] = ()

    def part_axes(self) -> list[Mapping[str, tuple[Any, ...]]]:
        """The top level's axes, then each part's: the top level's with the part's replacing
        them."""
        return [self.axes, *({**self.axes, **part} for part in self.parts)]

    def values(self, axis: Axis) -> tuple[Any, ...]:
        return self.axes[axis.name]

    def groups(self, specs: list[StepSpec]) -> list[Group]:
        """``specs`` in the comparison groups this sweep times together."""
        axis = compared_axis(self.compare_by)
        return form_groups(specs, axis, self.values(axis) if axis else ())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_value(axis: Axis, value: Any, source: str) -> None:
    """One value of an axis, as a sweep file or a saved suite run gives it."""
    plural = axis.sweep_key.replace("_", " ")
    if axis.kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{source}: {axis.sweep_key} must hold true/false, got {value!r}")
    elif axis.kind is int:
        low, high = axis.minimum, axis.maximum
        if not _is_int(value) or value < low:
            wanted = "positive integers" if low == 1 else f"integers >= {low}"
            raise UsageError(f"{source}: {plural} must be {wanted}, got {value!r}")
        if value > high:
            raise UsageError(f"{source}: {axis.name.replace('_', ' ')} {value} exceeds the "
                             f"limit of {high}")
    elif not isinstance(value, str):
        raise UsageError(f"{source}: {axis.sweep_key!r} must hold names, got {value!r}")
    else:
        valid = axis.valid_values()
        if valid is not None and value not in valid:
            noun = axis.sweep_key.removesuffix("s").replace("_", " ")
            raise UsageError(f"{source}: unknown {noun} {value!r}; "
                             f"valid: {', '.join(sorted(valid))}")


def _check_axis(axis: Axis, values: Any, source: str, notices: list[str]) -> tuple:
    if not isinstance(values, list):
        raise UsageError(f"{source}: {axis.sweep_key!r} must be a list, got {values!r}")
    if not values:
        raise UsageError(f"{source}: {axis.sweep_key!r} is empty; give at least one value")
    for value in values:
        check_value(axis, value, source)
    unique = tuple(dict.fromkeys(values))
    if len(unique) != len(values):
        notices.append(f"{source}: duplicate values in {axis.sweep_key!r} dropped")
    return unique


def scalar_bounds() -> dict[str, tuple[int, int]]:
    """What each scalar may be: a seed torch accepts, repeats a person would wait for, no
    more threads than this machine has cores (0: torch's default), and workers (0: chosen
    from the measured spread)."""
    return {"seed": (0, 2**63 - 1), "repeats": (1, 1000), "threads": (0, os.cpu_count() or 1),
            "workers": (0, 64)}


def _check_scalar(name: str, value: Any, source: str) -> int:
    if not _is_int(value):
        raise UsageError(f"{source}: {name!r} must be an integer, got {value!r}")
    low, high = scalar_bounds()[name]
    if not low <= value <= high:
        raise UsageError(f"{source}: {name!r} must be from {low} to {high}, got {value!r}")
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
        ok = _is_int(value) if want_int else (isinstance(value, (int, float))
                                              and not isinstance(value, bool))
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
    except IsADirectoryError:
        raise UsageError(f"sweep file {path} is a folder, not a file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"sweep file {path} is not valid TOML: {reason}") from None
    except OSError as exc:
        raise UsageError(f"cannot read sweep file {path}: {exc.strerror}") from None


def load_sweep(path: Path | None = None, overrides: Mapping[str, Any] | None = None,
               timing_overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """The sweep in ``path`` (default: default.toml), with ``overrides`` (sweep key or
    scalar name -> value) and ``timing_overrides`` applied on top."""
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
    overrides = overrides or {}
    unknown = set(raw) - set(SWEEP_KEYS) - set(SCALARS) - {COMPARE_BY, "timing", PARTS, ONLY}
    if unknown:
        valid = ", ".join([*SWEEP_KEYS, *SCALARS, COMPARE_BY, "timing", PARTS, ONLY])
        raise UsageError(f"{source}: unknown key {sorted(unknown)[0]!r}; valid: {valid}")
    missing = [axis.sweep_key for axis in AXES if axis.sweep_default is None
               and axis.sweep_key not in raw and axis.sweep_key not in overrides]
    if missing:
        raise UsageError(f"{source}: missing {', '.join(sorted(missing))}")

    notices: list[str] = []
    axes: dict[str, tuple] = {}
    for axis in AXES:
        on_cli = axis.sweep_key in overrides
        given = (overrides[axis.sweep_key] if on_cli
                 else raw.get(axis.sweep_key, list(axis.sweep_default or ())))
        axes[axis.name] = _check_axis(axis, given, "command line" if on_cli else source,
                                      notices)
    scalars = {}
    for name in SCALARS:
        on_cli = overrides.get(name) is not None
        if on_cli or name in raw:
            scalars[name] = _check_scalar(name, overrides[name] if on_cli else raw[name],
                                          "command line" if on_cli else source)
    on_cli = overrides.get(COMPARE_BY) is not None
    if on_cli or COMPARE_BY in raw:
        scalars[COMPARE_BY] = _check_compare_by(overrides[COMPARE_BY] if on_cli
                                                else raw[COMPARE_BY],
                                                "command line" if on_cli else source)
    timing = {**_check_timing(raw.get("timing", {}), source),
              **_check_timing(dict(timing_overrides or {}), "command line")}
    parts = _check_parts(raw.get(PARTS, []), source, overrides, notices)
    on_cli = overrides.get(ONLY) is not None
    only = _check_only(overrides[ONLY] if on_cli else raw.get(ONLY, []),
                       "command line" if on_cli else source)
    return SweepConfig(axes, **scalars, timing=TimingOptions(**timing), notices=tuple(notices),
                       parts=parts, only=only)


def _check_only(values: Any, source: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise UsageError(f"{source}: {ONLY!r} must be a list of config_ids")
    return tuple(dict.fromkeys(values))


def _check_parts(raw: Any, source: str, overrides: Mapping[str, Any],
                 notices: list[str]) -> tuple[dict[str, tuple], ...]:
    """The ``[[parts]]`` of a sweep: each a table of axes; what the command line gives is
    left out of them, so that it applies to every part."""
    if not isinstance(raw, list) or not all(isinstance(p, Mapping) for p in raw):
        raise UsageError(f"{source}: {PARTS!r} must be a list of tables ([[parts]])")
    parts = []
    for i, part in enumerate(raw, 1):
        where = f"{source}, part {i}"
        unknown = set(part) - set(SWEEP_KEYS)
        if unknown:
            raise UsageError(f"{where}: unknown key {sorted(unknown)[0]!r}; a part holds "
                             f"axes: {', '.join(SWEEP_KEYS)}")
        parts.append({SWEEP_KEYS[key].name: _check_axis(SWEEP_KEYS[key], values, where, notices)
                      for key, values in part.items() if key not in overrides})
    return tuple(parts)


def default_sweep(devices: list[str] | None) -> Path:
    """The sweep `run` takes when none is given: the CUDA one where the devices (given, or
    `auto`) include a GPU, else the article's."""
    resolved = resolve_devices(devices or ["auto"])
    return DEFAULT_CUDA_SWEEP if any(d.startswith("cuda") for d in resolved) else DEFAULT_SWEEP


def _check_compare_by(value: Any, source: str) -> str:
    if value not in COMPARE_CHOICES:
        raise UsageError(f"{source}: {COMPARE_BY} {value!r} is not an axis that can be "
                         f"compared; valid: {', '.join(COMPARE_CHOICES)}")
    return value


def sweep_to_mapping(config: SweepConfig, devices: list[str] | None = None) -> dict[str, Any]:
    """The keys of a sweep file that give ``config`` back through ``sweep_from_mapping``;
    ``devices`` replaces the device axis (with the devices `auto` resolved to, say)."""
    data = {axis.sweep_key: list(config.values(axis)) for axis in AXES}
    if devices is not None:
        data[DEVICE.sweep_key] = list(devices)
    data.update({name: getattr(config, name) for name in (*SCALARS, COMPARE_BY)})
    data["timing"] = dataclasses.asdict(config.timing)
    if config.only:
        data[ONLY] = list(config.only)
    if config.parts:
        by_name = {axis.name: axis for axis in AXES}
        data[PARTS] = [{by_name[name].sweep_key: list(values) for name, values in part.items()}
                       for part in config.parts]
    return data


def expand_all(config: SweepConfig, local_rank: int | None = None
               ) -> tuple[list[StepSpec], list[tuple[StepSpec, str]]]:
    """Every configuration of the sweep, devices resolved (`auto` included) and `auto`
    implementations resolved per device; combinations that resolve to the same spec once.
    Returns those that can run, and those that cannot (fused kernels a device lacks, CUDA
    graphs off CUDA, fp16 off CUDA) with the reason: never attempted, listed once.

    ``local_rank``: under --distributed, this rank's LOCAL_RANK. Its devices are its own
    (``rank_devices``) and the DDP wraps apply; in a single process every spec has the
    wrap's default (no DDP). Every rank gets its specs in the same order."""
    specs: dict[StepSpec, None] = {}
    for part in config.part_axes():
        for spec in _expand_part(config, dict(part), local_rank):
            specs[spec] = None
    if config.only:
        kept = {spec: None for spec in specs if config_id(spec) in set(config.only)}
        if not kept:
            raise UsageError(f"none of the {len(config.only)} configuration(s) to measure "
                             f"({config.only[0]}, ...) is in the sweep")
        specs = kept
    runnable, skipped = [], []
    for spec in specs:
        reason = unsupported(spec)
        if reason is None:
            runnable.append(spec)
        else:
            skipped.append((spec, reason))
    return runnable, skipped


def _expand_part(config: SweepConfig, values: dict[str, tuple], local_rank: int | None):
    """The specs of one part: the product of its axes, devices and implementations resolved."""
    if local_rank is None:
        values[DEVICE.name] = resolve_devices(values[DEVICE.name])
        values[DDP_WRAP.name] = (DDP_WRAP.default,)
    else:
        values[DEVICE.name] = rank_devices(values[DEVICE.name], local_rank)
    for combination in itertools.product(*values.values()):
        fields = dict(zip(values, combination))
        if SCENARIOS[fields[SCENARIO.name]].min_networks is None:
            fields[N_NETWORKS.name] = N_NETWORKS.default  # a fixed set: the axis does not apply
        fields[OPTIMIZER_IMPL.name] = resolve_impl(fields[OPTIMIZER_IMPL.name],
                                                   fields[DEVICE.name])
        yield StepSpec(**fields, seed=config.seed)


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
