"""Boundaries between the networks of a joint step, for the attribution pass and for traces.

Inside each stage of an iteration, work changes hands from one network to another. Every
such hand-over is reported to a *marks* object as ``marks.switch(owner)``, where ``owner``
is a tuple of network names: one network, or several where one optimizer call updates
several at once (its time is then apportioned), or ``(OUTSIDE,)`` for work outside every
network (the loss, the glue between networks, the autograd engine's start, an optimizer
call's entry). The attribution pass records a clock at each switch
(``bench/measure/attribution.py``); a trace opens a named range (``bench/measure/tracing.py``).

Where the boundaries are:

- forward: module hooks on each network and its direct children (a container whose own
  forward is never called, CycleGAN's pair of generators, is entered through its children);
  the network owns the time from its entry to its exit;
- backward: each autograd node belongs to the network whose forward created it (read from
  the autograd sequence number at each network's entry and exit), an AccumulateGrad to the
  network owning its parameter. The engine runs the nodes in an order that the same graph
  repeats, so a first, surveying iteration hooks every node to learn it, and later
  iterations hook only the nodes where the network changes: a handful of hooks per
  backward instead of one per node. The backward's last hand-over is back to OUTSIDE, in a
  callback the engine runs when the graph is done;
- optimizer: each optimizer's ``step`` and ``zero_grad``, overridden on the instance for
  the iteration. An optimizer over several networks is stepped network by network (its
  parameter groups swapped for each network's share of them, the same arithmetic) where
  that runs the same kernels: the per-parameter ``loop``, or ``grouped``, whose groups are
  the networks. A ``foreach`` or ``fused`` step over one group holding every network
  (``single``), or a step under a GradScaler (which allows one step per optimizer per
  update), runs once for all: its owner is the networks together, apportioned later;
- target: the stage moves the untrained networks (SAC's target critics), which own it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch.autograd import Variable

from multinet.step import TARGET, JointStep

OUTSIDE = "(outside)"
Owner = tuple[str, ...]
NOBODY: Owner = (OUTSIDE,)
# an autograd node's name across iterations: ("n", sequence number from the iteration's
# start) or, for an AccumulateGrad, ("p", id of its parameter)
NodeKey = tuple[str, int]


class Marks(Protocol):
    def begin(self, phase: str, owner: Owner) -> None:
        """A stage of ``phase`` starts, its work first owned by ``owner``."""

    def switch(self, owner: Owner) -> None:
        """From here on, the work is ``owner``'s."""

    def end(self) -> None:
        """The stage has returned."""


class BackwardOrderChanged(RuntimeError):
    """A backward ran its nodes in another order than the surveying iteration saw."""


def _probe_sequence_nr() -> int:
    """The next sequence number in a torch without the peek: a node made to read it."""
    probe = torch.zeros((), requires_grad=True)
    return (probe * 1).grad_fn._sequence_nr() + 1


# The sequence number the next autograd node of this thread will get (read at every
# network's entry and exit, so looked up once).
sequence_nr = getattr(torch._C._autograd, "_get_sequence_nr", None) or _probe_sequence_nr


def graph_nodes(root) -> list:
    """Every autograd node reachable from ``root``."""
    seen, todo, nodes = set(), [root], []
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        nodes.append(node)
        todo += [next_fn for next_fn, _ in node.next_functions]
    return nodes


def entry_modules(net: torch.nn.Module) -> list[torch.nn.Module]:
    """Where a network's forward is entered: the network itself, or, for a container with
    no forward of its own (a ModuleDict), its children. Hooking only these keeps the hooks
    to two per network call."""
    if type(net).forward is torch.nn.Module.forward:  # Module's placeholder: not callable
        return list(net.children())
    return [net]


def transitions(order: list[tuple[NodeKey, Owner]]) -> dict[NodeKey, Owner]:
    """The nodes of an execution order where the owner changes (the first node included)."""
    changes, last = {}, None
    for key, owner in order:
        if owner != last:
            changes[key] = owner
            last = owner
    return changes


