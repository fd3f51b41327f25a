"""``python -m bench.selfcheck.spread_sources``: where the spread between runs comes from, on
this machine, and which process settings reduce it.

A run's intervals see the samples of the process that measured them; two runs differ by
more. Two candidates: the *process* (something fixed when it starts and kept for its life:
where its threads run, where its memory lies) and the *time window* (the machine's speed
level during the few seconds a configuration is measured, shared by whatever runs then).
Each probe is a fresh process that builds a few configurations and times them in turn, a
short block each, for some seconds. Per configuration, the log block medians then split
into

- ``process_sd``: the spread of the probes' means, less what their own blocks explain;
- ``window_sd``: the spread of blocks about their probe's mean (the time windows);
- ``shared_window``: the share of the window variance common to the configurations timed
  in the same cycle (a machine level touches everything that runs then);
- ``lag1``: the correlation of consecutive blocks (levels that last longer than a block).

Settings are tried in interleaved order (A B C A B C ...), so slow drift lands on all alike.
A setting is a prefix to the probe's command and variables: threads, CPU affinity, address
space randomization, glibc's allocator. The figures are JSON on stdout (and ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import PROJECT_ROOT

CONFIGS = ("shared_input:1", "shared_input:32", "sequential:128")
SETTINGS = {
    "default": ([], {}),
    "threads-1": ([], {"OMP_NUM_THREADS": "1"}),
    "pinned-core-0-threads-1": (["taskset", "-c", "0"], {"OMP_NUM_THREADS": "1"}),
    "omp-bind-close": ([], {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}),
    "no-aslr": (["setarch", os.uname().machine, "-R"], {}),
    "glibc-default-allocator": ([], {"MULTINET_BENCH_ALLOCATOR": "default"}),
}


def probe(configs: list[str], seconds: float, block_s: float) -> dict:
    """In this process: build each configuration, warm it up, then time them in turn, a
    block of about ``block_s`` each, for ``seconds``; each block's median step time."""
    import torch

    from bench.measure.allocator import steady_allocator
    steady_allocator()
    from multinet.step import StepSpec, build_step

    steps = []
    for text in configs:
        scenario, batch = text.split(":")
        step = build_step(StepSpec(scenario=scenario, batch_size=int(batch)))
        for _ in range(5):
            step.run()
        t0 = time.perf_counter()
        step.run()
        steps.append((step, max(1, int(block_s / max(time.perf_counter() - t0, 1e-6)))))
    blocks: list[list[float]] = [[] for _ in steps]
    end = time.perf_counter() + seconds
    # two cycles at least, however slow the machine: a spread needs two blocks
    while time.perf_counter() < end or len(blocks[0]) < 2:
        for i, (step, n) in enumerate(steps):
            times = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                step.run()
                times.append((time.perf_counter_ns() - t0) / 1e6)
            blocks[i].append(float(np.median(times)))
    return {"threads": torch.get_num_threads(), "blocks": blocks}


def run_probe(setting: str, configs: list[str], seconds: float, block_s: float) -> dict:
    prefix, variables = SETTINGS[setting]
    command = [*prefix, sys.executable, "-m", "bench.selfcheck.spread_sources", "--probe",
               "--configs", ",".join(configs), "--seconds", str(seconds),
               "--block-s", str(block_s)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **variables}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"probe under {setting} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout)


def components(probes: list[list[float]]) -> dict:
    """Spread of one configuration's log block medians over probes (rows) and blocks."""
    logs = [np.log(np.asarray(p)) for p in probes]
    means = np.array([x.mean() for x in logs])
    within = np.concatenate([x - x.mean() for x in logs])
    window_var = within.var(ddof=len(logs))
    # a block series that never moved has no correlation: it counts as none
    lags = [np.corrcoef(x[:-1], x[1:])[0, 1] for x in logs if len(x) > 3 and np.ptp(x) > 0]
    lag1 = float(np.mean(lags)) if lags else 0.0
    # blocks are not independent (lag1 > 0): the variance of a probe's mean from its own
    # blocks is inflated by (1 + r) / (1 - r), the AR(1) effective-size correction
    inflation = (1 + max(lag1, 0)) / (1 - min(max(lag1, 0), 0.95))
    own = window_var / np.mean([len(x) for x in logs]) * inflation
    process_var = max(means.var(ddof=1) - own, 0.0)
    return {"process_sd": float(np.sqrt(process_var)), "window_sd": float(np.sqrt(window_var)),
            "probe_means_sd": float(means.std(ddof=1)), "lag1": float(lag1),
            "blocks_per_probe": float(np.mean([len(x) for x in logs]))}


def shared_window(per_config: list[list[list[float]]]) -> float:
    """The share of the block-to-block variance common to the configurations of a cycle:
    the variance of the cycle's mean deviation over the mean of the deviations' variances."""
    shares = []
    for p in range(len(per_config[0])):
        rows = [np.log(np.asarray(c[p])) for c in per_config]
        n = min(len(r) for r in rows)
        dev = np.stack([r[:n] - r[:n].mean() for r in rows])
        k = len(rows)
        common = dev.mean(axis=0).var(ddof=1)
        each = dev.var(axis=1, ddof=1).mean()
        # var(mean) = c + (each - c) / k for a common part c: solve for c, over each
        shares.append((common - each / k) / (each * (1 - 1 / k)) if each > 0 else 0.0)
    return float(np.clip(np.mean(shares), 0.0, 1.0))


def summarize(results: dict[str, list[dict]], configs: list[str]) -> dict:
    out = {}
    for setting, probes in results.items():
        per_config = [[p["blocks"][i] for p in probes] for i in range(len(configs))]
        out[setting] = {"probes": len(probes), "threads": probes[0]["threads"],
                        "shared_window": shared_window(per_config),
                        **{c: components(b) for c, b in zip(configs, per_config)}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.selfcheck.spread_sources",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="SCENARIO:BATCH,... (seed size, separate, adam)")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"any of {', '.join(SETTINGS)}")
    parser.add_argument("--probes", type=int, default=6, help="fresh processes per setting")
    parser.add_argument("--seconds", type=float, default=8.0, help="timing per probe")
    parser.add_argument("--block-s", type=float, default=0.05)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    if args.probe:
        print(json.dumps(probe(configs, args.seconds, args.block_s)))
        return 0
    settings = [s for s in args.settings.split(",") if s]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting {unknown[0]!r}; valid: {', '.join(SETTINGS)}")
    settings = [s for s in settings if shutil.which((SETTINGS[s][0] or ["true"])[0])]
    results: dict[str, list[dict]] = {s: [] for s in settings}
    for i in range(args.probes):
        for setting in settings:  # interleaved: drift lands on every setting alike
            results[setting].append(run_probe(setting, configs, args.seconds, args.block_s))
            print(f"probe {i + 1}/{args.probes}: {setting}", file=sys.stderr, flush=True)
    report = {"configs": configs, "seconds": args.seconds, "block_s": args.block_s,
              "load_note": os.getloadavg(), "settings": summarize(results, configs)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
