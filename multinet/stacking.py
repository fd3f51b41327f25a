"""Networks of one architecture run as one: their parameters stacked, their forward vmapped.

``torch.func.stack_module_state`` stacks each parameter of N modules along a new first
dimension; ``vmap`` over ``functional_call`` then runs the architecture once over the
stack, one batched operation per layer where N modules would launch N. The stacked tensors
are ordinary leaves, so one optimizer steps all N networks with a few large tensors.

A scenario names what can be stacked (``Scenario.stackable``): networks that take the same
inputs, each group by the path of its container (``""`` for the scenario's networks
themselves, else a module such as SAC's ``critic.q``) and the members' names in it. Under
the ``stacked`` execution, ``stack_networks`` puts a ``Stack`` in the members' place, under
``stack_key(names)``; the scenario's ``Execution.members`` finds it there. The members'
own values stay readable through ``slots``, for checks that compare them network by network.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn
from torch.func import functional_call, stack_module_state, vmap

from multinet.errors import MultinetError

# A tensor as a member network sees it: the tensor itself (index None), or one member's
# slice of a stacked tensor.
Slot = tuple[torch.Tensor, int | None]


def stack_key(names: Sequence[str]) -> str:
    """The name a stack of ``names`` takes in their container: `net0-net7`, `q1-q10`."""
    return f"{names[0]}-{names[-1]}"


class Stack(nn.Module):
    """Modules of one architecture as one module: each parameter stacked along a new first
    dimension, in the first member's parameter order. Called on inputs that every member
    takes, it returns the members' outputs, in order, as views of one batched result."""

    def __init__(self, members: Sequence[nn.Module], names: Sequence[str]):
        super().__init__()
        if any(next(m.buffers(), None) is not None for m in members):
            raise MultinetError("stacking networks with buffers (running statistics) is not "
                                "built: vmap would update them in place")
        shapes = {tuple((n, p.shape) for n, p in m.named_parameters()) for m in members}
        if len(shapes) != 1:
            raise MultinetError(f"{', '.join(names)} differ in architecture: they cannot be "
                                "stacked")
        params, _ = stack_module_state(list(members))
        self.member_names = tuple(names)
        self.parameter_names = tuple(params)
        self.stacked = nn.ParameterList(params.values())
        # The architecture, on the meta device, kept in a list: out of the module tree, so
        # that parameters(), .to() and state_dict() never meet its empty tensors.
        self._architecture = [copy.deepcopy(members[0]).to("meta")]
        self._vmapped: dict[int, object] = {}

    def _call(self, params: dict[str, torch.Tensor], *args):
        return functional_call(self._architecture[0], params, args)

    def forward(self, *args) -> list[torch.Tensor]:
        call = self._vmapped.get(len(args))
        if call is None:
            call = self._vmapped[len(args)] = vmap(self._call, in_dims=(0, *[None] * len(args)))
        params = dict(zip(self.parameter_names, self.stacked))
        return list(call(params, *args).unbind(0))


def _container(networks: dict[str, nn.Module], path: str):
    """The mapping that holds a group's members: the networks, or a ModuleDict within one."""
    if not path:
        return networks
    head, _, rest = path.partition(".")
    module = networks[head].get_submodule(rest) if rest else networks[head]
    if not isinstance(module, nn.ModuleDict):
        raise MultinetError(f"{path} is a {type(module).__name__}; stacked members live in "
                            "a ModuleDict")
    return module


def _in_place_of(items: list[tuple[str, nn.Module]], names: Sequence[str],
                 stack: Stack) -> list[tuple[str, nn.Module]]:
    """``items`` with ``stack`` where the first of ``names`` was and the others left out."""
    out = []
    for name, module in items:
        if name == names[0]:
            out.append((stack_key(names), stack))
        elif name not in names:
            out.append((name, module))
    return out


def stack_networks(groups: Sequence[tuple[str, Sequence[str]]],
                   networks: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """``networks`` with each group of ``groups`` (container path, member names) stacked in
    its container. The networks' dict is a new one where a group stands among them; a
    container module is changed in place."""
    networks = dict(networks)
    for path, names in groups:
        container = _container(networks, path)
        stack = Stack([container[n] for n in names], names)
        stack.train(container[names[0]].training)
        items = _in_place_of(list(container.items()), names, stack)
        if container is networks:
            networks = dict(items)
        else:
            container.clear()
            container.update(items)
    return networks


def _module_slots(module: nn.Module) -> list[Slot]:
    """A module's parameters in ``parameters()`` order as it was before stacking: its own,
    then each child's, a stack's members one after the other."""
    if isinstance(module, Stack):
        return [(p, i) for i in range(len(module.member_names)) for p in module.stacked]
    slots: list[Slot] = [(p, None) for p in module._parameters.values() if p is not None]
    for child in module.children():
        slots += _module_slots(child)
    return slots


def slots(networks: Mapping[str, nn.Module]) -> dict[str, list[Slot]]:
    """Every network as it was before stacking, by name, its parameters in order: where a
    stack stands for several networks, each member under its own name."""
    out: dict[str, list[Slot]] = {}
    for name, net in networks.items():
        if isinstance(net, Stack):
            for i, member in enumerate(net.member_names):
                out[member] = [(p, i) for p in net.stacked]
        else:
            out[name] = _module_slots(net)
    return out


def member_names(name: str, network: nn.Module) -> tuple[str, ...]:
    """The networks that ``network`` (named ``name`` in a step) stands for."""
    return network.member_names if isinstance(network, Stack) else (name,)


def member_view(slot: Slot, tensor: torch.Tensor | None) -> torch.Tensor | None:
    """``tensor`` (the slot's parameter, its gradient, an optimizer's state of it) as the
    member sees it: its slice of a stacked tensor; a tensor of its own, state the stack
    shares (Adam's step count) or None as it is."""
    held, index = slot
    if tensor is None or index is None or tensor.shape != held.shape:
        return tensor
    return tensor[index]
