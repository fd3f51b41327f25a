"""``python -m bench paired``: environments measured in interleaved rounds, compared round by
round (``python -m bench paired-rounds`` runs the rounds; ``bench/analyze/paired_rounds.py``
judges them)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from bench.analyze.paired_rounds import compare_paired
from bench.analyze.plans import MAX_ROUNDS
from bench.analyze.reader import Run, load_run
from bench.analyze.run_files import check_one_run, one_run_id, shared_run_ids
from bench.atomic import write_json_atomic
from bench.analyze.judge import DEFAULT_THRESHOLD, NOT_JUDGED, OPEN, REGRESSION
from bench.cli import percent, user_path
from bench.commands.report import write_html
from bench.errors import UsageError
from bench.history.record import left_to_measure, workers_of
from bench.output_path import check_output
from bench.schema import ONLY_KEY, PLAN_KEY, RESULTS_FILE
from bench.present.paired_page import paired_sections, paired_terminal


def add_parser(sub) -> None:
    p = sub.add_parser(
        "paired", help="compare environments measured in interleaved rounds",
        description="Each folder holds one environment's rounds (round-01, round-02, ...); "
        "round i of the baseline pairs with round i of each candidate, measured side by "
        "side (a round one side lacks pairs with nothing). A change must hold across the "
        "rounds to be called one; the rounds need their results.csv, not their samples.")
    p.add_argument("baseline", type=user_path, metavar="BASELINE_ROUNDS",
                   help="folder of the baseline's rounds")
    p.add_argument("candidates", type=user_path, nargs="+", metavar="CANDIDATE_ROUNDS",
                   help="folders of the candidates' rounds")
    p.add_argument("--rounds", type=int, help="pair only rounds 1 to N")
    p.add_argument("--threshold", type=percent, default=DEFAULT_THRESHOLD, metavar="PCT",
                   help=f"smallest change that counts, in percent (default "
                   f"{DEFAULT_THRESHOLD * 100:g})")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit with 1 when any regression is found")
    p.add_argument("--out", type=user_path, help="the HTML page (default: paired.html beside the "
                   "baseline's folder)")
    p.add_argument("--decisions", type=user_path, metavar="FILE",
                   help="write where the comparison stands as JSON (measurements decided, "
                   "the configurations still undecided, the rounds likely to decide them) "
                   "instead of the page: what the paired rounds read after each round")
    p.set_defaults(main=main)


def rounds_in(folder: Path, count: int | None) -> dict[int, Run]:
    """The runs of ``folder``'s round-NN subfolders by round number (only rounds 1 to
    ``count`` where given): round i pairs with the other side's round i, the one that ran
    beside it. A round without results is one that was interrupted: it is refused, with
    how to finish it, rather than left out without a word."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder of rounds")
    # Round-03 as well: a folder named almost as a round is refused below, not passed over
    paths = [p for p in folder.iterdir() if p.is_dir() and p.name.lower().startswith("round-")]
    if not paths:
        raise UsageError(f"{folder} holds no round-* folder; `python -m bench paired-rounds` "
                         "writes them")
    numbers = {}
    for path in paths:
        match = re.fullmatch(r"round-([0-9]+)", path.name)  # \d is any script's digit
        if match is None:
            raise UsageError(f"{path} is not a round's folder: rounds are named round-NN, "
                             "as `python -m bench paired-rounds` names them")
        number = int(match.group(1))
        if number in numbers:  # round-3 and round-03: which ran beside the other side's?
            raise UsageError(f"{numbers[number]} and {path} are both round {number}; keep "
                             "the one that ran in that round")
        numbers[number] = path
    runs = {}
    for number, path in sorted(numbers.items()):
        if count is not None and number > count:
            continue
        if not (path / RESULTS_FILE).is_file():
            raise UsageError(f"{path} holds no {RESULTS_FILE}: an unfinished round; run the "
                             "same `python -m bench paired-rounds` command again to finish it, "
                             "or pair only the rounds before it with --rounds")
        runs[number] = load_run(path)
        # a round is one run: no other's rows in it, nor another's results beside its files
        check_one_run(path, one_run_id(path, runs[number].results), runs[number].env,
                      runs[number].sweep)
    check_one_plan(folder, runs)
    return runs


