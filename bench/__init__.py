"""bench: the harness that times multinet's joint training steps and reports on them."""

from pathlib import Path

__version__ = "0.1.0"
# The checkout this package runs from: where subprocesses of the harness start, and what
# they put on PYTHONPATH to import it without an install.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
