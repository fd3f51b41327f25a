"""The harness's joint step held against the reference loops of ``bench/correctness/loops``.

From the same seed, on the same batches (drawn by the reference), a few iterations of each
optimizer setup of ``JointStep`` must give what the scenario's reference loop gives (the
article's, or a workload's reference code's): every update's loss, the gradients right
after each backward, and after each iteration every parameter (the untrained networks'
too: a frozen teacher must not move, target networks must follow their averaging), its
optimizer state and its hyperparameters, and every buffer (a batch norm's running
statistics). On the CPU the ``loop`` and ``foreach`` implementations run the very same
arithmetic as the reference (which takes the documented default, the loop there), so they
must agree bitwise; ``fused`` kernels round differently, and away from the CPU the
reference takes torch's default there (foreach), so a stated tolerance applies, tensor by
tensor in norm (see ``agree``). Where no tolerance can hold, or a precision changes what
the reference computes, the loop says so and the check is not run (see ``unchecked``).

The step may run its networks another way (``execution``): on CUDA streams it runs the same
kernels; stacked, vmap runs each layer once over the stacked networks, which may round
otherwise (see ``STACKED``), so a stacked step is held to the tolerances above. Either way
each network's parameters, gradients and optimizer state are compared as the network's
own: a member's slice of a stacked tensor (``multinet.stacking.slots``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.correctness.base import Record, buffers, forward_context, moved, parameters
from bench.correctness.loops import LOOPS
from multinet import SCENARIOS, SETUPS, StepSpec, build_step
from multinet.stacking import Slot, member_view, slots

EXACT_IMPLS = ("loop", "foreach")
# Where rounding may differ, a tensor agrees when the norm of its difference is within a
# relative tolerance of the reference's norm (plus ATOL per element, for tensors near zero).
# Not element by element: Adam divides by sqrt(v) + eps, so an element whose gradient is near
# eps turns a last-bit difference into a different update (on an H100, one weight moved by
# 1.1e-5 after a single fused AdamW step).
ATOL = 1e-7
# Fused kernels on the CPU: the same fp32 arithmetic in another order.
FUSED_RTOL = 1e-4
# Away from the CPU, cuDNN runs fp32 convolutions in TF32 by default (10 explicit mantissa
# bits), and under bf16 autocast 7: a last-bit difference in a weight can move a
# rounding that later steps carry. Seen on an H100 over five steps: up to 1.4e-3 of a
# tensor's norm in fp32, 2.3e-3 in bf16. (The defects of the mutation list are caught on the
# CPU, bitwise.)
REDUCED_RTOL, REDUCED_ATOL = 1e-2, 1e-6
# Why a stacked step is not held to the reference bitwise, but to the tolerances above.
STACKED = ("vmap runs each layer as one batched matrix product over the stacked networks "
           "(bmm) where each network runs its own (addmm), which may accumulate in another "
           "order (on the CPU, at batch 1)")
# Why a precision has no reference check.
UNCHECKED = {"fp16": "the GradScaler skips a step on an inf in the gradients, which the "
                     "reference loops have no counterpart for"}
# What an optimizer's parameter group must hold as the reference's does.
HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "amsgrad", "momentum", "dampening",
                   "nesterov", "maximize")


@dataclass(frozen=True)
class ReferenceResult:
    scenario: str
    optimizer: str
    optimizer_impl: str
    setup: str
    device: str
    precision: str
    steps: int
    tolerance: str  # "bitwise", or "norm rtol=..., atol=..."
    max_abs_diff: float  # over everything compared up to the first mismatch
    max_rel_diff: float  # the largest norm of a difference over its reference's norm
    mismatch: str  # the first disagreement, in words; "" when there is none
    size: str = "seed"
    execution: str = "sequential"

    @property
    def ok(self) -> bool:
        return not self.mismatch


def checked_size(scenario: str) -> str:
    """The size a scenario is checked at when none is named: the first its reference loop is
    written at (the article's ``seed``, a workload's ``tiny``), else the scenario's smallest."""
    return LOOPS[scenario].sizes[0] if scenario in LOOPS else SCENARIOS[scenario].check_size()


