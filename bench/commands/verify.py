"""``python -m bench verify``: gradient flow, optimizer-setup equivalence, and the joint step
against reference loops written apart from it, as tables; then the networks run another way
(on CUDA streams, stacked) against the same run one after the other and against the
reference loops. Each scenario is checked at the size its reference loop names first: the
article's ``seed``, a workload's CPU size ``tiny``."""

from __future__ import annotations

import argparse
import itertools

from bench.axes import N_NETWORKS, PRECISION, SCENARIO
from bench.correctness.check import (STACKED, UNCHECKED, against_reference, checked_size,
                                     reference_trace, tolerance, tolerance_text, unchecked)
from bench.correctness.loops import LOOPS
from bench.errors import UsageError
from bench.measure.devices import resolve_devices
from bench.present.verification import (equivalence_table, execution_table, flow_table,
                                        reference_table)
from bench.sweep.config import parse_list
from multinet import IMPLEMENTATIONS, OPTIMIZERS, SCENARIOS, gradient_flow, setup_equivalence
from multinet.errors import InvalidChoice
from multinet.scenarios import build_scenario
from multinet.step import PRECISIONS, StepSpec, unsupported
from multinet.verify import (EQUIVALENCE_UNDEFINED, EXECUTION_REASONS, execution_bounds,
                             execution_equivalence)
from multinet.verify import tolerance as equivalence_tolerance

MAX_STEPS = 1000  # optimizer steps before comparing: drift shows within a few
IMPLS = [i for i in IMPLEMENTATIONS if i != "auto"]


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="check gradient flow, setup equivalence and the step "
                       "against reference loops",
                       description="Exit 0 when every check holds, 1 otherwise.")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated scenarios (default: all)")
    p.add_argument("--device", default="cpu", help="cpu (bitwise checks), cuda, cuda:N, mps, or auto (the first accelerator, else the CPU)")
    p.add_argument("--steps", type=int, default=5, help="optimizer steps before comparing")
    p.add_argument("--precision", default="fp32",
                   help=f"autocast precision of the checks: {', '.join(PRECISIONS)} "
                   "(fp16 needs CUDA)")
    p.add_argument("--n-networks", type=int, default=3,
                   help="networks in the scenarios whose number is a parameter (n_chain, ...)")
    p.set_defaults(main=main)


def check_arguments(args: argparse.Namespace) -> list[str]:
    scenarios = parse_list("--scenarios", args.scenarios)
    if not scenarios:
        raise UsageError(f"--scenarios is empty; give at least one of {', '.join(SCENARIOS)}")
    for name in scenarios:
        if name not in SCENARIOS:
            raise InvalidChoice(SCENARIO.name, name, SCENARIOS)
    if args.precision not in PRECISIONS:
        raise InvalidChoice(PRECISION.name, args.precision, PRECISIONS)
    if not 1 <= args.steps <= MAX_STEPS:
        raise UsageError(f"--steps must be from 1 to {MAX_STEPS}, got {args.steps}")
    low, high = N_NETWORKS.minimum, N_NETWORKS.maximum
    if not low <= args.n_networks <= high:
        raise UsageError(f"--n-networks must be from {low} to {high}, got {args.n_networks}")
    return scenarios


def equivalence_section(scenarios, device, precision, args) -> bool:
    if precision in EQUIVALENCE_UNDEFINED:
        print(f"Setup equivalence is not checked under {precision}: "
              f"{EQUIVALENCE_UNDEFINED[precision]}.")
        return True
    results = [r for name in scenarios for opt in OPTIMIZERS for impl in IMPLS
               for r in setup_equivalence(name, optimizer=opt, optimizer_impl=impl,
                                          steps=args.steps, device=device,
                                          size=checked_size(name),
                                          n_networks=args.n_networks, precision=precision)]
    lines, ok = equivalence_table(results)
    print(f"Setup equivalence on {device}, {precision}, after {args.steps} steps, against "
          f"`separate` (one optimizer per network); tolerance: "
          f"{equivalence_tolerance(device, precision)}")
    print("\n".join(lines))
    return ok


def reference_section(scenarios, device, precision, args) -> bool:
    if precision in UNCHECKED:
        print(f"The reference loops are not run under {precision}: {UNCHECKED[precision]}.")
        return True
    results, skipped = [], {}
    for name in [name for name in scenarios if name in LOOPS]:
        impls = []
        for impl in IMPLS:
            reason = unchecked(name, device, precision, impl)
            if reason:
                skipped.setdefault((name, reason), []).append(impl)
            else:
                impls.append(impl)
        for opt in OPTIMIZERS if impls else ():
            # one reference run serves every implementation and setup of the harness
            trace = reference_trace(name, opt, steps=args.steps, batch_size=4, device=device,
                                    seed=0, n_networks=args.n_networks, precision=precision,
                                    size=checked_size(name))
            for impl in impls:
                results += against_reference(name, optimizer=opt, optimizer_impl=impl,
                                             steps=args.steps, device=device,
                                             n_networks=args.n_networks, precision=precision,
                                             size=checked_size(name), trace=trace)
    bounds = {impl: tolerance_text(tolerance(device, precision, impl)) for impl in IMPLS}
    print(f"Against the reference loops on {device}, {precision}, over {args.steps} steps: "
          "each scenario's loop written apart from the harness (the article's: one optimizer "
          "per network, torch.optim's documented defaults; a workload's: its reference "
          "code's optimizers and hyperparameters); losses, gradients, parameters, optimizer "
          "state and buffers after every step; tolerance: "
          + "; ".join(f"{impl} {text}" for impl, text in bounds.items()))
    lines, ok = reference_table(results) if results else ([], True)
    print("\n".join(lines))
    for (name, reason), impls in skipped.items():
        print(f"{name} with {', '.join(impls)} is not held against its reference loop: "
              f"{reason}.")
    missing = [name for name in scenarios if name not in LOOPS]
    if missing:
        print(f"No reference loop for {', '.join(missing)}: not checked against one.")
    return ok


