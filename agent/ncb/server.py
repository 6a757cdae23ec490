"""The worker's gRPC server: plain (insecure) gRPC as every NCB worker serves, bounded.

`pool_size` perception slots do the work; at most `max_pending` compute requests are held at
once (the servicer refuses more with `RESOURCE_EXHAUSTED` at once, and counts them). The gRPC
server has threads for those plus `SPARE_THREADS` (model lists, refusals); requests arriving
while every thread is busy wait only for a refusal or a model list to finish. gRPC itself
refuses (uncounted) beyond `QUEUE_FACTOR` times the threads, so a flood never queues without bound.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from bosdyn.api import network_compute_bridge_service_pb2_grpc

from agent.ncb.models import PerceptionSlot
from agent.ncb.servicer import PerceptionWorker
from perception.config import DetectorConfig

log = logging.getLogger(__name__)

DEFAULT_PORT = 50051  # the SDK's examples' worker port
SPARE_THREADS = 8
QUEUE_FACTOR = 4


class BindError(OSError):
    """The worker's address could not be bound."""


@dataclass
class WorkerServer:
    server: grpc.Server
    worker: PerceptionWorker
    port: int  # the bound port (the one asked for, or the one picked for port 0)

    def stop(self, grace_s: float = 2.0) -> None:
        self.server.stop(grace_s).wait()


def start_worker_server(config: DetectorConfig, host: str, port: int, pool_size: int, max_pending: int,
                        slot_wait_s: float = 5.0) -> WorkerServer:
    """Load `pool_size` slots (the models load and verify now), bind and start serving."""
    slots = [PerceptionSlot(config) for _ in range(pool_size)]
    worker = PerceptionWorker(slots, max_pending=max_pending, slot_wait_s=slot_wait_s)
    threads = max_pending + SPARE_THREADS
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ncb"),
                         maximum_concurrent_rpcs=QUEUE_FACTOR * threads,
                         # gRPC shares a port with another server by default: a second worker on
                         # the same port would silently take half of the first one's requests.
                         options=[("grpc.so_reuseport", 0)])
    network_compute_bridge_service_pb2_grpc.add_NetworkComputeBridgeWorkerServicer_to_server(worker, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc raises RuntimeError when it cannot bind
        raise BindError(f"cannot serve on {address}: {exc}") from None
    if bound == 0:
        raise BindError(f"cannot serve on {address} (in use, or not an address of this machine?)")
    server.start()
    log.info("worker serving", extra={"event": "worker_serving", "address": f"{host}:{bound}",
                                      "models": [m.name for m in worker.offered], "slots": pool_size,
                                      "max_pending": max_pending})
    return WorkerServer(server, worker, bound)
