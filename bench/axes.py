"""The configuration axes, each defined once.

An axis is one dimension of a sweep: its sweep key and command-line option, its type and
default, where its valid values come from, how it reads in a ``config_id`` and in a label,
and what its results column means. Everything else derives from these records: sweep
validation and expansion, the CLI options, ``config_id``, the results columns, the summary's
variant, the grouping keys of report and comparison, and the axis table in bench/sweep/README.md
(``python -m bench schema --axes``). A new axis is one record here (and, since it changes
what the step computes, one field of ``multinet.StepSpec`` of the same name).

No torch here: the reading side (report, compare) imports this module. Valid values that
live in ``multinet`` are looked up only when a sweep is validated.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Dimension:
    """A column that tells configurations apart: grouping keys and labels are built from
    every dimension, so one left out of a key would merge distinct configurations."""

    name: str  # the results column, and the StepSpec field
    # The value where the dimension is not in play (a row of the article's kind). At it,
    # config_id and labels leave the dimension out; None: always shown.
    default: Any = None
    kind: type = str
    text: str = "{}"  # the value in a label; "{}" stands for the value
    unit: str = ""
    meaning: str = ""
    empty_when: str = "never"

    def describe(self, value: Any) -> str:
        """The value in words, as labels and hover boxes show it: `4 networks`, `CUDA graph`
        (or `no CUDA graph`, for a bool that is off)."""
        if self.kind is bool:
            return self.text if str(value).lower() == "true" else f"no {self.text}"
        return self.text.format(value)

    def shown(self, value: Any) -> bool:
        """Whether a label names this dimension's ``value``: always, or away from the default."""
        return self.default is None or not self.at_default(value)

    def at_default(self, value: Any) -> bool:
        if value is None or value == "":
            return True
        if self.kind is bool:
            return str(value).lower() == str(self.default).lower()
        if self.kind is int:
            return int(value) == self.default
        return str(value) == str(self.default)


@dataclass(frozen=True, kw_only=True)
class Axis(Dimension):
    """A dimension the sweep varies: a list of values in a sweep file and on the CLI."""

    sweep_key: str
    option: str
    aliases: tuple[str, ...] = ()
    token: str = "{}"  # in config_id; for a bool axis, the word written when it is on
    # Valid values, looked up when a sweep is validated (they may live in multinet); None:
    # a bool, an integer within [minimum, maximum], or checked elsewhere (devices).
    choices: Callable[[], Collection[Any]] | None = None
    minimum: int | None = None
    maximum: int | None = None
    # What a sweep that does not name the axis runs; None: every sweep must give it.
    sweep_default: tuple[Any, ...] | None = None
    help: str = ""
    values_doc: str = ""  # the axis table's "values" cell, where choices() does not say it
    # The order tables and charts show values in (others follow, sorted); the first is the
    # reference that the other values are set against.
    order: tuple[Any, ...] = ()

    def config_token(self, value: Any) -> str:
        if self.kind is bool:
            return self.token
        return self.token.format(value)

    def in_config_id(self, value: Any) -> bool:
        if self.kind is bool:
            return str(value).lower() == "true"
        return self.shown(value)

    def valid_values(self) -> Collection[Any] | None:
        return self.choices() if self.choices else None


def _from_multinet(module: str, attribute: str,
                   leave_out: Iterable[Any] = ()) -> Callable[[], Collection[Any]]:
    """Valid values that multinet defines, imported only when they are needed."""
    def choices() -> Collection[Any]:
        values = getattr(importlib.import_module(f"multinet.{module}"), attribute)
        return [v for v in values if v not in leave_out]
    return choices


SCENARIO = Axis(
    name="scenario", sweep_key="scenarios", option="--scenarios",
    choices=_from_multinet("scenarios", "SCENARIOS"),
    help="e.g. sequential,shared_input,separate_losses",
    meaning="joint-training scenario (see multinet/README.md)", values_doc="see Scenarios")
def _size_names() -> Collection[Any]:
    """Every scenario's size presets: the article's pairs have seed, wide and large, the real
    workloads tiny and published."""
    return importlib.import_module("multinet.scenarios").size_names()


SIZE = Axis(
    name="size", sweep_key="sizes", option="--sizes", text="size {}", choices=_size_names,
    order=("seed", "tiny", "wide", "large", "published", "published-128", "tiny-redq",
           "published-redq"),
    help="size presets, e.g. seed,wide (the article's pairs) or tiny,published (the workloads)",
    meaning="size preset: `seed` (the article's sizes), `wide`, `large` for the article's "
    "networks; `tiny` (for the CPU) and `published` (the reference code's) for the real "
    "workloads, `published-128` for CycleGAN at 128x128, and `tiny-redq` and "
    "`published-redq` for SAC with REDQ's ten critics",
    values_doc="see Scenarios")
