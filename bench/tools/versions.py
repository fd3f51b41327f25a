"""``make bench-versions TORCH="2.13.0 2.14.1"``: the same sweep under several torch releases.

For each version: a virtual environment ``.venvs/torch-<version>`` (reused when it exists),
``torch==<version>`` and the project installed into it, and the sweep run with it into
``<out>/torch-<version>/``. Then the comparison across them: the oldest version is the
baseline, every newer one a candidate (trend chart and regression table). A version pip
cannot install is reported and skipped; the others go on.

This module runs under the bootstrap interpreter and imports nothing but the standard
library: torch lives only in the per-version environments.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import venv
from pathlib import Path

from bench import PROJECT_ROOT



def version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in version.replace("+", ".").split("."))


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
    parser = argparse.ArgumentParser(prog="make bench-versions", description=__doc__.split("\n")[0])
    parser.add_argument("versions", nargs="+", help="torch versions, e.g. 2.13.0 2.14.1")
    parser.add_argument("--out-dir", type=Path, default=Path("results/versions"))
    parser.add_argument("--venvs", type=Path, default=PROJECT_ROOT / ".venvs")
    parser.add_argument("--pip-args", default="", help="extra pip arguments for torch, "
                        "e.g. '--index-url https://download.pytorch.org/whl/cpu'")
    parser.add_argument("--run-args", default="", help="extra `python -m bench run` options")
    args = parser.parse_args(argv)

    runs: list[tuple[str, Path, Path]] = []
    for version in sorted(dict.fromkeys(args.versions), key=version_key):
        python = environment(version, args.venvs, shlex.split(args.pip_args))
        if python is None:
            continue
        out = args.out_dir / f"torch-{version}"
        if (out / "sweep.json").exists():
            # a run from an earlier invocation: continue it (a complete one has nothing left)
            print(f"[torch {version}] continuing the run in {out}", flush=True)
            cmd = [str(python), "-m", "bench", "run", "--resume", str(out), "--quiet"]
        else:
            print(f"[torch {version}] running the sweep into {out}", flush=True)
            cmd = [str(python), "-m", "bench", "run", "--out-dir", str(out),
                   *shlex.split(args.run_args)]
        status = subprocess.run(cmd, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}).returncode
        # 1: some configurations recorded an error or a non-finite loss; the rest compare
        if status not in (0, 1):
            print(f"[torch {version}] the sweep did not complete (exit {status}); left out",
                  file=sys.stderr)
            continue
        runs.append((version, python, out))

    if len(runs) < 2:
        print("error: fewer than two torch versions ran; nothing to compare", file=sys.stderr)
        return 2
    (_, python, baseline), candidates = runs[0], [out for _, _, out in runs[1:]]
    page = args.out_dir / "compare.html"
    cmd = [str(python), "-m", "bench", "compare", str(baseline), *map(str, candidates),
           "--out", str(page)]
    status = subprocess.run(cmd, cwd=PROJECT_ROOT).returncode
    print(f"Comparison across torch {', '.join(v for v, _, _ in runs)}: {page}")
    return status


if __name__ == "__main__":
    sys.exit(main())
