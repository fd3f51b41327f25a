"""What ``python -m bench run`` does once its sweep has stopped: the summary, ratios.csv,
the report and the history store for a complete run, and the command that continues an
unfinished one.

A Ctrl-C here (the sweep's own handlers are gone by then) stops the report or the store's
add, never what was measured: the run folder is complete on disk, and the line printed
names the commands that finish the rest.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
from pathlib import Path

import pandas as pd

from bench.analyze.ratios import paired_ratios
from bench.analyze.reader import Run
from bench.atomic import write_text_atomic
from bench.errors import UsageError
from bench.present.summary import format_summary
from bench.schema import RATIOS_FILE
from bench.sweep.failures import FAILURES
from bench.sweep.interrupt import checkpoint, exit_code, stop_at_checkpoints
from bench.sweep.loop import RunOutcome


def write_run_report(out_dir: Path) -> None:
    """The run's report.html; a machine without plotly still keeps its results."""
    try:
        from bench.analyze.reader import load_run
        from bench.present.report_page import write_report
    except ImportError as exc:
        print(f"No report: {exc.name} is not installed (`pip install -e .` installs it); "
              f"`python -m bench report {out_dir}` writes it later")
        return
    try:
        page = write_report([load_run(out_dir)], out_dir / "report.html")
    except UsageError as exc:  # nothing measured to report on; the run itself is complete
        print(f"No report: {exc}")
    except OSError as exc:  # a full disk, say: the results are written, only the page is not
        print(f"No report: cannot write {out_dir / 'report.html'}: {exc.strerror or exc}; "
              f"`python -m bench report {out_dir}` writes it later")
    else:
        print(f"Report: {page}")


def write_ratios(run: Run) -> pd.DataFrame:
    """ratios.csv, derived from the run's rows and samples: written whole after every
    invocation, so a resumed run's pairs those of every process."""
    ratios = paired_ratios(run)
    try:
        write_text_atomic(run.path / RATIOS_FILE, ratios.to_csv(index=False))
    except OSError as exc:  # a full disk: the results stay; the ratios are printed below
        print(f"note: cannot write {run.path / RATIOS_FILE}: {exc.strerror or exc}",
              file=sys.stderr)
    return ratios


def add_to_history(out_dir: Path, store: str) -> bool:
    """A complete run into the history store (checked before the sweep by ``check_store``);
    whether it went in. A store that fails now (taken away during the sweep) is said on
    stderr and changes nothing else: the run folder is written whatever becomes of the
    store, and `python -m bench history add` adds it later."""
    try:
        from bench.history.add import add_run
        from bench.history.store import open_store
        with open_store(store, write=True) as history:
            outcome = add_run(history, out_dir)
        print(f"History: {outcome.run_id} {outcome.what} in {history.name}")
        return True
    except (UsageError, ImportError) as exc:
        checkpoint()  # a statement a signal cancelled: the stop is said, not its error
        # a run the store holds otherwise stays so: a later add could only be refused again
        later = "" if getattr(exc, "final", False) else \
            f"; `python -m bench history add {out_dir} --store ...` adds it later"
        print(f"error: not added to the history store: {exc}{later}", file=sys.stderr)
        return False


def resume_command(out_dir: Path, loads: list[str], resume: str | None,
                   history: str | None) -> str:
    """How to continue an unfinished run: ``resume`` (a --distributed run's words) or
    `python -m bench run --resume DIR` with the run's ``history`` store, whose resume adds
    the run; and, on a line of its own, where to give the store's password."""
    store, note = history_words(history)
    if resume is None:
        command = [python_word(), "-m", "bench"]
        for path in loads:
            command += ["--load", path]
        resume = (f"to continue: {schema_words(history)}"
                  f"{shlex.join([*command, 'run', '--resume', str(out_dir), *store])}")
    return resume + (f"\nnote: {note}" if note else "")


def python_word() -> str:
    """The interpreter that ran this, named as `python` where that is what a shell finds."""
    return "python" if shutil.which("python") == sys.executable else sys.executable


