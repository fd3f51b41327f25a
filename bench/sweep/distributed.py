"""The process group of a ``--distributed`` run, and what its ranks say to each other.

torchrun starts one process per rank with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT set; ``join`` turns them into a process group: gloo for CPU tensors, and NCCL
for CUDA tensors where there is CUDA. Beside it, a gloo group of its own carries the
harness's messages (agreements, the plan, gathered samples) on the host, so that they never
queue behind the GPU's work.

A rank that fails can take no part in collectives any more, and the others would wait in
theirs until the timeout. So a failing rank also leaves a notice in the store, the
key-value server that every rank reaches without a collective; a watcher thread on each
rank reads it (``watch``), and rank 0 says what failed while the others stop.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from bench.errors import UsageError

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# How long a failing rank waits for rank 0 to have reported it before it exits anyway
# (rank 0 may be the one that is gone).
REPORT_WAIT_S = 10.0
POLL_S = 0.5


def backend_for(device: str) -> str:
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@dataclass
class Failure:
    rank: int
    message: str


@dataclass
class World:
    rank: int
    size: int
    local_rank: int
    endpoint: str  # MASTER_ADDR:MASTER_PORT
    control: Any  # the gloo group of the harness's own messages
    store: Any  # a client of torchrun's store; keys go under ``namespace``
    namespace: str = "multinet-bench"
    _closing: threading.Event = field(default_factory=threading.Event, repr=False)
    _watcher: threading.Thread | None = field(default=None, repr=False)

    def agree(self, values: list[float]) -> list[float]:
        """The element-wise maximum of ``values`` over the ranks (see bench/measure/timers.py)."""
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.control)
        return tensor.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj``, on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` in rank order, on rank 0; None elsewhere."""
        out = [None] * self.size if self.rank == 0 else None
        dist.gather_object(obj, out, dst=0, group=self.control)
        return out

    def _key(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    def tell_failure(self, message: str) -> bool:
        """Leave ``message`` for the other ranks. On a rank other than 0, wait until rank 0
        has reported it (or a while); returns whether it did."""
        self.store.set(self._key("failure"), json.dumps({"rank": self.rank, "message": message}))
        if self.rank == 0:
            return True
        deadline = time.monotonic() + REPORT_WAIT_S
        while time.monotonic() < deadline:
            if self.store.check([self._key("reported")]):
                return True
            time.sleep(POLL_S / 2)
        return False

    def failure(self) -> Failure | None:
        """The failure a rank has told of, if any."""
        key = self._key("failure")
        if not self.store.check([key]):
            return None
        notice = json.loads(self.store.get(key))
        return Failure(notice["rank"], notice["message"])

    def reported(self) -> None:
        """Rank 0 has said what failed: the failing rank may go."""
        self.store.set(self._key("reported"), "1")

    def watch(self, on_failure: Callable[[Failure], None]) -> None:
        """Call ``on_failure`` (in a daemon thread) once another rank tells of a failure;
        it is expected not to return (it ends the process)."""
        def poll() -> None:
            while not self._closing.is_set():
                failure = self.failure()
                if failure is not None and failure.rank != self.rank:
                    on_failure(failure)
                    return
                self._closing.wait(POLL_S)
        self._watcher = threading.Thread(target=poll, name="failure-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        # The watcher must be out of the store before the process group and the store go:
        # a thread still inside a store call at exit aborts the process (std::terminate).
        self._closing.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10 * POLL_S)
        dist.destroy_process_group()


def join(timeout_s: float) -> World:
    """This process's place in the run torchrun started. ``timeout_s`` bounds every wait for
    the other ranks: forming the group, and each collective afterwards."""
    missing = [name for name in ENV if name not in os.environ]
    if missing:
        raise UsageError("--distributed runs under torchrun, e.g. `torchrun --nproc-per-node 2 "
                         "-m bench run --distributed ...`, which sets "
                         f"{', '.join(ENV)}; {missing[0]} is not set")
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    endpoint = f"{host}:{port}"
    timeout = dt.timedelta(seconds=timeout_s)
    if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
        torch.cuda.set_device(local_rank)  # NCCL's communicators bind to the current device
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    try:
        dist.init_process_group(backend, timeout=timeout)
        control = dist.new_group(backend="gloo", timeout=timeout)
        store = dist.TCPStore(host, port, is_master=False, timeout=timeout)
    except dist.DistError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"the process group at {endpoint} did not form within {timeout_s:g} s "
                         f"(rank {rank} of {size}): {reason}") from None
    # a restarted worker group (torchrun --max-restarts) must not read the last one's notices
    namespace = f"multinet-bench/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    return World(rank, size, local_rank, endpoint, control, store, namespace)


def rank_record(world: World, devices: dict[str, str]) -> dict[str, Any]:
    """What env.json records of one rank: its host, and its devices with their names."""
    return {"rank": world.rank, "local_rank": world.local_rank,
            "hostname": socket.gethostname(), "devices": devices}
