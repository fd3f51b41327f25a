"""Each scenario's synthetic batch against what its reference code feeds its networks: shapes,
ranges, and the rates of its random parts, checked on large batches from a fixed seed.

The reference loops (tests/test_workload_references.py) are fed the harness's own batches,
so they cannot see a batch that is wrong; these checks are the batches' only judge. Rates
are held to bounds of about six binomial standard deviations: a wrong rate lands far out,
a right one never does."""

import math

import pytest
import torch

from multinet.scenarios import build_scenario

N = 20_000


def batch(name: str, size: str, n: int = N, seed: int = 0) -> dict[str, torch.Tensor]:
    return build_scenario(name, size).make_batch(n, torch.Generator().manual_seed(seed))


def within_binomial(count: int, n: int, p: float, sds: float = 6) -> bool:
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


def standard_normal(x: torch.Tensor) -> bool:
    """Mean 0 and standard deviation 1 within a few standard errors of each."""
    n = x.numel()
    return (abs(float(x.mean())) < 5 / math.sqrt(n)
            and abs(float(x.std()) - 1) < 5 / math.sqrt(2 * n))


def uniform_pm1(x: torch.Tensor) -> bool:
    """In [-1, 1), spread over the whole range: a quarter below -0.5, a quarter above 0.5."""
    n = x.numel()
    return (bool((x >= -1).all() and (x < 1).all())
            and within_binomial(int((x < -0.5).sum()), n, 0.25)
            and within_binomial(int((x > 0.5).sum()), n, 0.25))


def test_sac_transitions_are_rarely_terminal_and_in_the_policy_s_range():
    """pranz24's replay memory stores mask = 1 - done; the harness draws done with
    probability 1%, as a MuJoCo episode's end is a rare transition."""
    b = batch("sac", "tiny")
    s = build_scenario("sac", "tiny").dims
    assert {k: tuple(v.shape) for k, v in b.items()} == {
        "state": (N, s.observations), "action": (N, s.actions), "reward": (N, 1),
        "next_state": (N, s.observations), "mask": (N, 1), "noise": (N, s.actions),
        "next_noise": (N, s.actions)}
    mask = b["mask"]
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    terminal = int((mask == 0).sum())
    assert within_binomial(terminal, N, 0.01), f"{terminal} of {N} transitions terminal"
    assert uniform_pm1(b["action"])  # a tanh-squashed policy's actions
    for key in ("state", "reward", "next_state", "noise", "next_noise"):
        assert standard_normal(b[key]), key
    # the reparameterisation noise of the two policy calls is drawn apart
    assert not torch.equal(b["noise"], b["next_noise"])


def test_clip_captions_end_in_the_end_token_where_the_encoder_pools():
    """A caption is start-to-end tokens from 1 to vocab - 2, then the end token (the largest
    id, vocab - 1, as in CLIP's tokenizer), then zeros: the text encoder pools at the
    argmax of the ids, which must be the end token."""
    s = build_scenario("clip", "tiny").dims
    b = batch("clip", "tiny", n=4000)
    tokens = b["tokens"]
    assert tuple(tokens.shape) == (4000, s.context) and tokens.dtype == torch.int64
    assert tuple(b["images"].shape) == (4000, 3, s.image_size, s.image_size)
    ends = (tokens == s.vocab - 1).int().argmax(dim=1)
    assert ((tokens == s.vocab - 1).sum(dim=1) == 1).all()  # one end token per caption
    assert torch.equal(tokens.argmax(dim=1), ends)
    positions = torch.arange(s.context).expand_as(tokens)
    before, after = positions < ends[:, None], positions > ends[:, None]
    assert ((tokens >= 1) & (tokens <= s.vocab - 2))[before].all()
    assert (tokens[after] == 0).all()
    # the end lands anywhere from the second position to the last, evenly
    counts = torch.bincount(ends, minlength=s.context)
    assert counts[0] == 0 and all(within_binomial(int(c), 4000, 1 / (s.context - 1))
                                  for c in counts[1:])
    assert standard_normal(b["images"])


@pytest.mark.parametrize("name, keys", [("dcgan", ("real",)), ("cyclegan", ("real_A", "real_B"))])
def test_gan_images_are_in_the_generators_range(name, keys):
    """Real images normalised to [-1, 1), the range of the generators' tanh output."""
    b = batch(name, "tiny", n=64)
    for key in keys:
        assert b[key].shape[:2] == (64, 3) and uniform_pm1(b[key]), key
    if name == "dcgan":
        nz = build_scenario("dcgan", "tiny").dims.nz
        assert tuple(b["real"].shape) == (64, 3, 64, 64)  # the architecture fixes 64x64
        assert tuple(b["noise"].shape) == (64, nz, 1, 1) and standard_normal(b["noise"])
    else:
        assert not torch.equal(b["real_A"], b["real_B"])  # two unpaired domains


def test_distill_labels_cover_every_class_evenly():
    s = build_scenario("distill", "tiny").dims
    b = batch("distill", "tiny", n=4000)
    assert tuple(b["images"].shape) == (4000, 3, s.image_size, s.image_size)
    labels = b["labels"]
    assert labels.dtype == torch.int64 and int(labels.min()) >= 0
    counts = torch.bincount(labels, minlength=s.classes)
    assert len(counts) == s.classes
    assert all(within_binomial(int(c), 4000, 1 / s.classes) for c in counts)


@pytest.mark.parametrize("name, targets", [
    ("sequential", ("target",)), ("shared_input", ("target",)),
    ("separate_losses", ("target_linear", "target_conv")), ("detached", ("target",)),
    ("shared_trunk", ("target_a", "target_b")), ("n_chain", ("target",)),
    ("n_ensemble", ("target",))])
def test_the_article_s_targets_are_every_class_evenly(name, targets):
    scenario = build_scenario(name, "seed")
    b = batch(name, "seed", n=4000)
    classes = scenario.sizes.classes
    for key in targets:
        counts = torch.bincount(b[key], minlength=classes)
        assert len(counts) == classes, key
        assert all(within_binomial(int(c), 4000, 1 / classes) for c in counts), key
    for key, value in b.items():
        if key not in targets:
            assert value.dtype == torch.float32 and standard_normal(value), key
    if len(targets) == 2:  # two tasks, two independent draws
        assert not torch.equal(b[targets[0]], b[targets[1]])


def test_the_batch_depends_on_the_generator_alone():
    for name, size in (("sac", "tiny"), ("clip", "tiny"), ("sequential", "seed")):
        one, two = batch(name, size, n=8, seed=3), batch(name, size, n=8, seed=3)
        torch.manual_seed(123)  # the global generator plays no part
        three = batch(name, size, n=8, seed=3)
        assert all(torch.equal(one[k], two[k]) and torch.equal(one[k], three[k]) for k in one)
        other = batch(name, size, n=8, seed=4)
        assert any(not torch.equal(one[k], other[k]) for k in one)
