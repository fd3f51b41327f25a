"""Renderers of what ``bench.analyze`` computed: the terminal summary and comparison, the
HTML pages and their charts, PNG images. Pure functions of frames; no torch."""
