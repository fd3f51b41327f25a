"""The results history: every run in one store, across torch releases and machines.

Layers, each its own module: ``location`` says which store a URL names (and what of it may
be shown); ``store`` opens it (an embedded DuckDB file by default, a PostgreSQL database by
URL), to read or to write, and hides their differences; ``tables`` is the schema, where it
lives and its migrations; ``record`` turns a run folder into what a store takes, checked
and typed once; ``add`` loads records into it, once and whole; ``dashboard``, ``latest``
and ``changes`` read it for the offline page (``bench/present/history_page.py``) and the
terminal. Commands: ``python -m bench history add|report|changes``
(``bench/commands/history.py``).
"""
