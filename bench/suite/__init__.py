"""A pytest-benchmark suite over the same scenarios and phases as the runner.

``make bench-pytest`` runs it and saves the run; ``make bench-pytest-compare`` compares with
the last saved run; ``make test`` runs it once with benchmarking disabled.
``python -m bench import-pytest-benchmark`` turns a saved run into a run folder
(``importer.py``).
"""

# The name every benchmark of the suite carries in its extra_info: what the importer accepts.
SUITE = "multinet-bench"
