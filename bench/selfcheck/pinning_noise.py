"""``python -m bench.selfcheck.pinning_noise OUT_DIR``: the noise of A/A paired rounds with
their sides pinned to one CPU (``--cpus auto``) and not pinned (``--cpus all``), measured
alternately.

Each setting takes ``--rounds-per-turn`` A/A rounds of the sweep at a time, the two
settings in turn, ABBA (what the machine does over minutes lands on both alike), until
each has ``--turns`` x that many. The rounds are gathered per setting into
``OUT_DIR/<setting>/{a,b}/round-NN``, the form ``python -m bench.selfcheck.paired_noise``
and ``sequential_noise`` read; each setting's fitted model is printed and written to
``OUT_DIR/pinning_noise.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import PROJECT_ROOT
from bench.cli import OneLineParser
from bench.selfcheck.paired_noise import fit

SETTINGS = {"pinned": "auto", "unpinned": "all"}
SIDES = ("a", "b")
TRIES, STOPPED = 3, (130, 143)


def measure_turn(cpus: str, rounds: int, run_args: str, scratch: Path) -> None:
    """``rounds`` A/A paired rounds of the sweep into ``scratch``; a turn that a signal
    stopped (another user's, on a shared machine) is measured again, twice at most."""
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"b={sys.executable}", "--rounds", str(rounds), "--every-round",
               "--cpus", cpus, "--out-dir", str(scratch), "--run-args", run_args]
    for _ in range(TRIES):
        shutil.rmtree(scratch, ignore_errors=True)
        code = subprocess.run(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL).returncode
        if code not in STOPPED:
            break
        print(f"the turn was stopped by a signal (exit {code}); measuring it again", flush=True)
    if code != 0:
        raise SystemExit(f"error: paired-rounds exited {code}")


def gather(scratch: Path, into: Path) -> int:
    """Move the scratch rounds into ``into``, numbered after those there; rounds there now."""
    for side in SIDES:
        (into / side).mkdir(parents=True, exist_ok=True)
    done = len(list((into / SIDES[0]).glob("round-*")))
    for i, folder in enumerate(sorted((scratch / SIDES[0]).glob("round-*")), start=1):
        for side in SIDES:
            shutil.move(str(scratch / side / folder.name), into / side / f"round-{done + i:02d}")
    return len(list((into / SIDES[0]).glob("round-*")))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.selfcheck.pinning_noise",
                           description="A/A paired rounds pinned to one CPU and not, "
                           "alternately, and the noise model fitted to each.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--rounds-per-turn", type=int, default=2)
    parser.add_argument("--run-args", default="", help="`python -m bench run` options")
    args = parser.parse_args(argv)
    if args.turns < 1 or args.rounds_per_turn < 2:
        parser.error("--turns must be at least 1 and --rounds-per-turn at least 2 (to pair)")
    names = list(SETTINGS)
    for turn in range(args.turns):
        for name in (names if turn % 2 == 0 else names[::-1]):  # ABBA
            if len(list((args.out_dir / name / SIDES[0]).glob("round-*"))) >= \
                    (turn + 1) * args.rounds_per_turn:
                continue  # measured by an earlier call: the same command continues
            with tempfile.TemporaryDirectory() as scratch:
                measure_turn(SETTINGS[name], args.rounds_per_turn, args.run_args,
                             Path(scratch) / "rounds")
                total = gather(Path(scratch) / "rounds", args.out_dir / name)
            print(f"turn {turn + 1}/{args.turns}: {name}, {total} rounds", flush=True)
    report = {name: {"cpus": SETTINGS[name], "model": fit(args.out_dir / name).describe()}
              for name in names}
    print(json.dumps(report, indent=2))
    (args.out_dir / "pinning_noise.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
