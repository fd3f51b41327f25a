"""What every real workload shares: its own size presets, each a frozen dataclass of the
reference code's dimensions, named in the class's ``SIZES``."""

from __future__ import annotations

from typing import Any, ClassVar

from multinet.scenarios import Scenario


class Workload(Scenario):
    """A scenario at one of its ``SIZES`` (``tiny`` first: the size its checks use)."""

    SIZES: ClassVar[dict[str, Any]]

    def __init__(self, sizes: Any, n_networks: int = 2):
        super().__init__(None, n_networks)
        self.dims = sizes

    @classmethod
    def size_names(cls):
        return tuple(cls.SIZES)

    @classmethod
    def at_size(cls, size, n_networks=2):
        return cls(cls.SIZES[size], n_networks)
