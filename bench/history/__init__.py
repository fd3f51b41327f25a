"""The results history: every run in one store, across torch releases and machines.

Layers, each its own module: ``store`` opens a store (an embedded DuckDB file by default, a
PostgreSQL database by URL) and hides their differences; ``tables`` is the schema and its
migrations; ``add`` loads run folders into it, once and whole; ``dashboard`` and ``latest`` read it
for the offline page (``bench/present/history_page.py``). Commands: ``python -m bench
history add|report`` (``bench/commands/history.py``).
"""
