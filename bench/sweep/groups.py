"""Comparison groups: the configurations of a sweep that differ only in the sweep's
``compare_by`` axis (the optimizer setup by default). A group is timed together,
round-robin (``bench/measure/timers.py``), so that its members' ratios pair block by block
and the drift of a shared machine lands on all of them alike. The first member is the
group's reference: the first value of the axis's own order (`separate` for the optimizer
setups), else the first the sweep lists.

The order in which groups run is random, with one rule: groups that differ only in batch
size run smallest batch first, so that an out-of-memory spares every larger batch of them.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Sequence

from bench.axes import AXES, BATCH_SIZE, DEVICE, Axis, config_id
from bench.sweep.failures import spec_group
from multinet.step import StepSpec

Group = tuple[StepSpec, ...]
NOT_COMPARED = "none"  # `compare_by = "none"`: every configuration timed alone
# Interleaving devices, or batch sizes (which must ascend for out-of-memory), is not offered.
COMPARABLE: tuple[Axis, ...] = tuple(a for a in AXES if a not in (DEVICE, BATCH_SIZE))


def compared_axis(name: str) -> Axis | None:
    return next((a for a in COMPARABLE if a.name == name), None)


def form_groups(specs: Sequence[StepSpec], axis: Axis | None,
                listed: Sequence[object] = ()) -> list[Group]:
    """``specs`` in groups that differ only in ``axis`` (one group per spec where ``axis``
    is None), each ordered reference first: by the axis's own order, else ``listed`` (the
    order the sweep gives its values in)."""
    if axis is None:
        return [(spec,) for spec in specs]
    groups: dict[tuple, list[StepSpec]] = defaultdict(list)
    for spec in specs:
        rest = tuple(getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name != axis.name)
        groups[rest].append(spec)
    order = list(axis.order) + [v for v in listed if v not in axis.order]
    rank = {value: i for i, value in enumerate(order)}
    return [tuple(sorted(members, key=lambda s: rank.get(getattr(s, axis.name), len(rank))))
            for members in groups.values()]


def group_id(group: Group) -> str:
    """What a member's rows record as their group: the reference's config_id, or nothing
    for a configuration timed alone."""
    return config_id(group[0]) if len(group) > 1 else ""


def run_order(groups: Sequence[Group], rng: random.Random) -> list[Group]:
    """A random order in which, among groups that differ only in batch size, batch sizes
    come smallest first: one out-of-memory then spares every larger batch of them. The
    others still interleave at random, so drift spreads over the groups a comparison of
    runs sets side by side."""
    order = list(groups)
    rng.shuffle(order)

    def family(group: Group) -> tuple:
        return tuple(spec_group(spec) for spec in group)

    ascending: dict[tuple, list[Group]] = defaultdict(list)
    for group in sorted(order, key=lambda g: g[0].batch_size):
        ascending[family(group)].append(group)
    queues = {key: iter(members) for key, members in ascending.items()}
    return [next(queues[family(group)]) for group in order]
