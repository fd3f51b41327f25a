"""Checks that what the harness times is the right computation.

- Gradient flow: for each loss term of a scenario, which networks get a non-zero gradient,
  computed per term with ``torch.autograd.grad`` and held against the scenario's
  ``expected_flow``.
- Setup equivalence: from the same weights and batches, ``single`` and ``grouped`` must end
  where ``separate`` ends. On the CPU that means bitwise-identical parameters, at every
  precision; elsewhere kernels may be scheduled differently, so a stated tolerance applies,
  looser under bf16 autocast (see ``tolerance``). Under fp16 the setups are not the same
  computation, so it is not checked (``EQUIVALENCE_UNDEFINED``).
- Execution equivalence: from the same weights and batches, networks run on CUDA streams or
  stacked must end where networks run one after the other end: bitwise where they ran the
  same arithmetic, else within a stated tolerance, for a stated reason (``EXECUTION_REASONS``).

All run under a precision's autocast, as the timed step does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from multinet.errors import MultinetError
from multinet.optim import SETUPS
from multinet.scenarios import build_scenario
from multinet.stacking import member_view, slots
from multinet.step import StepSpec, autocast, build_step, check_supported

# Away from the CPU, equivalence is checked to this tolerance (torch.allclose semantics).
DEVICE_RTOL = 1e-5
DEVICE_ATOL = 1e-6
# Under bf16 autocast a last-bit difference in an fp32 weight can move an activation across a
# bf16 rounding boundary, which the next steps carry forward: agreement can only be expected
# to about bf16's relative precision (2**-8, its 8 significant bits).
REDUCED_RTOL = {"bf16": 2.0 ** -8}
REDUCED_ATOL = 1e-5

# Why an execution need not end bitwise where `sequential` ends. Each tensor's change since the
# start is then held to sequential's in norm: |ours - theirs| <= rtol |theirs| + atol sqrt(n),
# not element by element (Adam divides by sqrt(v) + eps, so an element whose gradient is near
# eps turns a last-bit difference into a different update).
EXECUTION_REASONS = {
    "streams": "the same kernels on other streams, but on CUDA no two runs need round alike "
               "(some backward kernels add with atomics, streams or not)",
    "stacked": "vmap runs each layer as one batched matrix product over the stacked networks "
               "(bmm) where sequential runs one per network (addmm), and the two may "
               "accumulate in another order",
}
# fp32 on the CPU: the same arithmetic in another order. On a GPU, cuDNN's and cuBLAS's TF32
# (10 explicit mantissa bits) or bf16 autocast (7) carry a last-bit difference further.
EXECUTION_RTOL, EXECUTION_REDUCED_RTOL, EXECUTION_ATOL = 1e-4, 1e-2, 1e-7

# Why a precision has no setup-equivalence check.
EQUIVALENCE_UNDEFINED = {
    "fp16": "each optimizer's GradScaler step skips on an inf in its own parameters' gradients "
            "(the torch.amp way), so `separate` updates the networks that did not overflow "
            "where `single` skips them all; the setups differ whenever one network overflows",
}


@dataclass(frozen=True)
class FlowResult:
    scenario: str
    term: str
    network: str
    expected: bool
    observed: bool

    @property
    def ok(self) -> bool:
        return self.expected == self.observed


@dataclass(frozen=True)
class EquivalenceResult:
    scenario: str
    optimizer: str
    optimizer_impl: str
    setup: str
    device: str
    steps: int
    max_abs_diff: float
    bitwise: bool
    within_tolerance: bool
    precision: str = "fp32"

    @property
    def tolerance(self) -> str:
        return tolerance(self.device, self.precision)

    @property
    def ok(self) -> bool:
        return self.bitwise if self.tolerance == "bitwise" else self.within_tolerance


def _bounds(precision: str) -> tuple[float, float]:
    """(rtol, atol) away from the CPU."""
    if precision in REDUCED_RTOL:
        return REDUCED_RTOL[precision], REDUCED_ATOL
    return DEVICE_RTOL, DEVICE_ATOL


def tolerance(device: str, precision: str = "fp32") -> str:
    """The agreement setup equivalence asks for, in words."""
    if torch.device(device).type == "cpu":
        return "bitwise"
    rtol, atol = _bounds(precision)
    return f"rtol={rtol:g}, atol={atol:g}"


def gradient_flow(scenario: str, *, size: str = "seed", batch_size: int = 4,
                  device: str = "cpu", seed: int = 0, n_networks: int = 2,
                  precision: str = "fp32") -> list[FlowResult]:
    """Which networks each loss term reaches, against what the scenario expects."""
    # the same checks a timed step of this precision gets (fp16 needs CUDA, ...)
    check_supported(StepSpec(scenario, batch_size, device, size=size, precision=precision,
                             n_networks=n_networks))
    sc = build_scenario(scenario, size, n_networks)
    networks = sc.networks(seed, device)
    with autocast(torch.device(device).type, precision):
        terms = sc.loss_terms(networks, sc.batch(batch_size, device, seed))
    results = []
    for term, value in terms.items():
        expected = sc.expected_flow.get(term, frozenset())
        for net_name, net in networks.items():
            params = [p for p in net.parameters() if p.requires_grad]
            if not params:  # an untrained network (a frozen teacher): nothing can reach it
                results.append(FlowResult(scenario, term, net_name, net_name in expected,
                                          False))
                continue
            grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            reached = any(g is not None and bool(g.ne(0).any()) for g in grads)
            results.append(FlowResult(scenario, term, net_name, net_name in expected, reached))
    return results


def setup_equivalence(scenario: str, *, optimizer: str = "adam", optimizer_impl: str = "loop",
                      steps: int = 5, batch_size: int = 4, device: str = "cpu",
                      size: str = "seed", seed: int = 0, n_networks: int = 2,
                      precision: str = "fp32") -> list[EquivalenceResult]:
    """Run ``steps`` iterations under every setup from the same start and compare each
    setup's final parameters with ``separate``'s."""
    if precision in EQUIVALENCE_UNDEFINED:
        raise MultinetError(f"no setup equivalence under {precision}: "
                         f"{EQUIVALENCE_UNDEFINED[precision]}")
    def final_params(setup: str) -> list[torch.Tensor]:
        step = build_step(StepSpec(scenario, batch_size, device, setup, optimizer,
                                   optimizer_impl, size, seed, precision,
                                   n_networks=n_networks))
        for i in range(steps):
            # a new batch every iteration, identical across setups
            step.batch = step.scenario.batch(batch_size, device, seed + 1 + i)
            step.run()
        return [p.detach().clone() for p in step.parameters()]

    reference = final_params("separate")
    results = []
    for setup in SETUPS:
        params = final_params(setup)
        results.append(EquivalenceResult(
            scenario, optimizer, optimizer_impl, setup, device, steps,
            max_abs_diff=max(float((a - b).abs().max()) for a, b in zip(reference, params)),
            bitwise=all(torch.equal(a, b) for a, b in zip(reference, params)),
            within_tolerance=all(torch.allclose(a, b, *_bounds(precision))
                                 for a, b in zip(reference, params)),
            precision=precision))
    return results


@dataclass(frozen=True)
class ExecutionResult:
    scenario: str
    execution: str
    optimizer: str
    optimizer_impl: str
    setup: str
    device: str
    steps: int
    max_abs_diff: float
    max_rel_diff: float  # the largest norm of a change's difference over its norm
    bitwise: bool
    within_tolerance: bool
    precision: str = "fp32"

    @property
    def tolerance(self) -> str:
        rtol, atol = execution_bounds(self.device, self.precision)
        return f"norm rtol={rtol:g}, atol={atol:g}"

    @property
    def ok(self) -> bool:
        return self.bitwise or self.within_tolerance


def execution_bounds(device: str, precision: str = "fp32") -> tuple[float, float]:
    """(rtol, atol) of execution equivalence, on each tensor's change since the start."""
    exact = torch.device(device).type == "cpu" and precision == "fp32"
    return (EXECUTION_RTOL if exact else EXECUTION_REDUCED_RTOL), EXECUTION_ATOL


