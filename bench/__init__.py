"""bench: the harness that times multinet's joint training steps and reports on them."""

__version__ = "0.1.0"