class NetworkBoundaries:
    """Reports the hand-overs of ``step`` between its networks to ``marks``: install it for
    an iteration with ``iteration`` and run the stages through ``run_stage``."""

    def __init__(self, step: JointStep, marks: Marks):
        self.step, self.marks = step, marks
        self.param_owner = {id(p): name for name, net in step.networks.items()
                            for p in net.parameters()}
        # the networks the target stage moves: those no optimizer owns
        self.target_owner: Owner = tuple(
            n for n in step.networks if n in step.scenario.untrained) or NOBODY
        self.orders: dict[int, list[tuple[NodeKey, Owner]]] = {}  # per backward of an iteration
        self.owner: Owner = NOBODY
        self._handles: list[Any] = []
        self._stack: list[tuple[str, int]] = []
        self._depth: Counter[str] = Counter()
        self._spans: list[tuple[int, int, str]] = []
        self._seq0 = 0
        self._backwards = 0
        self._survey = False

    # -- an iteration ------------------------------------------------------------------
    def iteration(self, survey: bool = False,
                  around: Callable[[str, Callable[[], None]], None] | None = None) -> None:
        """Run one iteration of the step with its boundaries. The surveying iteration
        hooks every autograd node and learns each backward's order. ``around(phase, run)``,
        where given, runs each stage by calling ``run()`` (to read something around it)."""
        self._survey = survey
        self._spans, self._backwards, self._seq0 = [], 0, sequence_nr()
        self._install()
        try:
            for phase, fn in self.step.phases():
                if around is None:
                    self.run_stage(phase, fn)
                else:
                    around(phase, functools.partial(self.run_stage, phase, fn))
        finally:
            self._remove()

    def run_stage(self, phase: str, fn: Callable[[], None]) -> None:
        hooked = self._arm_backward() if phase == "backward" else None
        self.owner = self.target_owner if phase == TARGET else NOBODY
        self.marks.begin(phase, self.owner)
        fn()
        self.marks.end()
        if hooked is not None and not self._survey and hooked[0] != hooked[1]:
            raise BackwardOrderChanged(
                f"backward {self._backwards}: {hooked[1]} of {hooked[0]} hand-overs seen")

    def switch(self, owner: Owner) -> None:
        if owner != self.owner:
            self.owner = owner
            self.marks.switch(owner)

    def _install(self) -> None:
        for name, net in self.step.networks.items():
            for module in entry_modules(net):
                self._handles.append(module.register_forward_pre_hook(self._enter_fn(name)))
                self._handles.append(module.register_forward_hook(self._exit_fn(name)))
        for opt in self.step.optimizers:
            self._wrap_optimizer(opt)

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for opt in self.step.optimizers:
            opt.__dict__.pop("step", None)
            opt.__dict__.pop("zero_grad", None)
        self._stack, self._depth = [], Counter()

    # -- forward -----------------------------------------------------------------------
    def _enter_fn(self, name: str):
        def enter(module, args):
            if self._depth[name] == 0:
                self._stack.append((name, sequence_nr()))
                self.switch((name,))
            self._depth[name] += 1
        return enter

    def _exit_fn(self, name: str):
        def leave(module, args, output):
            self._depth[name] -= 1
            if self._depth[name] == 0:
                _, start = self._stack.pop()
                self._spans.append((start, sequence_nr(), name))
                self.switch((self._stack[-1][0],) if self._stack else NOBODY)
        return leave

    def forward_owner(self) -> Owner:
        """Whose forward is running now (for the saved tensors' hook)."""
        return (self._stack[-1][0],) if self._stack else NOBODY

    # -- backward ----------------------------------------------------------------------
    def node_key(self, node) -> NodeKey:
        variable = getattr(node, "variable", None)
        if variable is not None:
            return ("p", id(variable))
        return ("n", node._sequence_nr() - self._seq0)

    def node_owner(self, node) -> Owner:
        variable = getattr(node, "variable", None)
        if variable is not None:
            return (self.param_owner.get(id(variable), OUTSIDE),)
        seq = node._sequence_nr()
        inside = [(start, name) for start, end, name in self._spans if start <= seq < end]
        return (max(inside)[1],) if inside else NOBODY  # the innermost: the latest entry

    def _arm_backward(self) -> list[int]:
        """Hooks on this backward's nodes: all of them when surveying, else those where
        the owner changes. Returns [hand-overs expected, hand-overs seen so far]."""
        index = self._backwards
        self._backwards += 1
        nodes = graph_nodes(self.step.loss.grad_fn)
        counts = [0, 0]
        if self._survey:
            order = self.orders[index] = []
            for node in nodes:
                owner = self.node_owner(node)
                node.register_prehook(self._survey_hook(order, self.node_key(node), owner))
            return counts
        expected = transitions(self.orders.get(index, []))
        counts[0] = len(expected)
        for node in nodes:
            owner = expected.get(self.node_key(node))
            if owner is not None:
                node.register_prehook(self._handover_hook(owner, counts))
        return counts

    def _survey_hook(self, order: list, key: NodeKey, owner: Owner):
        def hook(grad_outputs):
            if not order:
                Variable._execution_engine.queue_callback(lambda: self.switch(NOBODY))
            order.append((key, owner))
            self.switch(owner)
        return hook

    def _handover_hook(self, owner: Owner, counts: list[int]):
        def hook(grad_outputs):
            if counts[1] == 0:
                Variable._execution_engine.queue_callback(lambda: self.switch(NOBODY))
            counts[1] += 1
            self.switch(owner)
        return hook

    # -- optimizer ---------------------------------------------------------------------
    def _wrap_optimizer(self, opt: torch.optim.Optimizer) -> None:
        original_step, original_zero = opt.step, opt.zero_grad
        shares = self.network_shares(opt)
        together = tuple(shares)
        split_step = len(shares) > 1 and self.steps_apart(opt)

        def step(*args, **kwargs):
            result = self._per_network(opt, shares, original_step, args, kwargs) \
                if split_step else self._at_once(together, original_step, args, kwargs)
            self.switch(NOBODY)
            return result

        def zero_grad(*args, **kwargs):
            # zeroing is per tensor whatever the implementation: always apart
            self._per_network(opt, shares, original_zero, args, kwargs)
            self.switch(NOBODY)

        opt.step, opt.zero_grad = step, zero_grad

    def network_shares(self, opt: torch.optim.Optimizer) -> dict[str, list[dict]]:
        """Each network's share of ``opt``'s parameter groups: the groups, each cut down to
        the network's parameters, in the optimizer's order."""
        shares: dict[str, list[dict]] = {}
        for group in opt.param_groups:
            per_network: dict[str, list] = {}
            for p in group["params"]:
                per_network.setdefault(self.param_owner.get(id(p), OUTSIDE), []).append(p)
            for name, params in per_network.items():
                shares.setdefault(name, []).append({**group, "params": params})
        return shares

    def steps_apart(self, opt: torch.optim.Optimizer) -> bool:
        """Whether stepping ``opt`` network by network runs the kernels its whole step runs:
        a per-parameter loop, or groups that each hold one network; never under a
        GradScaler, which steps each optimizer once per update."""
        if self.step.scaler is not None:
            return False
        per_tensor = all(not g.get("foreach") and not g.get("fused") for g in opt.param_groups)
        one_network_each = all(
            len({self.param_owner.get(id(p), OUTSIDE) for p in g["params"]}) == 1
            for g in opt.param_groups)
        return per_tensor or one_network_each

    def _per_network(self, opt, shares, call, args, kwargs):
        groups, result = opt.param_groups, None
        try:
            for name, share in shares.items():
                self.switch((name,))
                opt.param_groups = share
                result = call(*args, **kwargs)
        finally:
            opt.param_groups = groups
        return result

    def _at_once(self, owners: Owner, call, args, kwargs):
        self.switch(owners)
        return call(*args, **kwargs)


def network_elements(step: JointStep) -> dict[str, int]:
    """Parameter elements per network: the weights that apportion a shared update."""
    return {name: sum(p.numel() for p in net.parameters()) for name, net in step.networks.items()}


def apportion(ms: float, owners: Iterable[str], elements: dict[str, int]) -> dict[str, float]:
    """``ms`` split among ``owners`` in proportion to their parameter elements (evenly where
    none has any)."""
    owners = list(owners)
    total = sum(elements.get(n, 0) for n in owners)
    if total == 0:
        return {n: ms / len(owners) for n in owners}
    return {n: ms * elements.get(n, 0) / total for n in owners}
