"""A sweep submitted to a Slurm cluster: one job per partition (or GPU type), each running
the sweep on its node into the team's history store (``python -m bench submit``; see
``bench/cluster/README.md``)."""