DEVICE = Axis(
    name="device", sweep_key="devices", option="--devices",
    order=("cpu", "cuda:0", "cuda", "mps"),
    help="cpu, cuda, cuda:N, mps or auto (every accelerator, else the CPU)",
    meaning="torch device the step ran on (`cpu`, `cuda:0`, `mps`); under `--distributed`, "
    "rank 0's (each rank uses cuda:LOCAL_RANK)",
    values_doc="`cpu`, `cuda`, `cuda:N`, `mps`, `auto`")
BATCH_SIZE = Axis(
    name="batch_size", sweep_key="batch_sizes", option="--batch-sizes", kind=int,
    token="bs{}", text="batch {}", unit="samples", minimum=1, maximum=1 << 20,
    help="e.g. 1,32,128",
    meaning="samples per step (per network input); under `--distributed`, per rank",
    values_doc="positive integers up to 2**20")
OPTIMIZER_SETUP = Axis(
    name="optimizer_setup", sweep_key="optimizer_setups", option="--optimizer-setups",
    text="setup {}", choices=_from_multinet("optim", "SETUPS"),
    order=("separate", "single", "grouped"),
    help="separate,single,grouped",
    meaning="`separate` (one optimizer per network), `single` (one optimizer, one group) or "
    "`grouped` (one optimizer, a group per network)")
OPTIMIZER = Axis(
    name="optimizer", sweep_key="optimizers", option="--optimizer", aliases=("--optimizers",),
    order=("adam", "adamw", "sgd"),
    choices=_from_multinet("optim", "OPTIMIZERS"), help="adam, adamw, sgd",
    meaning="`adam`, `adamw` or `sgd`")
OPTIMIZER_IMPL = Axis(
    name="optimizer_impl", sweep_key="optimizer_impls", option="--optimizer-impl",
    order=("loop", "foreach", "fused"),
    text="impl {}", choices=_from_multinet("optim", "IMPLEMENTATIONS"),
    help="auto, loop, foreach, fused",
    meaning="implementation that actually ran: `loop`, `foreach` or `fused` (`auto` is "
    "resolved before it is recorded)")
PRECISION = Axis(
    name="precision", sweep_key="precisions", option="--precision", aliases=("--precisions",),
    order=("fp32", "bf16", "fp16"),
    default="fp32", sweep_default=("fp32",), choices=_from_multinet("step", "PRECISIONS"),
    help="fp32, bf16 (autocast), fp16 (autocast + GradScaler; CUDA)",
    meaning="`fp32`, `bf16` (autocast) or `fp16` (autocast and a GradScaler; CUDA only)")
COMPILE = Axis(
    name="compile", sweep_key="compile_modes", option="--compile", default="none",
    token="compile-{}", text="compile {}", sweep_default=("none",),
    choices=_from_multinet("step", "COMPILE_MODES"),
    help="none, modules (each network), step (forward and loss)",
    meaning="`none`, `modules` (each network through torch.compile) or `step` (each update's "
    "forward and loss compiled as one function)")
CUDA_GRAPH = Axis(
    name="cuda_graph", sweep_key="cuda_graphs", option="--cuda-graph", kind=bool,
    default=False, token="cuda-graph", text="CUDA graph", unit="bool", sweep_default=(False,),
    help="off, on (capture the whole step; CUDA)",
    meaning="True when the whole step was captured in one CUDA graph and replayed; its phase "
    "rows then have no timing (no boundaries inside a graph)", values_doc="`off`, `on`")
N_NETWORKS = Axis(
    name="n_networks", sweep_key="n_networks", option="--n-networks", kind=int, default=2,
    token="n{}", text="{} networks", minimum=2, maximum=1024, sweep_default=(2,),
    help="networks for n_chain and n_ensemble, e.g. 2,4,8",
    meaning="networks in the scenario (a parameter of `n_chain` and `n_ensemble`; every other "
    "scenario has a fixed set and records 2, whatever the sweep gives: the article's pairs, "
    "`shared_trunk` (2 heads on a trunk) and the real workloads)",
    values_doc="integers from 2 to 1024")
DDP_WRAP = Axis(
    name="ddp_wrap", sweep_key="ddp_wraps", option="--ddp-wrap", default="none",
    token="ddp-{}", text="DDP {}", sweep_default=("joint",),
    choices=_from_multinet("ddp", "DDP_WRAPS", leave_out=("none",)),
    help="with --distributed: joint (one DDP owning every network; the default), "
    "per_network (one DDP per network), or both",
    meaning="`none` (one process, no DistributedDataParallel), or under `--distributed` "
    "`joint` (one DDP owning every network) or `per_network` (one DDP per network)")