def unfinished_note(folder: Path, runs: dict[int, Run]) -> str | None:
    """The rounds whose sweep stopped part way (a crash, a kill): their measured
    configurations pair, and the rest have no partner; said, not passed over. (A sweep that
    fails the same way in every round could never finish one, so they are not refused.)"""
    short = []
    for number, run in runs.items():
        missing, wanted = left_to_measure(run.path, run.results, run.sweep, workers_of(run.env))
        if missing:
            short.append(f"round {number} ({missing} of {wanted} not measured)")
    if not short:
        return None
    return (f"note: {folder} has unfinished rounds, whose measured configurations alone "
            f"pair: {', '.join(short)}; the same `python -m bench paired-rounds` command "
            "finishes an interrupted one")


def check_one_plan(folder: Path, runs: dict[int, Run]) -> None:
    """Every round of one side measured the same sweep: a round of another (a folder put
    there by hand) would pair only where its configurations happen to meet. A round given
    `only` (from the third on, the configurations still undecided) measures a part of it."""
    whole, part = {}, {}
    for number, run in runs.items():
        sweep = run.sweep or {}
        plan = set(sweep.get(PLAN_KEY) or [])
        (part if (sweep.get("sweep") or {}).get(ONLY_KEY) else whole)[number] = plan
    if not whole:
        return
    first = next(iter(whole))
    for number, plan in sorted({**whole, **part}.items()):
        same = plan <= whole[first] if number in part else plan == whole[first]
        if not same:
            raise UsageError(f"{folder}: round {number} measured another sweep than round "
                             f"{first} ({len(plan)} configurations planned, not "
                             f"{len(whole[first])}): a side's rounds are one sweep measured "
                             "again")


# Two sides taking turns run at once, each started as soon as the other: rounds further
# apart than this (an interpreter's start-up on a loaded machine, and more) did not
APART_S = 120.0


def turns_seed(run: Run):
    """The seed of the order its groups ran in, which the paired tool hands both sides of a
    round alike; None for a run that took no turns (one made on its own)."""
    turns = run.env.get("took_turns") if isinstance(run.env, dict) else None
    return turns.get("groups_order_seed") if isinstance(turns, dict) else None


def time_span(run: Run) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    starts = pd.to_datetime(run.results["started_at"], utc=True, errors="coerce").dropna()
    return (starts.min(), starts.max()) if len(starts) else None


def apart(baseline: dict[int, Run], candidate: dict[int, Run]) -> dict[int, str]:
    """The rounds of one number that did not run side by side, and why: a round of another
    measurement, or one swapped with another, put in the folder by hand. Their turn seeds
    differ (or one side took no turns), or, both taking turns, they did not run at once.
    (Rounds neither of which took turns, under --one-at-a-time, ran one after the other.)"""
    found = {}
    for number in sorted(baseline.keys() & candidate.keys()):
        seeds = [turns_seed(baseline[number]), turns_seed(candidate[number])]
        if seeds[0] != seeds[1]:
            found[number] = "their turns' seeds differ" if None not in seeds else \
                "one of them took no turns"
            continue
        if seeds[0] is None:  # neither took turns: one after the other, as --one-at-a-time
            continue
        spans = [time_span(baseline[number]), time_span(candidate[number])]
        if None in spans:
            continue
        (a0, a1), (b0, b1) = spans
        gap = max(a0, b0) - min(a1, b1)  # negative where they overlap
        if gap.total_seconds() > APART_S:
            found[number] = f"they started {gap.total_seconds() / 60:.0f} minutes apart"
    return found


def apart_note(folders: tuple[Path, Path], rounds: dict[int, str]) -> str | None:
    if not rounds:
        return None
    said = "; ".join(f"round {n}: {why}" for n, why in rounds.items())
    return (f"note: {span_words(sorted(rounds))} of {folders[0]} and {folders[1]} did not "
            f"run side by side ({said}) and {'is' if len(rounds) == 1 else 'are'} left out")


def check_folders_once(folders: list[Path]) -> None:
    """Refuse a folder given twice: the same candidate compared twice is one comparison
    printed twice, with its multiple-comparison correction counted twice."""
    seen: dict[Path, Path] = {}
    for folder in folders:
        key = folder.resolve()
        if key in seen:
            raise UsageError(f"{folder} is given twice (as {seen[key]} before): name each "
                             "environment's rounds once")
        seen[key] = folder


def check_distinct(baseline: list, candidate: list, folders: tuple[Path, Path]) -> None:
    """Refuse a candidate that holds the baseline's own runs (the same folder, or a copy):
    its ratios would all be 1 by construction, not by measurement."""
    shared = shared_run_ids(baseline, candidate)
    if shared:
        raise UsageError(f"{folders[1]} holds the same runs as {folders[0]} (run {shared[0]}"
                         f"{f' and {len(shared) - 1} more' if len(shared) > 1 else ''}): "
                         "compare rounds measured in two environments")


