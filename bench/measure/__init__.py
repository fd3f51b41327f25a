"""Measuring one configuration: clocks and warm-up, statistics, memory, work counters, NVML,
devices and the environment. Everything that touches torch while timing lives here."""