def tolerance(device: str, precision: str, impl: str,
              execution: str = "sequential") -> tuple[float, float] | None:
    """(rtol, atol), or None where the harness must agree bitwise."""
    on_cpu = torch.device(device).type == "cpu"
    if on_cpu and impl in EXACT_IMPLS and execution != "stacked":
        return None
    if on_cpu and precision == "fp32":
        return FUSED_RTOL, ATOL
    return REDUCED_RTOL, REDUCED_ATOL


def tolerance_text(bounds: tuple[float, float] | None) -> str:
    return "bitwise" if bounds is None else f"norm rtol={bounds[0]:g}, atol={bounds[1]:g}"


def difference(ours: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
    """ours - theirs, where elements equal as they stand differ by nothing (the -inf of an
    attention mask minus itself is no NaN)."""
    return torch.where(ours == theirs, 0.0, ours - theirs)


def agree(ours: torch.Tensor, theirs: torch.Tensor, bounds: tuple[float, float]) -> bool:
    """|ours - theirs| <= rtol |theirs| + atol sqrt(n), in the 2-norm of the whole tensor."""
    rtol, atol = bounds
    diff = float(torch.linalg.vector_norm(difference(ours, theirs)))
    return diff <= rtol * float(torch.linalg.vector_norm(theirs)) + atol * ours.numel() ** 0.5


def unchecked(scenario: str, device: str, precision: str, impl: str,
              execution: str = "sequential") -> str | None:
    """Why the joint step of ``scenario`` run by ``execution`` is not held against its
    reference loop on ``device`` at ``precision`` with ``impl``; None where it is."""
    if precision in UNCHECKED:
        return UNCHECKED[precision]
    loop = LOOPS[scenario]
    if precision in loop.unchecked_precisions:
        return loop.unchecked_precisions[precision]
    if loop.bitwise_only and tolerance(device, precision, impl, execution) is not None:
        return loop.bitwise_only
    return None


@dataclass
class Snapshot:
    """One iteration: what it recorded, then every parameter with its state and group, and
    every buffer."""

    record: Record
    parameters: dict[str, list[torch.Tensor]]
    state: dict[str, list[dict]]
    groups: dict[str, list[dict]]
    buffers: dict[str, list[torch.Tensor]]


def _snapshot(record: Record, held: dict[str, list[Slot]], optimizers, buffered) -> Snapshot:
    """``held``: each network's parameters as slots: the tensor an optimizer steps, and the
    network's index in it where several networks are stacked in one."""
    owner = {id(p): (opt, group) for opt in optimizers for group in opt.param_groups
             for p in group["params"]}
    params, state, groups = {}, {}, {}
    for name, net_slots in held.items():
        params[name] = [member_view(s, s[0]).detach().clone() for s in net_slots]
        state[name] = [{k: member_view(s, torch.as_tensor(v)).detach().clone()
                        for k, v in owner[id(s[0])][0].state.get(s[0], {}).items()}
                       if id(s[0]) in owner else {} for s in net_slots]
        groups[name] = [{k: owner[id(s[0])][1].get(k) for k in HYPERPARAMETERS}
                        if id(s[0]) in owner else {} for s in net_slots]
    return Snapshot(record, params, state, groups,
                    {name: [b.detach().clone() for b in bs] for name, bs in buffered.items()})


def _plain(nets) -> dict[str, list[Slot]]:
    return {name: [(p, None) for p in parameters(net)] for name, net in nets.items()}


def reference_trace(scenario: str, optimizer: str, *, steps: int, batch_size: int,
                    device: str, seed: int, n_networks: int, precision: str,
                    size: str | None = None):
    """The initial parameters, the batches and one snapshot per iteration of the loop, at
    ``size`` (by default ``checked_size(scenario)``)."""
    loop = LOOPS[scenario](size or checked_size(scenario))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        nets = loop.networks(n_networks)
    nets = {name: moved(net, device) for name, net in nets.items()}
    initial = {name: [p.detach().clone() for p in parameters(net)]
               for name, net in nets.items()}
    optimizers = loop.optimizers(nets, optimizer)
    batches, snapshots = [], []
    for i in range(steps):
        g = torch.Generator().manual_seed(seed + 1 + i)
        batch = {k: v.to(device) for k, v in loop.batch(batch_size, g).items()}
        record = loop.iteration(nets, optimizers, batch,
                                lambda: forward_context(device, precision))
        batches.append(batch)
        snapshots.append(_snapshot(record, _plain(nets), optimizers.values(),
                                   {name: buffers(net) for name, net in nets.items()}))
    return initial, batches, snapshots


def harness_trace(spec: StepSpec, batches) -> tuple[dict, list[Snapshot]]:
    """The same, from ``JointStep``: its stages run one by one, so that the loss after each
    forward and the gradients after each backward can be read (a ``target`` stage runs
    as it is)."""
    step = build_step(spec)
    held = slots(step.networks)
    initial = {name: [member_view(s, s[0]).detach().clone() for s in ss]
               for name, ss in held.items()}
    buffered = {name: list(step.networks[name].buffers()) if name in step.networks else []
                for name in held}  # a stack holds no buffers
    snapshots = []
    for batch in batches:
        step.batch = batch
        record = Record()
        for phase, fn in step.phases():
            fn()
            if phase == "forward":
                record.losses.append(step.last_loss.clone())
            elif phase == "backward":
                record.gradients.append({
                    name: [None if s[0].grad is None else member_view(s, s[0].grad).clone()
                           for s in ss] for name, ss in held.items()})
        snapshots.append(_snapshot(record, held, step.optimizers, buffered))
    return initial, snapshots


class _Comparer:
    """Compares pairs of values within one tolerance; remembers the largest difference and
    the first disagreement."""

    def __init__(self, bounds: tuple[float, float] | None):
        self.bounds, self.mismatch = bounds, ""
        self.max_abs_diff = self.max_rel_diff = 0.0

    def tensors(self, where: str, ours, theirs) -> None:
        if self.mismatch:
            return
        if (ours is None) != (theirs is None):
            self.mismatch = f"{where}: {'none' if ours is None else 'present'} in the harness, " \
                            f"{'none' if theirs is None else 'present'} in the reference"
            return
        if ours is None:
            return
        ours, theirs = ours.detach().cpu(), theirs.detach().cpu()
        if ours.shape != theirs.shape:
            self.mismatch = f"{where}: shape {tuple(ours.shape)}, the reference's " \
                            f"{tuple(theirs.shape)}"
            return
        ours, theirs = ours.double(), theirs.double()
        delta = difference(ours, theirs)
        diff = float(delta.abs().max()) if ours.numel() else 0.0
        norm = float(torch.linalg.vector_norm(theirs))
        rel = float(torch.linalg.vector_norm(delta)) / norm if norm else float(diff > 0)
        self.max_abs_diff = max(self.max_abs_diff, diff)
        self.max_rel_diff = max(self.max_rel_diff, rel)
        same = torch.equal(ours, theirs) if self.bounds is None else agree(ours, theirs,
                                                                           self.bounds)
        if not same:
            self.mismatch = f"{where} differs by {diff:.2e} ({rel:.1e} of its norm)"

    def lists(self, where: str, ours: list, theirs: list) -> None:
        if not self.mismatch and len(ours) != len(theirs):
            self.mismatch = f"{where}: {len(ours)} in the harness, {len(theirs)} in the reference"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            self.tensors(f"{where} {i}", a, b)

    def values(self, where: str, ours, theirs) -> None:
        if not self.mismatch and ours != theirs:
            self.mismatch = f"{where}: {ours!r} in the harness, {theirs!r} in the reference"


def compare_snapshots(c: _Comparer, step: int, ours: Snapshot, ref: Snapshot,
                      ours_initial: dict, ref_initial: dict) -> None:
    where = f"step {step}"
    # hyperparameters first: a wrong one explains every difference that follows
    for net in ref.groups:
        for i, (mine, theirs) in enumerate(zip(ours.groups.get(net, []), ref.groups[net])):
            for key in theirs:
                c.values(f"{where}, {net} parameter {i}'s {key}", mine.get(key), theirs[key])
    c.lists(f"{where}, loss of update", ours.record.losses, ref.record.losses)
    # the networks an update trains, and the untrained ones, which must have no gradient
    c.values(f"{where}, backward passes", len(ours.record.gradients), len(ref.record.gradients))
    for u, (mine, theirs) in enumerate(zip(ours.record.gradients, ref.record.gradients)):
        for net in theirs:  # as the reference records them
            c.lists(f"{where}, update {u}, gradient of {net} parameter", mine.get(net, []),
                    theirs[net])
    for net in ref.parameters:
        if c.bounds is None:
            c.lists(f"{where}, {net} parameter", ours.parameters.get(net, []),
                    ref.parameters[net])
        else:
            # within a tolerance, what the steps moved, not where they left it: five steps
            # move a weight by a few percent of its size, which a tolerance on the weight
            # itself would hardly see
            c.lists(f"{where}, {net} parameter's change since the start",
                    _moved(ours.parameters.get(net, []), ours_initial.get(net, [])),
                    _moved(ref.parameters[net], ref_initial[net]))
        for i, (mine, theirs) in enumerate(zip(ours.state.get(net, []), ref.state[net])):
            c.values(f"{where}, {net} parameter {i}'s optimizer state keys", sorted(mine),
                     sorted(theirs))
            for key in theirs:
                c.tensors(f"{where}, {net} parameter {i}'s {key}", mine.get(key), theirs[key])
        c.lists(f"{where}, {net} buffer", ours.buffers.get(net, []), ref.buffers[net])


def _moved(now: list[torch.Tensor], start: list[torch.Tensor]) -> list[torch.Tensor]:
    return [a - b for a, b in zip(now, start)] if len(now) == len(start) else now


def against_reference(scenario: str, *, optimizer: str = "adam", optimizer_impl: str = "loop",
                      setups=SETUPS, steps: int = 5, batch_size: int = 4, device: str = "cpu",
                      seed: int = 0, n_networks: int = 2, precision: str = "fp32",
                      size: str | None = None, trace=None,
                      execution: str = "sequential") -> list[ReferenceResult]:
    """Each of ``setups`` of the joint step, its networks run by ``execution``, against the
    reference loop, ``steps`` iterations, at ``size`` (by default ``checked_size(scenario)``).
    ``trace`` is a ``reference_trace`` already computed for these arguments."""
    size = size or checked_size(scenario)
    initial, batches, snapshots = trace or reference_trace(
        scenario, optimizer, steps=steps, batch_size=batch_size, device=device, seed=seed,
        n_networks=n_networks, precision=precision, size=size)
    bounds = tolerance(device, precision, optimizer_impl, execution)
    results = []
    for setup in setups:
        spec = StepSpec(scenario, batch_size, device, setup, optimizer, optimizer_impl,
                        size=size, seed=seed, precision=precision, n_networks=n_networks,
                        execution=execution)
        ours_initial, ours = harness_trace(spec, batches)
        c = _Comparer(bounds)
        c.values("networks", list(ours_initial), list(initial))
        for net in initial:
            c.lists(f"initial {net} parameter", ours_initial.get(net, []), initial[net])
        for i, (mine, theirs) in enumerate(zip(ours, snapshots), start=1):
            compare_snapshots(c, i, mine, theirs, ours_initial, initial)
        results.append(ReferenceResult(scenario, optimizer, optimizer_impl, setup, device,
                                       precision, steps, tolerance_text(bounds),
                                       c.max_abs_diff, c.max_rel_diff, c.mismatch, size,
                                       execution))
    return results

