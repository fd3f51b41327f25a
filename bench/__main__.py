import signal
import sys

from bench.sweep.interrupt import Stopped


def _terminate(signum, frame):
    # SIGTERM as Ctrl-C from the first line on: the same line and the shell's code for the
    # signal (143), where the default action ended the process without a word. A command
    # with more to say (a run setting up, a sweep, an add) installs its own handler.
    raise Stopped(signum)


signal.signal(signal.SIGTERM, _terminate)
# and Ctrl-C's SIGINT, even where the process was started ignoring it (a job a script starts
# with `&`): a sweep installs its own handler for it later in any case, and a signal that
# works in one second of a run and is dropped in another is worse than either
signal.signal(signal.SIGINT, _terminate)
try:
    from bench.cli import main
except KeyboardInterrupt as stop:
    # Ctrl-C while the harness itself imports, before bench/cli.py's main can say it: the
    # same line and code as there, not a traceback
    print("interrupted", file=sys.stderr)
    sys.exit(128 + getattr(stop, "signum", signal.SIGINT))

sys.exit(main())
