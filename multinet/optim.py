"""Optimizer setups: how the networks' parameters are handed to optimizers.

- ``separate``: one optimizer per network, the article's way;
- ``single``: one optimizer, one parameter group holding every network's parameters;
- ``grouped``: one optimizer, one parameter group per network (per-network learning rates).

The implementation (``loop``, ``foreach``, ``fused``) is always chosen explicitly. ``auto``
resolves to what torch itself would pick on that device (foreach on CUDA, the per-parameter
loop elsewhere) and the resolved name is what gets recorded, never "default".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from multinet.errors import InvalidChoice, MultinetError


@dataclass(frozen=True)
class OptimizerKind:
    cls: type[torch.optim.Optimizer]
    defaults: Mapping[str, Any]


OPTIMIZERS: dict[str, OptimizerKind] = {
    "adam": OptimizerKind(torch.optim.Adam, {"lr": 1e-3}),  # the article's
    "adamw": OptimizerKind(torch.optim.AdamW, {"lr": 1e-3}),
    # momentum, so that SGD too carries per-parameter state that the setups must keep apart
    "sgd": OptimizerKind(torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}),
}
SETUPS = ("separate", "single", "grouped")
IMPLEMENTATIONS = ("auto", "loop", "foreach", "fused")


def check_choice(what: str, value: str, valid) -> str:
    if value not in valid:
        raise InvalidChoice(what, value, valid)
    return value


def resolve_impl(impl: str, device: torch.device | str) -> str:
    """The implementation that will actually run; ``auto`` follows torch's own default."""
    check_choice("optimizer implementation", impl, IMPLEMENTATIONS)
    if impl != "auto":
        return impl
    return "foreach" if torch.device(device).type == "cuda" else "loop"


def _impl_flags(impl: str) -> dict[str, bool]:
    return {"loop": {"foreach": False, "fused": False},
            "foreach": {"foreach": True, "fused": False},
            "fused": {"foreach": False, "fused": True}}[impl]


def optimizer_scopes(setup: str, networks: Mapping[str, nn.Module]) -> list[frozenset[str]]:
    """Which networks each optimizer of ``make_optimizers(setup, networks)`` covers."""
    if setup == "separate":
        return [frozenset({name}) for name in networks]
    return [frozenset(networks)]


def make_optimizers(setup: str, networks: Mapping[str, nn.Module], optimizer: str = "adam",
                    impl: str = "loop", capturable: bool = False,
                    overrides: Mapping[str, Any] | None = None) -> list[torch.optim.Optimizer]:
    """Optimizers for ``networks`` arranged as ``setup``; ``impl`` must already be resolved.
    ``capturable`` keeps Adam's step counters on the device, for CUDA graph capture (SGD has
    no counter and needs nothing). ``overrides`` replace the kind's default hyperparameters
    (a scenario's reference code may use others)."""
    check_choice("optimizer setup", setup, SETUPS)
    kind = OPTIMIZERS.get(optimizer)
    if kind is None:
        raise InvalidChoice("optimizer", optimizer, OPTIMIZERS)
    check_choice("optimizer implementation", impl, IMPLEMENTATIONS[1:])
    options = {**kind.defaults, **(overrides or {}), **_impl_flags(impl)}
    if capturable and kind.cls is not torch.optim.SGD:
        options["capturable"] = True
    params = {name: list(net.parameters()) for name, net in networks.items()}
    try:
        if setup == "separate":
            return [kind.cls(p, **options) for p in params.values()]
        if setup == "single":
            return [kind.cls([t for p in params.values() for t in p], **options)]
        return [kind.cls([{"params": p} for p in params.values()], **options)]
    except RuntimeError as exc:  # e.g. fused on a device or dtype that has no fused kernel
        raise MultinetError(f"{optimizer} with impl={impl!r} cannot run here: {exc}") from None
