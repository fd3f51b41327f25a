import pytest

from bench.axes import BATCH_SIZE, DEVICE, SCENARIO
from bench.sweep.config import DEFAULT_SWEEP, expand, load_sweep, parse_list

MAX_BATCH_SIZE = BATCH_SIZE.maximum
from bench.errors import UsageError


def write(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


BASE = '''scenarios = ["sequential", "separate_losses"]
sizes = ["seed"]
batch_sizes = [1, 8]
devices = ["cpu"]
optimizer_setups = ["separate", "single", "grouped"]
optimizers = ["adam"]
optimizer_impls = ["auto", "loop"]
'''


def test_expansion_is_the_cartesian_product(tmp_path):
    config = load_sweep(write(tmp_path, BASE))
    specs = expand(config)
    # 2 scenarios x 2 batch sizes x 3 setups; `auto` resolves to `loop` on the CPU, so the
    # two implementations collapse into one
    assert len(specs) == 12
    assert {s.optimizer_impl for s in specs} == {"loop"}
    assert specs[0].scenario == "sequential" and specs[0].batch_size == 1
    assert {(s.scenario, s.batch_size, s.optimizer_setup) for s in specs} == {
        (a, b, c) for a in ("sequential", "separate_losses") for b in (1, 8)
        for c in ("separate", "single", "grouped")}


def test_command_line_overrides_the_file(tmp_path):
    config = load_sweep(write(tmp_path, BASE + "[timing]\nbudget_s = 3\n"),
                        {"batch_sizes": [4], "repeats": 2}, {"min_samples": 5})
    assert config.values(BATCH_SIZE) == (4,) and config.repeats == 2
    assert config.timing.budget_s == 3 and config.timing.min_samples == 5


def test_default_sweep_loads():
    config = load_sweep(DEFAULT_SWEEP)
    assert config.values(DEVICE) == ("auto",)
    assert set(config.values(SCENARIO)) == {"sequential", "shared_input", "separate_losses"}


def test_duplicates_are_dropped_with_a_notice(tmp_path):
    config = load_sweep(write(tmp_path, BASE), {"batch_sizes": [8, 8, 1]})
    assert config.values(BATCH_SIZE) == (8, 1)
    assert config.notices == ("command line: duplicate values in 'batch_sizes' dropped",)


@pytest.mark.parametrize("text, message", [
    (BASE + "colour = 1\n", "unknown key 'colour'"),
    (BASE + "[timing]\nspeed = 1\n", "unknown key 'speed' in [timing]"),
    (BASE + "[timing]\nmin_samples = 'ten'\n", "timing 'min_samples' must be an integer"),
    (BASE + "repeats = 0\n", "'repeats' must be from 1 to 1000, got 0"),
    (BASE + "seed = 1.5\n", "'seed' must be an integer"),
    (BASE.replace('batch_sizes = [1, 8]', 'batch_sizes = "8"'), "'batch_sizes' must be a list"),
    (BASE.replace('batch_sizes = [1, 8]', 'batch_sizes = []'), "'batch_sizes' is empty"),
    (BASE.replace('batch_sizes = [1, 8]', 'batch_sizes = [0]'), "positive integers, got 0"),
    (BASE.replace('batch_sizes = [1, 8]', 'batch_sizes = [2.5]'), "positive integers, got 2.5"),
    (BASE.replace('batch_sizes = [1, 8]', f'batch_sizes = [{MAX_BATCH_SIZE + 1}]'),
     f"exceeds the limit of {MAX_BATCH_SIZE}"),
    (BASE.replace('"sequential"', '"sequentail"'),
     "unknown scenario 'sequentail'; valid: clip, cyclegan, dcgan, detached, distill, gan, n_chain, n_ensemble, sac, separate_losses, sequential, shared_input, shared_trunk"),
    (BASE.replace('optimizers = ["adam"]', 'optimizers = ["lamb"]'),
     "unknown optimizer 'lamb'; valid: adam, adamw, sgd"),
    (BASE.replace('sizes = ["seed"]\n', ''), "missing sizes"),
    ("scenarios = [", "not valid TOML"),
])
def test_bad_sweep_files(tmp_path, text, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        load_sweep(write(tmp_path, text))


def test_unavailable_device_is_refused_before_measuring(tmp_path):
    config = load_sweep(write(tmp_path, BASE), {"devices": ["tpu"]})
    with pytest.raises(UsageError, match="unknown device 'tpu'; valid: auto, cpu"):
        expand(config)


def test_missing_sweep_file(tmp_path):
    with pytest.raises(UsageError, match="sweep file not found"):
        load_sweep(tmp_path / "nope.toml")


def test_parse_list():
    assert parse_list("--batch-sizes", "1, 2,3", int) == [1, 2, 3]
    with pytest.raises(UsageError, match="--batch-sizes: 'x' is not an integer"):
        parse_list("--batch-sizes", "1,x", int)
