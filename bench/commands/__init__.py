"""One module per subcommand of ``python -m bench``; each has ``add_parser`` and ``main``."""