def _ends(spec: StepSpec, steps: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every network's parameters, as the network's own, at the start and after ``steps``
    iterations on batches seed + 1, seed + 2, ..."""
    step = build_step(spec)
    held = [s for ss in slots(step.networks).values() for s in ss]
    start = [member_view(s, s[0]).detach().clone() for s in held]
    for i in range(steps):
        step.batch = step.scenario.batch(spec.batch_size, spec.device, spec.seed + 1 + i)
        step.run()
    return start, [member_view(s, s[0]).detach().clone() for s in held]


def _norm(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(t.double()))


def execution_equivalence(scenario: str, execution: str, *, optimizer: str = "adam",
                          optimizer_impl: str = "loop", setups=SETUPS, steps: int = 5,
                          batch_size: int = 4, device: str = "cpu", size: str = "seed",
                          seed: int = 0, n_networks: int = 2,
                          precision: str = "fp32") -> list[ExecutionResult]:
    """``steps`` iterations of each of ``setups`` with the networks run by ``execution``,
    against the same under ``sequential``."""
    rtol, atol = execution_bounds(device, precision)
    results = []
    for setup in setups:
        def spec(name: str) -> StepSpec:
            return StepSpec(scenario, batch_size, device, setup, optimizer, optimizer_impl,
                            size, seed, precision, n_networks=n_networks, execution=name)
        start, theirs = _ends(spec("sequential"), steps)
        _, ours = _ends(spec(execution), steps)
        moved = [(a - s0, b - s0) for a, b, s0 in zip(ours, theirs, start)]
        gaps = [_norm(a - b) for a, b in moved]
        results.append(ExecutionResult(
            scenario, execution, optimizer, optimizer_impl, setup, device, steps,
            max_abs_diff=max(float((a - b).abs().max()) for a, b in zip(ours, theirs)),
            max_rel_diff=max(g / n if n else float(g > 0)
                             for g, n in zip(gaps, (_norm(b) for _, b in moved))),
            bitwise=len(ours) == len(theirs) and all(map(torch.equal, ours, theirs)),
            within_tolerance=len(ours) == len(theirs) and all(
                g <= rtol * _norm(b) + atol * b.numel() ** 0.5
                for g, (_, b) in zip(gaps, moved)),
            precision=precision))
    return results