def check_pairs(baseline: Path, candidate: Path, shared: set[int]) -> None:
    """Refuse sides that share fewer than two round numbers: one pair has no spread to
    judge it by, and its interval would be nothing but NaN."""
    if len(shared) < 2:
        held = f"only {span_words(sorted(shared))}" if shared else "no round"
        raise UsageError(f"{baseline} and {candidate} have {held} in common: pairing needs "
                         "at least 2 rounds measured side by side; run the same "
                         "`python -m bench paired-rounds` command again to measure more")


def unpaired_note(folders: tuple[Path, Path], numbers: tuple[set[int], set[int]]) -> str | None:
    """What is left out where a round of one side has no partner on the other."""
    alone = [sorted(numbers[0] - numbers[1]), sorted(numbers[1] - numbers[0])]
    if not any(alone):
        return None
    parts = [f"{span_words(rounds)} of {folder}" for folder, rounds in zip(folders, alone)
             if rounds]
    verb = "has no partner and is" if sum(map(len, alone)) == 1 else \
        "have no partner and are"
    return (f"note: {folders[0]} has {len(numbers[0])} rounds, the other side "
            f"{len(numbers[1])}: {' and '.join(parts)} {verb} left out")


def span_words(rounds: list[int]) -> str:
    """[7, 8, 10] -> 'rounds 7 to 8, 10'; [3] -> 'round 3'."""
    spans: list[list[int]] = []
    for number in rounds:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    words = ", ".join(f"{a} to {b}" if a != b else f"{a}" for a, b in spans)
    return f"round {words}" if len(rounds) == 1 else f"rounds {words}"


def standing(tables: list, rounds: int) -> dict:
    """Where the rounds stand: every candidate's measurements, decided or not, the
    config_ids still undecided (on any candidate), and the rounds the slowest of them
    likely needs (the rounds' cap at most)."""
    both = pd.concat(tables, ignore_index=True)
    open_ = both[both["verdict"].isin([OPEN, NOT_JUDGED])]
    needed = open_["rounds_to_decide"].dropna()
    return {"rounds": rounds, "measurements": len(both), "decided": len(both) - len(open_),
            "undecided_configs": sorted(set(open_["config_id"].dropna())),
            "rounds_to_decide": (int(min(needed.max(), MAX_ROUNDS)) if len(needed)
                                 else None)}


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if args.rounds is not None and args.rounds < 2:
        raise UsageError(f"--rounds must be at least 2 to pair, got {args.rounds}")
    for option, path in (("--out", args.out), ("--decisions", args.decisions)):
        if path is not None:
            check_output(path, option, inputs=[args.baseline, *args.candidates],
                         may_replace=("paired.html", "decisions.json"))
    check_folders_once([args.baseline, *args.candidates])
    baseline = rounds_in(args.baseline, args.rounds)
    names = [args.baseline.name, *(c.name for c in args.candidates)]
    tables, notes = [], [unfinished_note(args.baseline, baseline)]
    for folder in args.candidates:
        candidate = rounds_in(folder, args.rounds)
        notes.append(unfinished_note(folder, candidate))
        check_distinct(list(baseline.values()), list(candidate.values()), (args.baseline, folder))
        notes.append(unpaired_note((args.baseline, folder), (set(baseline), set(candidate))))
        left_out = apart(baseline, candidate)
        notes.append(apart_note((args.baseline, folder), left_out))
        kept = {n: run for n, run in baseline.items() if n not in left_out}
        check_pairs(args.baseline, folder, set(kept) & set(candidate))
        tables.append(compare_paired(kept, {n: run for n, run in candidate.items()
                                            if n not in left_out}, args.threshold))
    if args.decisions is not None:  # the rounds every candidate paired, and those it could not
        paired = min(table.attrs.get("rounds", len(baseline)) for table in tables)
        write_json_atomic(args.decisions, {**standing(tables, paired),
                                           "notes": [n for n in notes if n]})
        return 0
    for note in filter(None, notes):
        print(note)
    print(paired_terminal(names, tables, args.threshold))
    intro, sections = paired_sections(names, tables, args.threshold)
    path = write_html(args.out or args.baseline.resolve().parent / "paired.html",
                      f"multinet-bench paired comparison: {', '.join(names[1:])} against "
                      f"{names[0]}", sections, intro)
    print(f"\nPaired comparison page: {path}")
    # a change of everything at once is the common shift's verdict, one for the comparison
    regressions = sum(int((t["verdict"] == REGRESSION).sum())
                      + ((t.attrs.get("common_shift") or {}).get("verdict") == REGRESSION)
                      for t in tables)
    return 1 if regressions and args.fail_on_regression else 0
