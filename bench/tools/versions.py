"""``make bench-versions TORCH="2.13.0 2.14.1"``: the same sweep under several torch releases.

For each version: a virtual environment ``.venvs/torch-<version>`` (reused when it exists),
``torch==<version>`` and the project installed into it. Then the sweep runs in paired
rounds, every version once per round in a fresh process, side by side and taking turns
(``bench/tools/paired.py``), into
``<out>/torch-<version>/round-NN/``, and ``python -m bench paired`` sets each newer version
against the oldest round by round. A version pip cannot install is reported and skipped;
the others go on.

This module runs under the bootstrap interpreter and needs nothing but the standard
library: torch lives only in the per-version environments.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import venv
from pathlib import Path

from bench import PROJECT_ROOT
from bench.cli import OneLineParser, user_path
from bench.releases import is_release, version_key
from bench.tools.paired import (DEFAULT_ROUNDS, Environment, measure_and_compare,
                                split_run_args)


def environment(version: str, venvs: Path, pip_args: list[str]) -> Path | None:
    """The python of an environment holding torch==version and the project, or None."""
    env_dir = venvs / f"torch-{version}"
    python = env_dir / "bin" / "python"
    stamp = env_dir / ".installed"
    if stamp.exists():
        return python
    print(f"[torch {version}] creating {env_dir}", flush=True)
    venv.create(env_dir, with_pip=True)
    steps = [[str(python), "-m", "pip", "install", "--quiet", f"torch=={version}", *pip_args],
             [str(python), "-m", "pip", "install", "--quiet", "-e", str(PROJECT_ROOT)]]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"[torch {version}] cannot install: {last}", file=sys.stderr, flush=True)
            return None
    stamp.touch()
    return python


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench versions", description=__doc__.split("\n")[0])
    parser.add_argument("versions", nargs="+", help="torch versions, e.g. 2.13.0 2.14.1")
    parser.add_argument("--out-dir", type=user_path, default=Path("results/versions"))
    parser.add_argument("--venvs", type=user_path, default=PROJECT_ROOT / ".venvs")
    parser.add_argument("--pip-args", default="", help="extra pip arguments for torch, "
                        "e.g. '--index-url https://download.pytorch.org/whl/cpu'")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"paired rounds of the sweep (default {DEFAULT_ROUNDS})")
    parser.add_argument("--run-args", default="", help="extra `python -m bench run` options")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="run each round's versions one after the other, not side by side")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2 to pair, got {args.rounds}")
    for version in args.versions:  # each names a folder, and what pip installs
        if not is_release(version):
            parser.error(f"{version!r} is not a torch version such as 2.13.0 or 2.13.0rc1")
    if len(set(args.versions)) < 2:  # before anything is installed
        parser.error(f"give two torch versions or more to compare, got {args.versions}")
    try:
        pip_args = shlex.split(args.pip_args)
    except ValueError as exc:
        parser.error(f"--pip-args {args.pip_args!r}: {exc}")
    run_args = split_run_args(args.run_args)
    envs = []
    for version in sorted(dict.fromkeys(args.versions), key=version_key):
        python = environment(version, args.venvs, pip_args)
        if python is not None:
            envs.append(Environment(f"torch-{version}", str(python)))
    if len(envs) < 2:
        print("error: fewer than two torch versions ran; nothing to compare", file=sys.stderr)
        return 2
    # the versions take turns within each round, so the machine's moods land on all alike
    status = measure_and_compare(envs, args.rounds, args.out_dir, run_args,
                                 args.one_at_a_time, "")
    if status in (0, 1):
        print(f"Comparison across {', '.join(e.name for e in envs)}: "
              f"{args.out_dir / 'paired.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
