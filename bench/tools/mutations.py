"""The defects ``make mutation-check`` plants, one at a time, and the tests that must catch each.

A mutation is an exact piece of the source (found once in its file) and what replaces it.
Each one is a mistake that would leave the harness running and its numbers plausible: a
phase timed under another's name, a warm-up that ends early, an optimizer that is not the
one documented, a check of the suite that stopped checking; a verdict checked in the wrong
order, a count taken over phase rows, a history field or a workload's batch gone wrong.
``tests`` are pytest arguments, run in a copy of the checkout with the mutation applied; a
failing test catches it.
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
STATISTICS = "tests/test_statistics_reference.py"
AXIS_RATIOS = "tests/test_axis_ratios.py"
HISTORY = "tests/test_history_fields.py"
ON_DUCKDB = ("-m", "not postgres")  # the same tests against PostgreSQL add only its start
BATCHES = "tests/test_workload_batches.py"
DERIVED = "tests/test_derived_columns.py"
ENERGY = "tests/test_energy.py"
SEQUENTIAL = "tests/test_sequential.py"

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
             "timing.warmup_iters, timing.first_iter_s, iter_s = warm_up(step, self.device,\n"
             "                                                                       options, "
             "agree)",
             "timing.warmup_iters, timing.first_iter_s, iter_s = 0, 0.0, 0.001",
             (BOOKKEEPING,)),
    Mutation("a warm-up that counts its iterations and ignores its time", TIMERS,
             "float(iters < options.warmup_iters\n"
             "                       or time.perf_counter() - start < options.warmup_s)",
             "float(iters < options.warmup_iters)",
             (BOOKKEEPING,)),
    Mutation("the same step leads every round", TIMERS,
             "i = (self.rounds + j) % len(self.steps)", "i = j",
             ("tests/test_timers.py", "-k", "take_turns")),
    Mutation("steps timed together stop before their minimum of rounds", TIMERS,
             "rounds_done = self.rounds >= options.min_rounds",
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
    # analysis
    Mutation("`faster` is checked before `same`, so [0.952, 0.977] is faster",
             "bench/analyze/judge.py",
             "inside = (same_low >= 1 - threshold) & (same_high <= 1 + threshold)\n",
             "inside = (same_low >= 1 - threshold) & (same_high <= 1 + threshold) & ~(high < 1)\n",
             (STATISTICS, "-k", "interval_verdicts")),
    Mutation("Benjamini-Hochberg without its running minimum", "bench/analyze/judge.py",
             "np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])",
             "np.minimum(1.0, scaled)", (STATISTICS, "-k", "benjamini")),
    Mutation("Welch-Satterthwaite divides by n, not n - 1", "bench/analyze/judge.py",
             "wb ** 2 / (bn - 1) + wc ** 2 / (cn - 1)", "wb ** 2 / bn + wc ** 2 / cn",
             (STATISTICS, "-k", "welch")),
    Mutation("the drift test centres on the mean of the log-ratios",
             "bench/analyze/judge.py",
             "centre = np.median(d[base])", "centre = np.mean(d[base])",
             (STATISTICS, "-k", "drift")),
    Mutation("an axis's summary takes the arithmetic mean of the ratios",
             "bench/analyze/axis_ratios.py",
             '"geomean": float(np.exp(np.log(cell["ratio"]).mean()))',
             '"geomean": float(cell["ratio"].mean())', (AXIS_RATIOS, "-k", "summary")),
    # presentation
    Mutation("disturbed blocks summed over every phase row", "bench/analyze/run_tables.py",
             'steps = results[(results["status"] == OK) & (results["phase"] == STEP)]',
             'steps = results[results["status"] == OK]',
             ("tests/test_report.py", "-k", "disturbed")),
    Mutation("the statuses count phase rows, not configurations", "bench/present/summary.py",
             'configs = results.drop_duplicates(["repeat", "config_id"])',
             "configs = results", ("tests/test_summary.py", "-k", "statuses")),
    Mutation("the axis view's headline takes the arithmetic mean", "bench/present/axis_views.py",
             'geomean = float(np.exp(np.log(cell["ratio"]).mean()))',
             'geomean = float(cell["ratio"].mean())', (AXIS_RATIOS, "-k", "headline")),
    # history
    Mutation("a run's start is its last row's, not its first", "bench/history/record.py",
             'str(results["started_at"].min())', 'str(results["started_at"].max())',
             (HISTORY, *ON_DUCKDB)),
    Mutation("a dirty checkout's commit is stored as clean", "bench/history/record.py",
             '("+dirty" if project.get("dirty")', '("" if project.get("dirty")',
             (HISTORY, *ON_DUCKDB)),
    Mutation("the fingerprint leaves env.json out", "bench/history/record.py",
             'digest.update(b"env\\0" + json.dumps(',
             'digest.update(b"env\\0" * 0 + 0 * json.dumps(', (HISTORY, *ON_DUCKDB)),
    Mutation("a run on two GPUs stores one of them", "bench/history/record.py",
             '", ".join(devices) or None',
             '(devices[0] if devices else None)', (HISTORY, *ON_DUCKDB)),
    Mutation("the dashboard's interval is the narrowest of the repeats'",
             "bench/history/dashboard.py",
             "min(ci_low_ms) AS ci_low_ms", "max(ci_low_ms) AS ci_low_ms",
             (HISTORY, *ON_DUCKDB)),
    # workloads
    Mutation("SAC's done-mask inverted: 99% of transitions terminal",
             "multinet/workloads/sac.py", "generator=generator) > 0.01).float()",
             "generator=generator) < 0.01).float()", (BATCHES, "-k", "sac")),
    Mutation("CLIP's end token is not the largest id, where the encoder pools",
             "multinet/workloads/clip.py", "tokens[torch.arange(n), ends] = s.vocab - 1",
             "tokens[torch.arange(n), ends] = s.vocab - 2", (BATCHES, "-k", "clip")),
    Mutation("CycleGAN's second domain in [0, 2), out of the generators' range",
             "multinet/workloads/cyclegan.py",
             '"real_B": torch.rand(batch_size, 3, n, n, generator=generator) * 2 - 1}',
             '"real_B": torch.rand(batch_size, 3, n, n, generator=generator) * 2}',
             (BATCHES, "-k", "gan")),
    # energy and the derived columns
    Mutation("a counter reset read as energy", "bench/measure/energy.py",
             'if mj is None or (moment == "after" and mj < self._before.get(index, mj)):',
             "if mj is None:", (ENERGY, "-k", "reset or meter")),
    Mutation("energy per step over the unbroken pass's iterations only",
             "bench/measure/energy.py",
             "return len(timing.device_ms[STEP]) + len(timing.device_ms[PHASES[0]])",
             "return len(timing.device_ms[STEP])", (ENERGY, "-k", "meter")),
    Mutation("host time written from the device's samples", "bench/sweep/writer.py",
             '"host_median_ms": _num(h.median)', '"host_median_ms": _num(s.median)',
             (DERIVED,)),
    Mutation("samples per second of one rank's batch", "bench/sweep/writer.py",
             'base["global_batch_size"] / s.median * 1e3', "spec.batch_size / s.median * 1e3",
             (DERIVED, "-k", "rates")),
    Mutation("launch-bound only strictly above the host share", "bench/analyze/phase_bounds.py",
             "host_ms / device_ms >= LAUNCH_HOST_SHARE",
             "host_ms / device_ms > LAUNCH_HOST_SHARE",
             ("tests/test_bounds.py", "-k", "by_hand")),
    # stopping when decided, blocks that moved together, workers
    Mutation("every look spends the whole error budget", "bench/analyze/sequential.py",
             "        return (pocock_spent(alpha, look / self.looks)\n"
             "                - pocock_spent(alpha, (look - 1) / self.looks))",
             "        return alpha", (SEQUENTIAL, "-k", "budget or stopping")),
    Mutation("a paired measurement decided at a look is judged again at the next",
             "bench/analyze/paired_rounds.py",
             "        open_ = np.isnan(decided_at)\n",
             "        open_ = np.ones(len(decided_at), dtype=bool)\n",
             ("tests/test_compare_honest.py", "-k", "identical")),
    Mutation("half the measurements agreeing make a shift common", "bench/analyze/shifts.py",
             "AGREEMENT = 0.75", "AGREEMENT = 0.5", ("tests/test_shifts.py",)),
    Mutation("the value nearest no change is taken as moved, the rest as held",
             "bench/analyze/shifts.py",
             "    steady = np.isin(values, sorted(held(medians, threshold)))",
             "    steady = ~np.isin(values, sorted(held(medians, threshold)))",
             ("tests/test_shifts.py",)),
    Mutation("the spread between workers pools standard deviations, not variances",
             "bench/sweep/workers.py",
             "return float(math.sqrt((variances[usable] * df).sum() / df.sum()))",
             "return float((np.sqrt(variances[usable]) * df).sum() / df.sum())",
             ("tests/test_workers.py", "-k", "pooled")),
    Mutation("a group that ran out of its share takes from what others are owed",
             "bench/sweep/visits.py",
             "        claimed = sum(spent if done else max(spent, owed) for spent, owed, done in",
             "        claimed = sum(spent for spent, owed, done in",
             ("tests/test_visits.py", "-k", "share")),
)
