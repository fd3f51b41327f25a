"""Running many configurations: the sweep and its expansion, the one sweep loop (in one
process or data-parallel under torchrun), the run folder it writes, failures and signals."""
