import pytest
import torch

from multinet import MultinetError, get_scenario, make_optimizers, resolve_impl


@pytest.fixture
def nets():
    return get_scenario("shared_input").networks()


def test_setups_arrange_parameters_as_named(nets):
    n_linear, n_conv = len(list(nets["linear"].parameters())), len(list(nets["conv"].parameters()))
    separate = make_optimizers("separate", nets)
    assert [len(o.param_groups[0]["params"]) for o in separate] == [n_linear, n_conv]
    (single,) = make_optimizers("single", nets)
    assert [len(g["params"]) for g in single.param_groups] == [n_linear + n_conv]
    (grouped,) = make_optimizers("grouped", nets)
    assert [len(g["params"]) for g in grouped.param_groups] == [n_linear, n_conv]


@pytest.mark.parametrize("impl, foreach, fused", [("loop", False, False),
                                                  ("foreach", True, False),
                                                  ("fused", False, True)])
def test_implementation_is_explicit(nets, impl, foreach, fused):
    for opt in make_optimizers("single", nets, "adamw", impl):
        assert opt.defaults["foreach"] is foreach
        assert opt.defaults["fused"] is fused


def test_kinds_and_article_learning_rate(nets):
    (adam,) = make_optimizers("single", nets, "adam")
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 1e-3
    (sgd,) = make_optimizers("single", nets, "sgd")
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9


def test_auto_resolves_to_what_torch_would_run():
    assert resolve_impl("auto", "cpu") == "loop"
    assert resolve_impl("auto", "cuda:0") == "foreach"
    assert resolve_impl("fused", "cpu") == "fused"


@pytest.mark.parametrize("call, message", [
    (lambda n: make_optimizers("pairs", n), r"unknown optimizer setup 'pairs'; valid: grouped, separate, single"),
    (lambda n: make_optimizers("single", n, "lamb"), r"unknown optimizer 'lamb'; valid: adam, adamw, sgd"),
    (lambda n: make_optimizers("single", n, "adam", "fast"), r"unknown optimizer implementation 'fast'; valid: foreach, fused, loop"),
    (lambda n: resolve_impl("fast", "cpu"), r"valid: auto, foreach, fused, loop"),
])
def test_bad_names_raise_one_clear_error(nets, call, message):
    with pytest.raises(MultinetError, match=message):
        call(nets)
