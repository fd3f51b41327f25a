"""The project's own measurements of itself: how noisy this machine is, how often the
verdicts err under that noise, how long the report, comparison and history take. They
measure the harness, not a user's networks; the product never imports them, and they are
run from a checkout (some build their inputs with tests/support).
"""
