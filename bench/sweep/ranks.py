"""One configuration measured on every rank of a data-parallel run, made into one result.

The ranks of a DDP step wait for each other in every all-reduce, so a step takes as long
as its slowest rank. Each phase's row therefore carries the statistics and samples of the
rank whose median of that phase is the highest (``slowest_rank``), and how far apart the
ranks were: their highest median over their lowest (``rank_spread``, 1 when they agree).
Memory, NVML and operator counts stay rank 0's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.measure.configuration import NONFINITE_ELSEWHERE
from bench.measure.result import ConfigResult
from bench.measure.timers import Timing
from bench.schema import OK, TIMED_PHASES


@dataclass
class RankResult:
    """What each rank sends rank 0 after a configuration."""

    rank: int
    status: str
    error: str
    timing: Timing | None


def rank_result(rank: int, result: ConfigResult) -> RankResult:
    return RankResult(rank, result.status, result.error, result.timing)


def merge_ranks(result: ConfigResult, ranks: list[RankResult], backend: str) -> ConfigResult:
    """Rank 0's ``result`` with the timing of every rank in ``ranks`` (in rank order) folded
    in: per phase the slowest rank's samples. A rank that did not measure makes the whole
    configuration unmeasured, with that rank's reason."""
    result.world_size, result.backend = len(ranks), backend
    failed = [r for r in ranks if r.status != OK]
    if failed:
        first = min(failed, key=lambda r: (r.error == NONFINITE_ELSEWHERE, r.rank))
        result.status, result.error = first.status, f"rank {first.rank}: {first.error}"
        result.timing, result.config_columns, result.phase_columns = None, {}, {}
        return result
    by_rank = {r.rank: r.timing for r in ranks}
    timings = list(by_rank.values())
    merged = Timing(clock=timings[0].clock, phases=timings[0].phases,
                    warmup_iters=timings[0].warmup_iters,
                    first_iter_s=max(t.first_iter_s for t in timings),
                    stop_reason=timings[0].stop_reason,
                    elapsed_s=max(t.elapsed_s for t in timings),
                    # the ranks run the same blocks; the most disturbed rank's are shown
                    cpu_share=list(max(timings, key=lambda t: t.disturbed_blocks).cpu_share))
    for phase in TIMED_PHASES:
        medians = {r.rank: r.timing.summary(phase).median for r in ranks
                   if r.timing.device_ms[phase]}
        if not medians:
            continue
        slowest = max(medians, key=medians.get)
        source = by_rank[slowest]
        merged.device_ms[phase] = list(source.device_ms[phase])
        merged.host_ms[phase] = list(source.host_ms[phase])
        merged.block[phase] = list(source.block[phase])
        lowest = min(medians.values())
        columns = result.phase_columns.setdefault(phase, {})
        columns["slowest_rank"] = slowest
        if lowest > 0:
            columns["rank_spread"] = medians[slowest] / lowest
    result.timing = merged
    return result
