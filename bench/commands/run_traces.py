"""``run --trace``: once the sweep is measured, profiler traces of what it measured."""

from __future__ import annotations

from bench.axes import config_id
from bench.schema import OK
from bench.sweep.config import sweep_from_mapping
from bench.sweep.loop import RunOutcome


def trace_measured(outcome: RunOutcome) -> None:
    """Traces of the configurations this call measured (its workers', where it had them),
    after all of them were timed."""
    from bench.sweep.traces import trace_into  # torch.profiler only where asked for

    specs = [r.spec for r in outcome.results if r.status == OK] or measured_specs(outcome)
    for path in trace_into(outcome.out_dir, specs):
        print(f"Trace: {path}")


def measured_specs(outcome: RunOutcome) -> list:
    """The configurations measured on disk, as the run's sweep expands them here."""
    from bench.sweep.config import expand
    run = outcome.read()
    config = sweep_from_mapping(run.sweep["sweep"], f"{outcome.out_dir}/sweep.json")
    measured = set(run.results.loc[run.results["status"] == OK, "config_id"])
    return [spec for spec in expand(config) if config_id(spec) in measured]
