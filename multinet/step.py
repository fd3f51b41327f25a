"""The joint training step, split into phases that a timer can put boundaries between.

An iteration is one or more *updates* (most scenarios have one; a GAN has two: the
discriminator's, then the generator's). Each update runs three stages, each named by the
phase it belongs to: ``forward`` (the networks and the loss), ``backward``, and
``optimizer`` (``step`` of every optimizer that owns a network the update trains, then
``zero_grad(set_to_none=True)``). Zeroing at the end means every update starts without
gradients, and its cost is counted with the optimizer that causes it. A timer puts
boundaries between stages and adds up the stages of each phase; ``run`` executes the same
stages with no boundaries at all.

Precision: ``bf16`` and ``fp16`` run the forward under ``torch.autocast``; ``fp16`` scales
the loss with a ``GradScaler``, whose ``step`` reads an inf/NaN flag on the host, one device
sync per update unless the optimizer is fused (then the check stays on the device).
Compilation: ``modules`` compiles each network, ``step`` compiles each update's forward and
loss as one function; either way the first calls compile, which a timer keeps apart.
Data parallelism (``ddp_wrap``, see ``multinet/ddp.py``): the forward goes through
DistributedDataParallel, and the backward then all-reduces the gradients as it goes.
Execution (``multinet/execution.py``): the networks run one after the other, on CUDA
streams, or stacked; under ``streams`` the optimizers of an update step on streams too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from multinet.ddp import DDP_WRAPS, DataParallel, wrap_networks
from multinet.errors import InvalidChoice, MultinetError, check_positive
from multinet.execution import EXECUTIONS, Execution, make_execution
from multinet.optim import make_optimizers, optimizer_scopes, resolve_impl
from multinet.scenarios import (SCENARIOS, Batch, Networks, Scenario, Update, build_scenario,
                                 frozen, size_problem)
from multinet.stacking import stack_networks

PHASES = ("forward", "backward", "optimizer")
# A phase only some scenarios have: parameters moved outside any optimizer after the
# updates (SAC's target critics, averaged towards the critics).
TARGET = "target"
ALL_PHASES = (*PHASES, TARGET)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
COMPILE_MODES = ("none", "modules", "step")


class JointStep:
    def __init__(self, scenario: Scenario, networks: Networks,
                 optimizers: list[torch.optim.Optimizer], batch: Batch, *,
                 scopes: list[frozenset[str]] | None = None, precision: str = "fp32",
                 compile: str = "none", device: torch.device | str = "cpu",
                 data_parallel: DataParallel | None = None,
                 execution: Execution | None = None):
        self.scenario = scenario
        self.networks = networks
        self.optimizers = optimizers
        # which networks each optimizer covers, to step only those an update trains
        self.scopes = scopes or [frozenset(networks)] * len(optimizers)
        self.batch = batch
        self.precision = precision
        self.device_type = torch.device(device).type
        self.scaler = torch.amp.GradScaler(self.device_type) if precision == "fp16" else None
        self.loss: torch.Tensor | None = None
        # The last loss, detached: kept so a caller can check it for NaN *after* timing,
        # since reading it inside the timed region would force a device sync.
        self.last_loss: torch.Tensor | None = None
        self.scratch: dict = {}  # what one update leaves for the next (a GAN's fake images)
        self.compile = compile
        self.data_parallel = data_parallel
        self.execution = execution or Execution()
        self._stages = self._build_stages()

    def _module_view(self) -> Networks:
        networks = self.data_parallel.modules if self.data_parallel else self.networks
        if self.compile != "modules":
            return networks
        if not hasattr(self, "_compiled_networks"):
            self._compiled_networks = {k: torch.compile(v) for k, v in networks.items()}
        return self._compiled_networks

    def _build_stages(self) -> list[tuple[str, Callable[[], None]]]:
        stages = []
        for update in self.scenario.updates():
            trains = update.trains or frozenset(self.networks)
            owners = [i for i, scope in enumerate(self.scopes) if scope & trains]
            stages += [("forward", self._forward_fn(update)), ("backward", self._backward),
                       ("optimizer", self._optimizer_fn(owners))]
        if self.scenario.has_target_update:
            scenario, networks = self.scenario, self.networks
            stages.append((TARGET, lambda: scenario.target_update(networks)))
        return stages

    def _forward_fn(self, update: Update) -> Callable[[], None]:
        compute = torch.compile(update.loss) if self.compile == "step" else update.loss
        reduced = PRECISIONS[self.precision] is not None
        freeze = [self.networks[n] for n in update.frozen]
        networks = self._module_view()
        data_parallel = self.data_parallel

        def loss() -> torch.Tensor:
            return compute(networks, self.batch, self.scratch)

        if data_parallel is not None:
            local = loss

            def loss() -> torch.Tensor:
                return data_parallel(local)

        # Entering a context costs microseconds, inside what is timed: only those that
        # change something are entered.
        if reduced or freeze:
            inner = loss

            def loss() -> torch.Tensor:
                with frozen(freeze), autocast(self.device_type, self.precision):
                    return inner()

        def forward() -> None:
            self.loss = loss()
            self.last_loss = self.loss.detach()
        return forward

    def _backward(self) -> None:
        loss = self.scaler.scale(self.loss) if self.scaler else self.loss
        loss.backward()
        self.loss = None  # free the graph's root now, not at the next forward

    def _optimizer_fn(self, owners: list[int]) -> Callable[[], None]:
        optimizers = [self.optimizers[i] for i in owners]
        # independent of each other: under `streams`, each on a stream of its own. `step` is
        # looked up at each call, not bound now: the attribution pass wraps it afterwards.
        steps = [(self.scaler.step, (opt,)) if self.scaler else (_step_of, (opt,))
                 for opt in optimizers]
        run = self.execution.run

        def optimizer() -> None:
            run(steps)
            if self.scaler:
                self.scaler.update()
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
        return optimizer

    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        """The stages of one iteration, in order, each named by its phase."""
        return self._stages

    def run(self) -> None:
        """One whole iteration with nothing between the stages."""
        for _, fn in self._stages:
            fn()

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def stage(self, phase: str) -> Callable[[], None]:
        """The first stage of ``phase`` (for a scenario with several updates, the first
        update's)."""
        if phase not in ALL_PHASES:
            raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(ALL_PHASES)}")
        return next(fn for name, fn in self._stages if name == phase)

    def prepare(self, phase: str) -> None:
        """Bring the step to where ``stage(phase)`` starts, by running the stages before it:
        a clean state (no graph, no gradients) for ``forward``, a fresh forward for
        ``backward``, a fresh forward and backward for ``optimizer``. For timing one phase
        on its own."""
        target = self.stage(phase)
        self.loss = None
        self.zero_grad()
        for _, fn in self._stages:
            if fn is target:
                return
            fn()

    def parameters(self) -> list[torch.Tensor]:
        return [p for net in self.networks.values() for p in net.parameters()]


