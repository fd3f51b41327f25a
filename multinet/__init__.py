"""multinet: several networks trained jointly from one loss, as the harness builds them.

The library never imports ``bench``; the harness stands on it, not the other way round.
"""

from multinet.errors import InvalidChoice, MultinetError
from multinet.networks import SIZE_PRESETS, ConvNet, LinearNet, NetworkSizes, size_preset
from multinet.optim import IMPLEMENTATIONS, OPTIMIZERS, SETUPS, make_optimizers, resolve_impl
from multinet.scenarios import SCENARIOS, Scenario, get_scenario, register
from multinet.step import PHASES, JointStep, StepSpec, build_step
from multinet.verify import gradient_flow, setup_equivalence
from multinet import n_networks, workloads  # registers the N-network and real workloads

__all__ = [
    "ConvNet", "IMPLEMENTATIONS", "InvalidChoice", "JointStep", "LinearNet", "MultinetError",
    "NetworkSizes", "OPTIMIZERS", "PHASES", "SCENARIOS", "SETUPS", "SIZE_PRESETS", "Scenario",
    "StepSpec", "build_step", "get_scenario", "gradient_flow", "make_optimizers", "register",
    "resolve_impl", "setup_equivalence", "size_preset", "n_networks", "workloads",
]
