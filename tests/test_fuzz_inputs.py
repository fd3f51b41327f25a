"""Every file the harness reads is untrusted. Each file kind is damaged in --fuzz-cases
seeded ways (tests/damage.py; 60 unless told, seeds 0 to 59 every time) and handed to the commands that read it, through the same entry point
as `python -m bench`: no exception may escape, the exit code is 0, 1 or 2, a refusal is one
line, and the damaged file is left as it was (a resume may take back what looks like a
crash, and must then leave a complete run)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from bench.analyze.reader import load_run
from bench.cli import main
from bench.schema import ENV_FILE, RESULTS_FILE, SAMPLES_FILE, SWEEP_FILE
from bench.seal import DIGEST_KEY, seal
from bench.sweep.config import load_sweep
from bench.sweep.loop import run_sweep
from tests import damage

pytestmark = pytest.mark.slow

TINY_SWEEP = '''scenarios = ["sequential"]
sizes = ["seed"]
batch_sizes = [2, 4]
devices = ["cpu"]
optimizer_setups = ["separate", "single"]
optimizers = ["sgd"]
optimizer_impls = ["loop"]
threads = 1

[timing]
warmup_iters = 1
warmup_s = 0
min_samples = 3
max_samples = 6
budget_s = 0
min_rounds = 2
'''


def invoke(*argv: str) -> tuple[int, str]:
    """``python -m bench ARGV`` in this process: the exit code and what went to stderr. An
    exception that escapes is a traceback a user would have seen."""
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def resume(folder: Path) -> tuple[int, str]:
    """``run --resume`` on a damaged copy. Without its page: the page is the report
    command's, which every case runs on the same damage already, and writing it again after
    each resume that goes through was most of what the cases cost."""
    return invoke("run", "--resume", folder, "--quiet", "--no-report")


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@pytest.fixture(scope="session")
def cases(request) -> int:
    """Seeded damages per file kind (--fuzz-cases, at least 30: tests/conftest.py)."""
    return request.config.getoption("--fuzz-cases")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two complete runs of a tiny sweep, the second to compare the first against."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "tiny.toml").write_text(TINY_SWEEP)
    for name in ("base", "other"):
        outcome = run_sweep(load_sweep(root / "tiny.toml"), root / name, progress=False,
                            stream=io.StringIO())
        assert outcome.complete
    # recorded busy whatever this machine is doing, so that what a busy start adds to the
    # summary is always among what the damage reaches
    env_path = root / "base" / ENV_FILE
    env = json.loads(env_path.read_text())
    env["machine_load"] = {**(env.get("machine_load") or {}), "busy": True, "others_share": 0.5}
    env_path.write_text(json.dumps(seal(env), indent=2))  # as such a run would record it
    return root


class Defects:
    """What the commands did wrong, case by case: collected, then reported together, with
    how many cases found at least one."""

    def __init__(self):
        self.found: list[tuple[str, str]] = []
        self.cases = 0
        self.exits: Counter = Counter()  # (command, exit code): what the damage led to
        self.last_error = ""  # the last command's stderr

    def add(self, case: str, problem: str) -> None:
        self.found.append((case, f"{case}: {problem}"[:300]))

    def check(self, case: str, command: str, damaged: Path, call) -> int | None:
        before = digest(damaged)
        try:
            code, err = call()
        except BaseException as exc:  # SystemExit included: the user would see it raw
            self.add(case, f"{command} raised {type(exc).__name__}: {exc}")
            return None
        self.exits[command, code] += 1
        self.last_error = err
        lines = err.strip().splitlines()
        if code not in (0, 1, 2):
            self.add(case, f"{command} exited {code}")
        elif code == 2 and (len(lines) != 1 or not lines[0].startswith("error: ")):
            self.add(case, f"{command} exited 2 with {len(lines)} lines: {err!r:.200}")
        if code != 0 and digest(damaged) != before:
            self.add(case, f"{command} refused and still changed {damaged.name}")
        return code

    def assert_none(self, *commands: str, accepted: bool = True):
        """No defect; and the damage exercised both sides of every command, refusal and
        (where a damage can leave a file valid) acceptance, or the fuzz proved little."""
        cases = len({case for case, _ in self.found})
        assert not self.found, (f"{len(self.found)} defects in {cases} of {self.cases} cases:\n"
                                + "\n".join(text for _, text in self.found[:25]))
        for command in commands:
            assert self.exits[command, 2] >= self.cases // 10, self.exits
            if accepted:
                assert self.exits[command, 0] >= 1, self.exits


def damaged_copy(runs: Path, tmp_path: Path, name: str, kinds, seed: int) -> tuple[Path, str]:
    folder = tmp_path / f"case{seed}"
    shutil.copytree(runs / "base", folder)
    path = folder / name
    data, what = damage.damage(path.read_bytes(), kinds, seed)
    path.write_bytes(data)
    return folder, what


def resumed_run_is_whole(folder: Path) -> str | None:
    """After a resume that went through: every configuration of the sweep has all its
    rows, and each measured one its samples."""
    try:
        run = load_run(folder)
        samples = run.samples()
    except Exception as exc:
        return f"the resumed run does not read back: {exc}"
    rows = run.results
    if len(rows) != 4 * 4 or rows.groupby("config_id").size().ne(4).any():
        return f"the resumed run has {len(rows)} rows, not 16"
    measured = set(rows.loc[rows.status == "ok", "config_id"])
    if measured - set(samples.config_id):
        return "a measured configuration has no samples after the resume"
    return None


CSV_COMMANDS = ("report", "compare", "resume")


@pytest.mark.parametrize("name", [RESULTS_FILE, SAMPLES_FILE])
def test_damaged_csv(cases, runs, tmp_path, name):
    defects = Defects()
    for seed in range(cases):
        folder, what = damaged_copy(runs, tmp_path, name, damage.CSV_DAMAGES, seed)
        case = f"{name} seed {seed} ({what})"
        defects.cases += 1
        path = folder / name
        defects.check(case, "report", path,
                      lambda: invoke("report", folder, "--out", tmp_path / "r.html"))
        defects.check(case, "compare", path,
                      lambda: invoke("compare", folder, runs / "other",
                                     "--out", tmp_path / "c.html"))
        code = defects.check(case, "run --resume", path,
                             lambda: resume(folder))
        if code == 0:
            problem = resumed_run_is_whole(folder)
            if problem:
                defects.add(case, problem)
        shutil.rmtree(folder)
    defects.assert_none("report", "compare", "run --resume")


def env_kept(damaged: bytes, after: bytes) -> str | None:
    """Whether a resume that went through kept what env.json held, adding only itself."""
    try:
        before = json.loads(damaged)
    except ValueError:
        return f"the resume replaced the damaged {ENV_FILE} instead of refusing it"
    env = json.loads(after)
    if not isinstance(before, dict) or not isinstance(env.get("resumes"), list):
        return f"the resume replaced the damaged {ENV_FILE} instead of refusing it"
    env["resumes"].pop()
    if not env["resumes"] and "resumes" not in before:
        del env["resumes"]
    for record in (env, before):  # the seal follows the contents: it is not one of them
        record.pop(DIGEST_KEY, None)
    same = json.dumps(env, sort_keys=True) == json.dumps(before, sort_keys=True)  # NaN too
    return None if same else f"the resume changed what {ENV_FILE} held"


def test_damaged_env_record(cases, runs, tmp_path):
    defects = Defects()
    for seed in range(cases):
        folder, what = damaged_copy(runs, tmp_path, ENV_FILE, damage.JSON_DAMAGES, seed)
        case = f"{ENV_FILE} seed {seed} ({what})"
        defects.cases += 1
        path = folder / ENV_FILE
        damaged_text = path.read_bytes()
        defects.check(case, "report", path,
                      lambda: invoke("report", folder, "--out", tmp_path / "r.html"))
        defects.check(case, "compare", path,
                      lambda: invoke("compare", runs / "other", folder,
                                     "--out", tmp_path / "c.html"))
        code = defects.check(case, "run --resume", path,
                             lambda: resume(folder))
        if code == 0:  # the resume is added to the record; nothing else of it may change
            problem = env_kept(damaged_text, path.read_bytes())
            if problem:
                defects.add(case, problem)
        shutil.rmtree(folder)
    # and one damage that keeps what the digest covers (the file laid out anew): which of
    # the random ones do depends on what this machine records, so this one is certain
    folder = tmp_path / "laid-out-anew"
    shutil.copytree(runs / "base", folder)
    path = folder / ENV_FILE
    path.write_text(json.dumps(json.loads(path.read_text()), indent=7, sort_keys=True))
    defects.cases += 1
    for command, call in (("report", lambda: invoke("report", folder, "--out",
                                                      tmp_path / "r.html")),
                          ("run --resume", lambda: resume(folder))):
        assert defects.check("env.json laid out anew", command, path, call) == 0, \
            defects.last_error
    defects.assert_none("report", "compare", "run --resume")


def test_damaged_sweep_record(cases, runs, tmp_path):
    defects = Defects()
    for seed in range(cases):
        folder, what = damaged_copy(runs, tmp_path, SWEEP_FILE, damage.JSON_DAMAGES, seed)
        case = f"{SWEEP_FILE} seed {seed} ({what})"
        defects.cases += 1
        path = folder / SWEEP_FILE
        defects.check(case, "report", path,
                      lambda: invoke("report", folder, "--out", tmp_path / "r.html"))
        before = digest(path)
        code = defects.check(case, "run --resume", path,
                             lambda: resume(folder))
        if code == 0 and digest(path) != before:
            defects.add(case, f"the resume rewrote {SWEEP_FILE}")
        shutil.rmtree(folder)
    # and one damage that keeps what the seal covers (the file laid out anew), which a
    # resume must take: the random ones that do are too rare to count on
    folder = tmp_path / "laid-out-anew"
    shutil.copytree(runs / "base", folder)
    path = folder / SWEEP_FILE
    path.write_text(json.dumps(json.loads(path.read_text()), indent=7, sort_keys=True))
    defects.cases += 1
    before = digest(path)
    assert defects.check("sweep.json laid out anew", "run --resume", path,
                         lambda: resume(folder)) == 0, \
        defects.last_error
    if digest(path) != before:
        defects.add("sweep.json laid out anew", f"the resume rewrote {SWEEP_FILE}")
    defects.assert_none("report", "run --resume")


def test_damaged_sweep_file(cases, runs, tmp_path):
    """A sweep file that still reads as a sweep goes on to the run folder, which cannot be
    made here (its parent is a file): nothing is measured either way."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    defects = Defects()
    reached_folder = 0  # sweeps the damage left valid: refused only for their folder
    pristine = (runs / "tiny.toml").read_bytes()
    for seed in range(cases):
        path = tmp_path / f"sweep{seed}.toml"
        data, what = damage.damage(pristine, damage.TOML_DAMAGES, seed)
        path.write_bytes(data)
        case = f"sweep file seed {seed} ({what})"
        defects.cases += 1
        code = defects.check(case, "run --sweep", path,
                             lambda: invoke("run", "--sweep", path, "--out-dir", blocked / "run",
                                            "--quiet"))
        reached_folder += f"--out-dir {blocked / 'run'}" in defects.last_error
        if code not in (None, 2):
            defects.add(case, f"run --sweep exited {code} with no folder to write")
        path.unlink()
    defects.assert_none()
    assert reached_folder >= 1 and cases - reached_folder >= cases // 10


def test_damaged_suite_json(cases, saved_suite_run, tmp_path):
    defects = Defects()
    pristine = saved_suite_run.read_bytes()
    for seed in range(cases):
        path = tmp_path / f"saved{seed}.json"
        data, what = damage.damage(pristine, damage.JSON_DAMAGES, seed)
        path.write_bytes(data)
        out = tmp_path / f"imported{seed}"
        case = f"suite JSON seed {seed} ({what})"
        defects.cases += 1
        code = defects.check(case, "import-pytest-benchmark", path,
                             lambda: invoke("import-pytest-benchmark", path, "--out-dir", out))
        if code == 0:
            try:
                load_run(out).samples()
            except Exception as exc:
                defects.add(case, f"the imported run does not read back: {exc}")
        elif out.exists():
            defects.add(case, f"a refused import left {out}")
        shutil.rmtree(out, ignore_errors=True)
        path.unlink()
    defects.assert_none("import-pytest-benchmark")