@dataclass(frozen=True)
class StepSpec:
    """Everything that decides what a step computes; the same spec builds the same step."""

    scenario: str
    batch_size: int
    device: str = "cpu"
    optimizer_setup: str = "separate"
    optimizer: str = "adam"
    optimizer_impl: str = "auto"
    size: str = "seed"
    seed: int = 0
    precision: str = "fp32"
    compile: str = "none"
    n_networks: int = 2
    cuda_graph: bool = False
    # `none`, or how DistributedDataParallel wraps the networks: every rank then draws its
    # batch from seed + rank, so that ranks see different data as in real data parallelism
    ddp_wrap: str = "none"
    # how the networks run: `sequential`, `streams` (CUDA) or `stacked`
    execution: str = "sequential"

    def __post_init__(self) -> None:
        check_positive("batch_size", self.batch_size)
        if self.precision not in PRECISIONS:
            raise InvalidChoice("precision", self.precision, PRECISIONS)
        if self.compile not in COMPILE_MODES:
            raise InvalidChoice("compile mode", self.compile, COMPILE_MODES)
        check_positive("n_networks", self.n_networks)
        if self.ddp_wrap not in DDP_WRAPS:
            raise InvalidChoice("DDP wrap", self.ddp_wrap, DDP_WRAPS)
        if self.execution not in EXECUTIONS:
            raise InvalidChoice("execution", self.execution, EXECUTIONS)


def _step_of(optimizer: torch.optim.Optimizer) -> None:
    optimizer.step()


