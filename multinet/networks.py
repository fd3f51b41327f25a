"""The two networks of the article, with their sizes as parameters.

Submodule names and, at the default sizes, layer shapes match the article's classes exactly,
so a ``state_dict`` saved from the article's code loads here with ``strict=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from multinet.errors import InvalidChoice, check_positive


@dataclass(frozen=True)
class NetworkSizes:
    """Sizes shared by a scenario's networks.

    ``width`` multiplies the hidden widths (LinearNet's 20 units, ConvNet's 16 channels);
    ``image_size`` is the side of ConvNet's square single-channel image. At the article's
    sizes a GPU step is bound by kernel launches, so larger presets exist to make it bound
    by compute instead.
    """

    features: int = 10
    classes: int = 10
    image_size: int = 32
    width: int = 1

    def __post_init__(self) -> None:
        for name in ("features", "classes", "image_size", "width"):
            check_positive(name, getattr(self, name))

    @property
    def linear_hidden(self) -> int:
        return 20 * self.width

    @property
    def conv_hidden(self) -> int:
        return 16 * self.width

    @property
    def pixels(self) -> int:
        return self.image_size * self.image_size


SIZE_PRESETS: dict[str, NetworkSizes] = {
    "seed": NetworkSizes(),
    "wide": NetworkSizes(image_size=32, width=8),
    "large": NetworkSizes(image_size=64, width=16),
}


def size_preset(name: str) -> NetworkSizes:
    try:
        return SIZE_PRESETS[name]
    except KeyError:
        raise InvalidChoice("size", name, SIZE_PRESETS) from None


class LinearNet(nn.Module):
    """The article's ``LinearNet``: fc1 -> relu -> fc2."""

    def __init__(self, input_size: int = 10, hidden_size: int = 20, output_size: int = 10):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("output_size", output_size)):
            check_positive(name, value)
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class ConvNet(nn.Module):
    """The article's ``ConvNet``: conv1 -> relu -> conv2 -> flatten -> fc.

    The article hard-codes a 32x32 image and 16 hidden channels; both are parameters here.
    Padding 1 with a 3x3 kernel keeps the image size, so ``fc`` sees
    ``image_size**2 * output_channels`` features, as in the article.
    """

    def __init__(self, input_channels: int = 1, output_channels: int = 1, *,
                 hidden_channels: int = 16, image_size: int = 32, num_classes: int = 10):
        super().__init__()
        for name, value in (("input_channels", input_channels),
                            ("output_channels", output_channels),
                            ("hidden_channels", hidden_channels), ("image_size", image_size),
                            ("num_classes", num_classes)):
            check_positive(name, value)
        self.image_size = image_size
        self.conv1 = nn.Conv2d(input_channels, hidden_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(hidden_channels, output_channels, kernel_size=3, padding=1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(image_size * image_size * output_channels, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.conv2(self.relu(self.conv1(x)))))
