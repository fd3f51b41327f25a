"""A large sweep's configurations over several jobs of one GPU type.

A shard is the same sweep with one axis narrowed to some of its values, given to the job's
run as a command-line option: each shard is an ordinary run, timed, resumed and stored as
any other, and the shards of a partition together hold every configuration once. The axis
split is the one with the most values other than the device and the axis compared within
a group (``compare_by``), whose values must stay in one run to be timed together. A sweep
of ``[[parts]]`` is not split: an option replaces an axis in every part, which would change
what the parts hold.
"""

from __future__ import annotations

from bench.axes import AXES, DEVICE, Axis
from bench.errors import UsageError
from bench.sweep.config import SweepConfig


def split_axis(config: SweepConfig) -> Axis | None:
    """The axis to split, or None where no axis has two values to share out."""
    candidates = [axis for axis in AXES if axis is not DEVICE and axis.name != config.compare_by
                  and len(config.values(axis)) > 1]
    if not candidates:
        return None
    return max(candidates, key=lambda axis: len(config.values(axis)))


def option_value(axis: Axis, value) -> str:
    if axis.kind is bool:
        return "on" if value else "off"
    return str(value)


def shard_options(config: SweepConfig, shards: int) -> list[list[str]]:
    """The extra options of each shard's run: one list per shard, ``shards`` of them. One
    shard is the sweep itself (no option)."""
    if shards == 1:
        return [[]]
    if config.parts:
        raise UsageError(f"--shards {shards}: a sweep with [[parts]] is not split (an option "
                         "would replace an axis in every part); submit it with --shards 1")
    axis = split_axis(config)
    values = list(config.values(axis)) if axis else []
    if len(values) < shards:
        most = f"{axis.sweep_key} has {len(values)}" if axis else "no axis has two"
        raise UsageError(f"--shards {shards}: the sweep's axes cannot be split that many ways "
                         f"({most} values, the most of any axis but the device and "
                         f"{config.compare_by}); give --shards {max(len(values), 1)} or less")
    # every shard-th value: big and small batch sizes spread over the jobs alike
    return [[axis.option, ",".join(option_value(axis, v) for v in values[i::shards])]
            for i in range(shards)]