def autocast(device_type: str, precision: str) -> torch.autocast:
    """The forward's autocast for ``precision``, switched off for fp32: given no dtype,
    torch.autocast would pick the device's default (bf16 on the CPU, fp16 on CUDA)."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device_type, dtype=dtype, enabled=dtype is not None)


def unsupported(spec: StepSpec) -> str | None:
    """Why this device or combination cannot run ``spec``, or None if it can."""
    device = torch.device(spec.device)
    problem = size_problem(spec.scenario, spec.size) if spec.scenario in SCENARIOS else None
    if problem:
        return problem
    if spec.ddp_wrap != "none":
        if SCENARIOS[spec.scenario].untrained:
            return (f"DDP runs of {spec.scenario!r} are not built: its untrained networks "
                    "(a teacher, target networks) would need a wrap of their own")
        if device.type not in ("cpu", "cuda"):
            return f"DDP runs on cpu (gloo) and cuda (nccl), not {device.type}"
        if spec.cuda_graph:
            return "CUDA graphs with DDP: the all-reduces would have to be captured in the graph"
        if not dist.is_initialized():
            return "DDP needs a process group: launch with torchrun and run --distributed"
    if spec.precision == "fp16" and device.type != "cuda":
        return (f"precision fp16 (autocast with a GradScaler) needs CUDA; {spec.device} "
                "supports fp32, bf16")
    if spec.compile == "step" and SCENARIOS[spec.scenario].several_updates:
        # the generator's update backpropagates through a tensor the discriminator's
        # compiled forward produced, whose graph that update's backward already freed
        return (f"compile=step compiles each update of {spec.scenario!r} alone, and its later "
                "update backpropagates through an earlier one's graph; use compile=modules")
    if spec.cuda_graph:
        if device.type != "cuda":
            return "CUDA graphs need a CUDA device"
        if spec.compile != "none":
            return "CUDA graphs with torch.compile: use compile alone (or its reduce-overhead mode)"
        if spec.precision == "fp16" and resolve_impl(spec.optimizer_impl, spec.device) != "fused":
            return ("CUDA graphs with fp16 need a fused optimizer: the GradScaler's inf check "
                    "syncs with the host otherwise")
    if spec.execution != "sequential":
        problem = execution_problem(spec)
        if problem:
            return problem
    if resolve_impl(spec.optimizer_impl, spec.device) == "fused":
        supported = fused_devices()
        if device.type not in supported:
            return (f"torch {torch.__version__} has no fused optimizer kernels for "
                    f"{device.type}; it has them for {', '.join(supported)}")
    return None


def execution_problem(spec: StepSpec) -> str | None:
    """Why ``spec.execution`` cannot run ``spec``: streams need CUDA and networks that do not
    depend on each other, stacking networks of one architecture."""
    name = spec.execution
    combined = [what for what, on in (("torch.compile", spec.compile != "none"),
                                      ("CUDA graphs", spec.cuda_graph),
                                      ("DDP", spec.ddp_wrap != "none")) if on]
    if combined:
        return (f"execution {name} is not combined with {' or '.join(combined)}: it is built "
                "for the eager step of one process")
    if name == "streams" and torch.device(spec.device).type != "cuda":
        return f"execution streams needs CUDA streams; {spec.device} has none"
    scenario = build_scenario(spec.scenario, spec.size, spec.n_networks)
    if name == "streams" and not scenario.independent():
        return (f"execution streams has nothing to overlap in {spec.scenario!r}: no networks "
                "of it run independently within an update")
    if name == "stacked" and not scenario.stackable():
        return (f"execution stacked runs networks of one architecture on the same inputs as "
                f"one; those of {spec.scenario!r} differ")
    return None


def fused_devices() -> list[str]:
    """Device types with fused optimizer kernels in this torch."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
        return list(_get_fused_kernels_supported_devices())
    except ImportError:  # a torch that moved the helper
        return ["cuda", "cpu"]


def check_supported(spec: StepSpec) -> None:
    """Raise MultinetError, before anything is built, for what cannot run here."""
    reason = unsupported(spec)
    if reason:
        raise MultinetError(reason)


def build_step(spec: StepSpec) -> JointStep:
    """Networks, optimizers and batch for ``spec``, ready to run on ``spec.device``."""
    check_supported(spec)
    scenario = build_scenario(spec.scenario, spec.size, spec.n_networks)
    networks = scenario.networks(spec.seed, spec.device)
    if spec.execution == "stacked":
        networks = stack_networks(scenario.stackable(), networks)
    scenario.use(make_execution(spec.execution, spec.device), networks)
    wrapped, batch_seed = None, spec.seed
    if spec.ddp_wrap != "none":
        wrapped = wrap_networks(spec.ddp_wrap, scenario, networks, spec.device)
        batch_seed += dist.get_rank()
    impl = resolve_impl(spec.optimizer_impl, spec.device)
    trained = scenario.trained(networks)
    optimizers = make_optimizers(spec.optimizer_setup, trained, spec.optimizer, impl,
                                 capturable=spec.cuda_graph,
                                 overrides=scenario.optimizer_overrides.get(spec.optimizer))
    batch = scenario.batch(spec.batch_size, spec.device, batch_seed)
    step = JointStep(scenario, networks, optimizers, batch,
                     scopes=optimizer_scopes(spec.optimizer_setup, trained),
                     precision=spec.precision, compile=spec.compile, device=spec.device,
                     data_parallel=wrapped, execution=scenario.execution)
    if spec.cuda_graph:
        from multinet.graphs import GraphedStep  # CUDA only; keeps CPU imports light
        return GraphedStep(step)
    return step
