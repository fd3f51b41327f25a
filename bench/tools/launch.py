"""``python -m bench launch``: torchrun, ending in one plain message where it would end in a
traceback.

It takes torchrun's options as they are (``python -m bench launch --nproc-per-node 2 -m
bench run --distributed ...``) and adds two things. A rendezvous that does not form within
its timeout ends with one line naming the endpoint and what to check, where torchrun ends in
its own traceback (and with the c10d backend, an exception without a message). A rank that
fails ends with torchrun's summary of which rank failed, without the launcher's traceback
around it; a signal, with 128 + its number, as a shell reports it.
"""

from __future__ import annotations

import sys

from torch.distributed import DistError
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.elastic.rendezvous.api import RendezvousError
from torch.distributed.run import get_rdzv_endpoint, parse_args, run


def rendezvous_failure(args, exc: BaseException) -> str:
    """What to say when the nodes did not meet at the endpoint."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
    option = "timeout" if args.rdzv_backend == "static" else "join_timeout"
    return (f"error: the rendezvous at {get_rdzv_endpoint(args)} ({args.rdzv_backend}, "
            f"--nnodes {args.nnodes}) did not form: {reason}. Every node must start the same "
            "command with this endpoint, which the first node listens on; how long a node "
            f"waits for the others is --rdzv-conf {option}=SECONDS")


USAGE = """usage: python -m bench launch [TORCHRUN OPTIONS] -m bench run --distributed [RUN OPTIONS]

torchrun, ending in one line where torchrun ends in a traceback: a rendezvous that did not
form names its endpoint and what to check; a failed rank, torchrun's summary of it.

  one machine:  python -m bench launch --standalone --nproc-per-node 2 -m bench run --distributed
  two nodes:    python -m bench launch --nnodes 2 --node-rank R --rdzv-backend c10d \\
                    --rdzv-endpoint HOST:29500 --nproc-per-node 8 -m bench run --distributed

Every torchrun option is taken as it is: `torchrun --help` lists them."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):  # torchrun's own help runs to several screens
        print(USAGE)
        return 0
    args = parse_args(argv)
    try:
        run(args)
    except (RendezvousError, DistError) as exc:
        print(rendezvous_failure(args, exc), file=sys.stderr)
        return 1
    except ChildFailedError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except SignalException as exc:  # the workers had the signal too, and said what they did
        return 128 + exc.sigval
    return 0


if __name__ == "__main__":
    sys.exit(main())
