"""A pytest-benchmark suite over the same scenarios and phases as the runner.

``make bench-pytest`` runs it and saves the run; ``make bench-pytest-compare`` compares with
the last saved run; ``make test`` runs it once with benchmarking disabled.
"""
