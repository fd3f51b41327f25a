"""``verify``'s tables: gradient flow, setup equivalence, execution equivalence, and the joint
step against the reference loops. Each returns its lines and whether every check in it
held."""

from __future__ import annotations

from bench.axes import EXECUTION, OPTIMIZER, SCENARIO

SETUP_COLUMNS = ("separate", "single", "grouped")


def flow_table(results) -> tuple[list[str], bool]:
    lines = [f"{SCENARIO.name:<17} {'loss term':<19} {'reaches':<22} {'expected':<22} check"]
    ok_all = True
    for key in dict.fromkeys((r.scenario, r.term) for r in results):
        cells = [r for r in results if (r.scenario, r.term) == key]
        ok = all(c.ok for c in cells)
        ok_all &= ok
        reached = ", ".join(c.network for c in cells if c.observed) or "none"
        expected = ", ".join(c.network for c in cells if c.expected) or "none"
        lines.append(f"{key[0]:<17} {key[1]:<19} {reached:<22} {expected:<22} "
                     + ("ok" if ok else "FAILED"))
    return lines, ok_all


def _execution(r) -> str:
    return getattr(r, EXECUTION.name, EXECUTION.default)


def _grid(results, setups, cell) -> tuple[list[str], bool]:
    """One row per scenario (and execution, where one runs its networks otherwise),
    optimizer and implementation; one column per setup that was checked."""
    columns = [(SCENARIO.name, 18, lambda r: r.scenario),
               *([(EXECUTION.name, 11, _execution)]
                 if any(_execution(r) != EXECUTION.default for r in results) else []),
               (OPTIMIZER.name, 11, lambda r: r.optimizer),
               ("impl", 9, lambda r: r.optimizer_impl)]
    setups = [s for s in setups if any(r.setup == s for r in results)]
    lines = ["".join(f"{title:<{width}}" for title, width, _ in columns)
             + "".join(f"{s:<22}" for s in setups).rstrip()]
    ok_all = True
    rows: dict[tuple, dict] = {}
    for r in results:
        rows.setdefault(tuple(get(r) for _, _, get in columns), {})[r.setup] = r
    for key, cells in rows.items():
        text = []
        for setup in setups:
            r = cells[setup]
            ok_all &= r.ok
            text.append(f"{cell(r) + ('' if r.ok else ' FAILED'):<22}")
        lines.append(("".join(f"{k:<{w}}" for k, (_, w, _) in zip(key, columns))
                      + "".join(text)).rstrip())
    return lines, ok_all


def equivalence_table(results) -> tuple[list[str], bool]:
    """Each setup against ``separate``, which is not a column of its own."""
    return _grid(results, SETUP_COLUMNS[1:],
                 lambda r: "identical" if r.bitwise else f"max diff {r.max_abs_diff:.2e}")


def reference_table(results) -> tuple[list[str], bool]:
    """Every setup against the reference loop; each failure's first disagreement below."""
    lines, ok = _grid(results, SETUP_COLUMNS, lambda r: (
        "differs" if not r.ok else "identical" if r.max_abs_diff == 0
        else f"rel diff {r.max_rel_diff:.1e}"))
    failures = [r for r in results if not r.ok]
    if failures:
        lines.append("")
        lines += ["/".join([r.scenario, *([_execution(r)] if _execution(r) != EXECUTION.default
                                          else []), r.optimizer, r.optimizer_impl, r.setup])
                  + f": {r.mismatch}" for r in failures]
    return lines, ok


def execution_table(results) -> tuple[list[str], bool]:
    """Every setup with the networks run another way, against the same run one after the
    other."""
    return _grid(results, SETUP_COLUMNS, lambda r: (
        "identical" if r.bitwise else f"rel diff {r.max_rel_diff:.1e}"))
