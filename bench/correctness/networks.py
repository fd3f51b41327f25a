"""The article's two networks, written again rather than imported from ``multinet``: a
reference that shared its code with what it checks would share its defects.

As in the article, except that ConvNet's number of outputs is a parameter (a GAN's
discriminator has one) and LinearNet's widths are the caller's.
"""

from __future__ import annotations

import torch.nn as nn


class LinearNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x


class ConvNet(nn.Module):
    def __init__(self, input_channels, output_channels, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, 16, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(16, output_channels, kernel_size=3, padding=1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(32 * 32 * output_channels, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        x = self.relu(x)
        x = self.conv2(x)
        x = self.flatten(x)
        x = self.fc(x)
        return x
