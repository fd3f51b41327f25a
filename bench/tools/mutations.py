"""The defects ``make mutation-check`` plants, one at a time, and the tests that must catch each.

A mutation is an exact piece of the source (found once in its file) and what replaces it.
Each one is a mistake that would leave the harness running and its numbers plausible: a
phase timed under another's name, a warm-up that ends early, an optimizer that is not the
one documented, a check of the suite that stopped checking. ``tests`` are pytest arguments,
run in a copy of the checkout with the mutation applied; a failing test catches it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    find: str
    replace: str
    tests: tuple[str, ...]


CLOCKS = "bench/measure/clocks.py"
TIMERS = "bench/measure/timers.py"
ATTRIBUTION = "tests/test_phase_attribution.py"
BOOKKEEPING = "tests/test_timer_bookkeeping.py"
EVENT_CLOCK = "tests/test_event_clock.py"
REFERENCE = "tests/test_reference_loops.py"
NOT_THE_VERIFY_RUNS = ("-k", "not verify")  # the library checks, without verify's subprocesses

MUTATIONS: tuple[Mutation, ...] = (
    Mutation("forward and backward labels swapped in the per-phase split", CLOCKS,
             "        totals[name] += d\n",
             '        totals[{"forward": "backward", "backward": "forward"}.get(name, name)] += d\n',
             (EVENT_CLOCK, ATTRIBUTION)),
    Mutation("a 1 ms sleep inside the timed region of the unbroken step pass", CLOCKS,
             "            t0 = now()\n            run()\n",
             "            t0 = now()\n            run()\n            time.sleep(0.001)\n",
             (ATTRIBUTION, "-k", "add_up")),
    Mutation("the step pass times the phase pass's first closure", CLOCKS,
             "now, sync, run = time.perf_counter_ns, self.sync, step.run",
             "now, sync, run = time.perf_counter_ns, self.sync, step.phases()[0][1]",
             (ATTRIBUTION, "-k", "known_work")),
    Mutation("a host block drops its last sample", CLOCKS,
             "        out = []\n        for _ in range(n):\n",
             "        out = []\n        for _ in range(n - 1):\n",
             (BOOKKEEPING,)),
    Mutation("events recorded on the default stream, not the step's", CLOCKS,
             "        stream = torch.cuda.current_stream(self.device)\n        host = []\n"
             "        for events in self.events[:n]:\n            stamps",
             "        stream = torch.cuda.default_stream(self.device)\n        host = []\n"
             "        for events in self.events[:n]:\n            stamps",
             (EVENT_CLOCK,)),
    Mutation("an event block drops its last sample", CLOCKS,
             "return [ev[0].elapsed_time(ev[1]) for ev in self.events[:n]]",
             "return [ev[0].elapsed_time(ev[1]) for ev in self.events[:n - 1]]",
             (EVENT_CLOCK,)),
    Mutation("a sync after every phase of an event block", CLOCKS,
             "                fn()\n                event.record(stream)\n",
             "                fn()\n                torch.cuda.synchronize()\n"
             "                event.record(stream)\n",
             (EVENT_CLOCK,)),
    Mutation("no warm-up: its iterations are timed", TIMERS,
             "timing.warmup_iters, timing.first_iter_s, iter_s = warm_up(step, device, "
             "options, agree)",
             "timing.warmup_iters, timing.first_iter_s, iter_s = 0, 0.0, 0.001",
             (BOOKKEEPING,)),
    Mutation("a warm-up that counts its iterations and ignores its time", TIMERS,
             "float(iters < options.warmup_iters\n"
             "                       or time.perf_counter() - start < options.warmup_s)",
             "float(iters < options.warmup_iters)",
             (BOOKKEEPING,)),
    Mutation("the same step leads every round", TIMERS,
             "i = (round_ + j) % len(steps)", "i = j",
             ("tests/test_timers.py", "-k", "take_turns")),
    Mutation("steps timed together stop before their minimum of rounds", TIMERS,
             "rounds_done = len(steps) == 1 or round_ >= options.min_rounds",
             "rounds_done = True",
             ("tests/test_timers.py", "-k", "take_turns")),
    Mutation("Adam built with betas=(0.8, 0.99) in every setup", "multinet/optim.py",
             'torch.optim.Adam, {"lr": 1e-3}',
             'torch.optim.Adam, {"lr": 1e-3, "betas": (0.8, 0.99)}',
             (REFERENCE, *NOT_THE_VERIFY_RUNS)),
    Mutation("SGD without momentum", "multinet/optim.py",
             '{"lr": 1e-2, "momentum": 0.9}', '{"lr": 1e-2, "momentum": 0.0}',
             (REFERENCE, *NOT_THE_VERIFY_RUNS)),
    Mutation("`single` leaves out one network's parameters", "multinet/optim.py",
             "[t for p in params.values() for t in p]",
             "[t for p in list(params.values())[1:] for t in p]",
             (REFERENCE, *NOT_THE_VERIFY_RUNS)),
    Mutation("zero_grad dropped", "multinet/step.py",
             "            for opt in optimizers:\n                opt.zero_grad(set_to_none=True)\n"
             "        return optimizer\n",
             "        return optimizer\n",
             (REFERENCE, *NOT_THE_VERIFY_RUNS)),
    Mutation("the GAN's discriminator trains on the generator's loss", "multinet/scenarios.py",
             'frozen=frozenset({"discriminator"}))]', "frozen=frozenset())]",
             (REFERENCE, "-k", "gan and not verify")),
    Mutation("shared_input subtracts the logits it should add", "multinet/scenarios.py",
             'F.cross_entropy(linear + conv, batch["target"])',
             'F.cross_entropy(linear - conv, batch["target"])',
             (REFERENCE, "-k", "shared_input and not verify")),
    Mutation("a stack of networks runs its first network for all of them",
             "multinet/stacking.py", "return list(call(params, *args).unbind(0))",
             "return [call(params, *args)[0]] * len(self.member_names)",
             ("tests/test_stacking.py", "-k", "ends_where or reference_loops")),
    Mutation("the suite times the forward whatever its phase", "bench/suite/test_joint_step.py",
             'work = step.run if phase == "step" else step.stage(phase)',
             'work = step.run if phase == "step" else step.stage("forward")',
             ("bench/suite",)),
    Mutation("the suite's optimizer phase never steps", "bench/suite/test_joint_step.py",
             "    def target():\n        work()\n",
             "    def target():\n        work() if phase != \"optimizer\" else None\n",
             ("bench/suite",)),
)
