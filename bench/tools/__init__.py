"""The larger commands a user runs, each a subcommand of ``python -m bench`` (bench/cli.py's
TOOLS): paired rounds, torch versions, bisect, the torchrun launcher, gpu-check, perf-check,
the attribution checks, mutation-check; and the parts only they use. The project's
measurements of itself are in bench/selfcheck, apart from the product."""
