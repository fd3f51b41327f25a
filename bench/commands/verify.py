"""``python -m bench verify``: gradient flow and optimizer-setup equivalence, as tables."""

from __future__ import annotations

import argparse

from bench.axes import N_NETWORKS, OPTIMIZER, PRECISION, SCENARIO
from bench.errors import UsageError
from bench.sweep.config import parse_list
from bench.measure.devices import normalize_device
from multinet import IMPLEMENTATIONS, OPTIMIZERS, SCENARIOS, gradient_flow, setup_equivalence
from multinet.errors import InvalidChoice
from multinet.step import PRECISIONS
from multinet.verify import EQUIVALENCE_UNDEFINED, tolerance

MAX_STEPS = 1000  # optimizer steps before comparing: drift shows within a few


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="check gradient flow and optimizer-setup equivalence",
                       description="Exit 0 when every check holds, 1 otherwise.")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated scenarios (default: all)")
    p.add_argument("--device", default="cpu", help="cpu (bitwise checks), cuda, cuda:N, mps")
    p.add_argument("--steps", type=int, default=5, help="optimizer steps before comparing")
    p.add_argument("--precision", default="fp32",
                   help=f"autocast precision of the checks: {', '.join(PRECISIONS)} "
                   "(fp16 needs CUDA)")
    p.add_argument("--n-networks", type=int, default=3,
                   help="networks in the scenarios whose number is a parameter (n_chain, ...)")
    p.set_defaults(main=main)


def flow_table(results) -> tuple[list[str], bool]:
    lines = [f"{SCENARIO.name:<17} {'loss term':<19} {'reaches':<22} {'expected':<22} check"]
    ok_all = True
    for key in dict.fromkeys((r.scenario, r.term) for r in results):
        cells = [r for r in results if (r.scenario, r.term) == key]
        ok = all(c.ok for c in cells)
        ok_all &= ok
        reached = ", ".join(c.network for c in cells if c.observed) or "none"
        expected = ", ".join(c.network for c in cells if c.expected) or "none"
        lines.append(f"{key[0]:<17} {key[1]:<19} {reached:<22} {expected:<22} "
                     + ("ok" if ok else "FAILED"))
    return lines, ok_all


def equivalence_table(results) -> tuple[list[str], bool]:
    lines = [f"{SCENARIO.name:<18}{OPTIMIZER.name:<11}{'impl':<9}{'single':<22}{'grouped':<22}"]
    ok_all = True
    for key in dict.fromkeys((r.scenario, r.optimizer, r.optimizer_impl) for r in results):
        cells = {r.setup: r for r in results if (r.scenario, r.optimizer, r.optimizer_impl) == key}
        text = []
        for setup in ("single", "grouped"):
            r = cells[setup]
            ok_all &= r.ok
            verdict = "identical" if r.bitwise else f"max diff {r.max_abs_diff:.2e}"
            text.append(f"{verdict + ('' if r.ok else ' FAILED'):<22}")
        lines.append(f"{key[0]:<18}{key[1]:<11}{key[2]:<9}{''.join(text)}")
    return lines, ok_all


def main(args: argparse.Namespace, argv: list[str]) -> int:
    scenarios = parse_list("--scenarios", args.scenarios)
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
    device, precision, n = normalize_device(args.device), args.precision, args.n_networks
    flow = [r for name in scenarios
            for r in gradient_flow(name, device=device, n_networks=n, precision=precision)]
    flow_lines, flow_ok = flow_table(flow)
    print(f"Gradient flow on {device}, {precision}: does each loss term give each network a "
          "non-zero gradient? (torch.autograd.grad per term)")
    print("\n".join(flow_lines))
    print()
    if precision in EQUIVALENCE_UNDEFINED:
        print(f"Setup equivalence is not checked under {precision}: "
              f"{EQUIVALENCE_UNDEFINED[precision]}.")
        eq_ok = True
    else:
        impls = [i for i in IMPLEMENTATIONS if i != "auto"]
        equivalence = [r for name in scenarios for opt in OPTIMIZERS for impl in impls
                       for r in setup_equivalence(name, optimizer=opt, optimizer_impl=impl,
                                                  steps=args.steps, device=device,
                                                  n_networks=n, precision=precision)]
        eq_lines, eq_ok = equivalence_table(equivalence)
        print(f"Setup equivalence on {device}, {precision}, after {args.steps} steps, against "
              f"`separate` (one optimizer per network); tolerance: "
              f"{tolerance(device, precision)}")
        print("\n".join(eq_lines))
    ok = flow_ok and eq_ok
    print()
    print("All checks hold." if ok else "Some checks FAILED (see above).")
    return 0 if ok else 1
