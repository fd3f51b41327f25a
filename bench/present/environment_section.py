"""The Environment section of a report: what differs between the runs' env.json, what could
not be read on which run and why, and the fields side by side, those that differ first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.measure.unavailable import unavailable_in_words
from bench.present.labels import flatten_env
from bench.present.page import Table

# fields that differ between any two runs by construction: shown, never highlighted
ALWAYS_DIFFERENT = frozenset({"run_id", "started_at", "command_line"})
# the row of a run folder that holds no env.json at all (``flatten_env``)
WHOLE = "environment"


def differing_fields(envs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The flattened fields (`torch_version`, `packages.numpy`) whose text is not the same on
    every run, in the order of the files; a field one run lacks differs. None for one run.
    A run folder without an env.json is left out: its fields are unknown, not different."""
    flat = [flatten_env(env) for env in envs.values() if set(env) != {"unavailable"}]
    if len(flat) < 2:
        return []
    keys = dict.fromkeys(k for f in flat for k in f)
    return [k for k in keys if k not in ALWAYS_DIFFERENT
            and len({f.get(k, "-") for f in flat}) > 1]


def unreadable_fields(envs: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """(field, why in words, runs) for each field recorded as ``{"unavailable": ...}``, one
    entry per field and reason, in the order the fields first appear."""
    found: dict[tuple[str, str], list[str]] = {}
    for label, env in envs.items():
        items = [(WHOLE, env)] if set(env) == {"unavailable"} else env.items()
        for key, value in items:
            if isinstance(value, Mapping) and set(value) == {"unavailable"}:
                why = unavailable_in_words(value["unavailable"])
                found.setdefault((key, why), []).append(label)
    return [(key, why, runs) for (key, why), runs in found.items()]


def environment_sentence(envs: Mapping[str, Mapping[str, Any]]) -> str:
    """What differs between the runs, then what was not recorded where and why, in words;
    empty for one run that recorded every field."""
    parts = []
    if len(envs) > 1:
        differs = differing_fields(envs)
        parts.append("The runs differ in: " + ", ".join(differs) + "." if differs else
                     "The runs agree on every field (run ids, start times and command lines "
                     "aside).")
    unread = unreadable_fields(envs)
    if unread:
        parts.append("Not recorded: " + "; ".join(
            f"{key} on {', '.join(runs)} — {why}" for key, why, runs in unread) + ".")
    return " ".join(parts)


def env_table(envs: dict[str, dict]) -> list[str | Table]:
    """The blocks of the Environment section: the sentence of ``environment_sentence`` (when
    it has anything to say) and env.json of each run side by side, the fields that differ
    first and highlighted."""
    flat = {label: flatten_env(env) for label, env in envs.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    differs = set(differing_fields(envs))
    ordered = [k for k in keys if k in differs] + [k for k in keys if k not in differs]
    rows = [[key, *(flat[label].get(key, "-") for label in flat)] for key in ordered]
    classes = ["differs" if key in differs else "" for key in ordered]
    sentence = environment_sentence(envs)
    table = Table(["field", *flat], rows, row_classes=classes)
    return [sentence, table] if sentence else [table]


# readings of the moment a run started, not of its environment: they differ between any
# two runs of one environment
OF_THE_MOMENT = ("machine_load.", "took_turns.")


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs from one run's env.json to another's, a field a line: `threads: 2 -> 1`
    (`-` where a run lacks the field), leaving out what differs between any two runs."""
    flat = [flatten_env(before), flatten_env(after)]
    keys = dict.fromkeys([*flat[0], *flat[1]])
    return [f"{k}: {flat[0].get(k, '-')} -> {flat[1].get(k, '-')}" for k in keys
            if k not in ALWAYS_DIFFERENT and not k.startswith(OF_THE_MOMENT)
            and flat[0].get(k, "-") != flat[1].get(k, "-")]