# The executions besides one network after the other, and what a scenario declares for each.
OTHER_EXECUTIONS = {"streams": "independent", "stacked": "stackable"}


def execution_coverage(scenarios, device, precision, n) -> tuple[dict, list[str]]:
    """Per execution, the scenarios it runs here, and lines saying where it does not."""
    applies, lines = {}, []
    for execution, declares in OTHER_EXECUTIONS.items():
        applies[execution], refused, silent = [], {}, []
        for name in scenarios:
            size = checked_size(name)
            reason = unsupported(StepSpec(name, 4, device, size=size, n_networks=n,
                                          precision=precision, execution=execution))
            if reason is None:
                applies[execution].append(name)
            elif not getattr(build_scenario(name, size, n), declares)():
                silent.append(name)
            else:
                refused.setdefault(reason, []).append(name)
        lines += [f"{execution} is not checked for {', '.join(names)}: {reason}."
                  for reason, names in refused.items()]
        if silent:
            lines.append(f"No {declares} networks declared by {', '.join(silent)}: "
                         f"{execution} does not apply.")
    return applies, lines


def execution_results(applies: dict, device, precision, args) -> tuple[list, list, set]:
    """For each scenario an execution applies to, every optimizer and implementation: every
    setup against the same run one after the other, and `separate` (the others end where it
    ends, as setup equivalence shows) against the reference loop."""
    same, reference, skipped = [], [], set()
    common = dict(steps=args.steps, device=device, n_networks=args.n_networks,
                  precision=precision)
    for execution, names in applies.items():
        for name, opt in itertools.product(names, OPTIMIZERS):
            size, trace = checked_size(name), None
            for impl in IMPLS:
                same += execution_equivalence(name, execution, optimizer=opt,
                                              optimizer_impl=impl, size=size, **common)
                reason = (unchecked(name, device, precision, impl, execution) if name in LOOPS
                          else "no reference loop")
                if reason:
                    skipped.add(f"{name} {execution} with {impl}: {reason}")
                    continue
                # one reference run serves every implementation
                trace = trace or reference_trace(name, opt, batch_size=4, seed=0, size=size,
                                                 **common)
                reference += against_reference(name, optimizer=opt, optimizer_impl=impl,
                                               setups=("separate",), size=size, trace=trace,
                                               execution=execution, **common)
    return same, reference, skipped


def execution_section(scenarios, device, precision, args) -> bool:
    if precision in EQUIVALENCE_UNDEFINED:
        print(f"Execution equivalence is not checked under {precision}: "
              f"{EQUIVALENCE_UNDEFINED[precision]}.")
        return True
    applies, lines = execution_coverage(scenarios, device, precision, args.n_networks)
    same, reference, skipped = execution_results(applies, device, precision, args)
    rtol, atol = execution_bounds(device, precision)
    print(f"Executions on {device}, {precision}, after {args.steps} steps, against the same "
          "setup with its networks run one after the other; where not identical, each "
          f"tensor's change since the start within rtol={rtol:g}, atol={atol:g} in norm, "
          "since " + "; ".join(f"{e}: {EXECUTION_REASONS[e]}" for e in applies if applies[e]))
    table, ok = execution_table(same) if same else ([], True)
    print("\n".join([*table, *lines]))
    if reference:
        print("\nThe same against the reference loops; stacked within "
              f"{tolerance_text(tolerance(device, precision, 'loop', 'stacked'))}, since "
              f"{STACKED}:")
        table, ref_ok = reference_table(reference)
        print("\n".join(table))
        ok &= ref_ok
    for line in sorted(skipped):
        print(f"Not held against a reference loop: {line}.")
    return ok


def main(args: argparse.Namespace, argv: list[str]) -> int:
    scenarios = check_arguments(args)
    # `auto`: the first accelerator, else the CPU, as `run` resolves it
    device, precision, n = resolve_devices([args.device])[0], args.precision, args.n_networks
    sizes: dict[str, list[str]] = {}
    for name in scenarios:
        sizes.setdefault(checked_size(name), []).append(name)
    flow = [r for size, names in sizes.items() for name in names
            for r in gradient_flow(name, size=size, device=device, n_networks=n,
                                   precision=precision)]
    flow_lines, flow_ok = flow_table(flow)
    print("Checked at size " + "; ".join(f"{size}: {', '.join(names)}"
                                         for size, names in sizes.items()))
    print(f"Gradient flow on {device}, {precision}: does each loss term give each network a "
          "non-zero gradient? (torch.autograd.grad per term)")
    print("\n".join(flow_lines))
    print()
    eq_ok = equivalence_section(scenarios, device, precision, args)
    print()
    ref_ok = reference_section(scenarios, device, precision, args)
    print()
    exec_ok = execution_section(scenarios, device, precision, args)
    ok = flow_ok and eq_ok and ref_ok and exec_ok
    print()
    print("All checks hold." if ok else "Some checks FAILED (see above).")
    return 0 if ok else 1