EXECUTION = Axis(
    name="execution", sweep_key="executions", option="--execution", aliases=("--executions",),
    default="sequential", sweep_default=("sequential",),
    order=("sequential", "streams", "stacked"),
    choices=_from_multinet("execution", "EXECUTIONS"),
    help="sequential, streams (independent networks on CUDA streams), stacked (networks of "
    "one architecture vmapped as one)",
    meaning="how the networks ran: `sequential` (one after the other), `streams` (networks "
    "independent within an update each on a CUDA stream of its own, joined by events; CUDA "
    "only) or `stacked` (networks of one architecture on the same inputs as one: parameters "
    "stacked, forward vmapped, one optimizer over the stacked tensors; `n_ensemble`'s N, "
    "SAC's critics)")

# In sweep and config_id order: the first seven are in every config_id, the rest only away
# from their defaults, so a configuration of the article's kind keeps its first key.
AXES: tuple[Axis, ...] = (SCENARIO, SIZE, DEVICE, BATCH_SIZE, OPTIMIZER_SETUP, OPTIMIZER,
                          OPTIMIZER_IMPL, PRECISION, COMPILE, CUDA_GRAPH, N_NETWORKS, DDP_WRAP,
                          EXECUTION)

# Not swept but set by how a run was launched; configurations of different world sizes
# differ all the same.
WORLD_SIZE = Dimension(
    name="world_size", default=1, kind=int, text="{} ranks", unit="ranks",
    meaning="processes the step ran on, data-parallel (1 outside `--distributed`)")

DIMENSIONS: tuple[Dimension, ...] = (*AXES, WORLD_SIZE)
# Dimensions whose values a results row always names; the others may be missing from a CSV
# written before they existed, and then read as their default.
BASE: tuple[Dimension, ...] = tuple(d for d in DIMENSIONS if d.default is None)
VARIANTS: tuple[Dimension, ...] = tuple(d for d in DIMENSIONS if d.default is not None)
NAMES: tuple[str, ...] = tuple(d.name for d in DIMENSIONS)


def by_name(name: str) -> Dimension:
    return next(d for d in DIMENSIONS if d.name == name)


def config_id(values: Any, leave_out: tuple[Axis, ...] = ()) -> str:
    """The key of a configuration: ``values`` is a StepSpec or a row (a mapping). Axes at
    their defaults are left out, so a configuration keeps the key it had before an axis
    existed; so are the axes of ``leave_out`` (the device, to set one configuration on
    several devices side by side)."""
    get = values.get if isinstance(values, Mapping) else lambda n, d=None: getattr(values, n, d)
    return "/".join(axis.config_token(get(axis.name)) for axis in AXES
                    if axis not in leave_out and axis.in_config_id(get(axis.name, axis.default)))


def config_id_template() -> str:
    """How config_id is spelled, for the docs: `scenario/.../bs<batch_size>/...`, then the
    tokens of the axes that appear only away from their defaults."""
    def spelled(axis: Axis) -> str:
        return axis.token if axis.kind is bool else axis.token.replace("{}", f"<{axis.name}>")
    always = "/".join(spelled(a) for a in AXES if a.default is None)
    later = ", ".join(f"`{spelled(a)}`" for a in AXES if a.default is not None)
    return f"{always}, then each later axis away from its default ({later})"


def variant_text(row: Mapping[str, Any], sep: str = " · ") -> str:
    """The dimensions away from their defaults, in words: `bf16 · CUDA graph · 4 networks`."""
    return sep.join(d.describe(row[d.name]) for d in VARIANTS
                    if d.name in row and not d.at_default(row[d.name]))


def key(*leave_out: Dimension) -> list[str]:
    """Every dimension's column but ``leave_out``: a grouping key that keeps configurations
    apart along every other dimension."""
    return [d.name for d in DIMENSIONS if d not in leave_out]


def markdown_table() -> str:
    """The axis table of bench/sweep/README.md."""
    lines = ["| axis (sweep key / option) | values | default | in `config_id` | what it is |",
             "| --- | --- | --- | --- | --- |"]
    for axis in AXES:
        if axis.values_doc:
            values = axis.values_doc
        elif axis.choices is not None:
            values = ", ".join(f"`{v}`" for v in axis.choices())
        else:
            values = ""
        if axis.sweep_default is None:
            default = "required"
        else:
            default = ", ".join(f"`{('on' if v else 'off') if axis.kind is bool else v}`"
                                for v in axis.sweep_default)
        if axis.kind is bool:
            token, when = axis.token, "when on"
        else:
            token = axis.token.replace("{}", "<value>")
            when = "always" if axis.default is None else f"away from `{axis.default}`"
        lines.append(f"| `{axis.sweep_key}` / `{axis.option}` | {values} | {default} | "
                     f"`{token}`, {when} | {axis.meaning} |")
    return "\n".join(lines)
