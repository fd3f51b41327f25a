import sys

try:
    from bench.cli import main
except KeyboardInterrupt:
    # Ctrl-C while the harness itself imports, before bench/cli.py's main can say it: the
    # same line and code as there, not a traceback
    print("interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
