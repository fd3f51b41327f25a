import pytest
import torch

from multinet import ConvNet, LinearNet, MultinetError, NetworkSizes, get_scenario, size_preset
from tests import article


@pytest.mark.parametrize("linear_out", [32 * 32, 10])  # sequential's, and the other two's
def test_article_state_dict_loads_strictly(linear_out):
    torch.manual_seed(1)
    ref_linear, ref_conv = article.LinearNet(10, 20, linear_out), article.ConvNet(1, 1)
    linear, conv = LinearNet(10, 20, linear_out), ConvNet(1, 1)
    linear.load_state_dict(ref_linear.state_dict(), strict=True)
    conv.load_state_dict(ref_conv.state_dict(), strict=True)
    x, image = torch.randn(3, 10), torch.randn(3, 1, 32, 32)
    assert torch.equal(linear(x), ref_linear(x))
    assert torch.equal(conv(image), ref_conv(image))


def test_scenario_networks_have_the_article_shapes_at_the_seed_size():
    expected = {"fc1.weight": (20, 10), "fc1.bias": (20,), "fc2.weight": (1024, 20),
                "fc2.bias": (1024,)}
    nets = get_scenario("sequential").networks()
    assert {k: tuple(v.shape) for k, v in nets["linear"].state_dict().items()} == expected
    conv_shapes = {k: tuple(v.shape) for k, v in nets["conv"].state_dict().items()}
    assert conv_shapes == {"conv1.weight": (16, 1, 3, 3), "conv1.bias": (16,),
                           "conv2.weight": (1, 16, 3, 3), "conv2.bias": (1,),
                           "fc.weight": (10, 1024), "fc.bias": (10,)}
    nets["conv"].load_state_dict(article.ConvNet(1, 1).state_dict(), strict=True)


def test_sizes_scale_the_layers():
    sizes = NetworkSizes(image_size=8, width=3)
    nets = get_scenario("sequential", sizes).networks()
    assert nets["linear"].fc1.out_features == 60
    assert nets["linear"].fc2.out_features == 64
    assert nets["conv"].conv1.out_channels == 48
    assert nets["conv"].fc.in_features == 64
    assert size_preset("seed") == NetworkSizes()


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_non_positive_or_non_integer_sizes_are_refused(bad):
    with pytest.raises(MultinetError, match="must be a positive integer"):
        LinearNet(10, bad, 10)
    with pytest.raises(MultinetError, match="width must be a positive integer"):
        NetworkSizes(width=bad)


def test_unknown_size_preset_names_the_valid_ones():
    with pytest.raises(MultinetError, match=r"unknown size 'huge'; valid: large, seed, wide"):
        size_preset("huge")