def schema_words(history: str | None) -> str:
    """``BENCH_HISTORY_SCHEMA=NAME `` where the store's schema was chosen so (``run`` has no
    option for it), so that the resumed run goes into the same schema."""
    from bench.history.store import SCHEMA_VAR
    schema = os.environ.get(SCHEMA_VAR) if history else None
    return f"{SCHEMA_VAR}={shlex.quote(schema)} " if schema else ""


def history_words(history: str | None) -> tuple[list[str], str]:
    """``--history STORE`` for a resume command, the store named without its password, and
    a note saying where to give the password when its URL held one."""
    if not history:
        return [], ""
    from bench.history.location import locate
    location = locate(history)  # checked before the sweep (check_store): it locates
    note = "" if not location.secrets else ("the store's password is left out of that "
                                            "command: give it in PGPASSWORD, or give the "
                                            "URL with it again")
    return ["--history", location.name], note


def finish(outcome: RunOutcome, loads: list[str], resume: str | None = None,
           history: str | None = None, report: bool = True) -> int:
    """The summary, where the results are, the report of a complete run (unless not
    ``report``) or how to resume an unfinished one (``resume`` says how, where it is not
    ``python -m bench run --resume``), the complete run added to the ``history`` store where
    one is given; the exit code."""
    try:
        with stop_at_checkpoints():  # a signal stops it between steps, never inside one
            return _finish(outcome, loads, resume, history, report)
    except KeyboardInterrupt as stop:
        print(f"interrupted: {what_is_left(outcome, loads, resume, history, report)}",
              file=sys.stderr)
        return exit_code(getattr(stop, "signum", signal.SIGINT))


def what_is_left(outcome: RunOutcome, loads: list[str], resume: str | None,
                 history: str | None, report: bool = True) -> str:
    """The commands that finish what a Ctrl-C after the sweep left undone."""
    if not outcome.complete:
        return (f"{outcome.pending} configuration(s) not measured yet; "
                f"{resume_command(outcome.out_dir, loads, resume, history)}")
    folder, bench = shlex.quote(str(outcome.out_dir)), f"{shlex.quote(python_word())} -m bench"
    left = f"the run in {outcome.out_dir} is complete"
    if report:
        left += f"; `{bench} report {folder}` writes its page"
    if not history:
        return left
    store, note = history_words(history)
    # an add that was cut short left the store as it was; one that had finished is
    # taken again as the same run, and nothing changes
    joined = ", and" if report else ";"
    return (f"{left}{joined} `{schema_words(history)}{bench} history add {folder} --store "
            f"{shlex.quote(store[1])}` adds it to the store, if it is not there yet"
            + (f"\nnote: {note}" if note else ""))


def _finish(outcome: RunOutcome, loads: list[str], resume: str | None, history: str | None,
            report: bool) -> int:
    run = outcome.read()  # read back, as a resume and the report read it
    results, ratios = run.results, write_ratios(run)
    print()
    print(format_summary(results, ratios, run.env))
    print()
    print(f"Results: {outcome.out_dir}/results.csv (samples.csv, {RATIOS_FILE} and env.json "
          "beside it)")
    stored = True
    if outcome.complete:  # else the resume that completes the run writes it
        if report:
            write_run_report(outcome.out_dir)
        checkpoint()
        if history:  # a run is added whole, once: an unfinished one waits for its resume
            stored = add_to_history(outcome.out_dir, history)
    if outcome.write_error is not None:
        print(f"error: {outcome.write_error}", file=sys.stderr)
    if outcome.failed_fast is not None:
        failed = outcome.failed_fast
        print(f"Stopped at the first failure (--fail-fast): {failed.status}: {failed.error}",
              file=sys.stderr)
    if not outcome.complete:
        print(f"{outcome.pending} configuration(s) not measured yet; "
              f"{resume_command(outcome.out_dir, loads, resume, history)}", file=sys.stderr)
    if outcome.signum is not None:
        return exit_code(outcome.signum)
    failed = (outcome.write_error is not None or not stored
              or results["status"].isin(FAILURES).any())
    return 1 if failed else 0
