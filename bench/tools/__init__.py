"""Commands around the harness: the GPU check, the timer's own accuracy checks, sweeps
across torch versions, the torchrun launcher, synthetic run folders."""
