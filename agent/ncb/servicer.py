"""The `NetworkComputeBridgeWorker` gRPC service over a bounded pool of perception slots.

`ListAvailableModels` answers at once (no slot needed). `NetworkCompute` (the deprecated form
the stock `identify_object_without_robot.py` calls, and what older robots forward) and
`WorkerCompute` (what current robots call) each borrow one `PerceptionSlot` for the request. At
most `max_pending` of them are held at once (computing or waiting for a slot): one more is
refused with gRPC `RESOURCE_EXHAUSTED` at once, and so is one that finds no free slot within
`slot_wait_s` (or its own deadline, if sooner), instead of queueing work its client gave up on.

Failures are answers, never crashes: an unknown model or an undecodable image gets
`header.error.code = CODE_INVALID_REQUEST` with a message naming what is wrong (what the SDK's
stock servers send; the SDK client raises `InvalidRequestError`) and status
`NETWORK_COMPUTE_STATUS_ANALYSIS_FAILED`; an impossible rotation status
`NETWORK_COMPUTE_STATUS_ROTATION_ERROR`; anything unexpected `CODE_INTERNAL_SERVER_ERROR` with
`NETWORK_COMPUTE_STATUS_EXTERNAL_SERVER_ERROR`, logged with its traceback.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import bosdyn.util
import grpc
from bosdyn.api import header_pb2, network_compute_bridge_pb2, network_compute_bridge_service_pb2_grpc

from agent.ncb.models import OfferedModel, PerceptionSlot
from agent.ncb.requests import (
    RequestError,
    annotated_image,
    bad_request,
    network_compute_item,
    worker_compute_items,
    worker_min_confidence,
    world_objects,
)
from agent.ncb.stats import WorkerStats

log = logging.getLogger(__name__)

_ncb = network_compute_bridge_pb2
_Code = header_pb2.CommonError
UNKNOWN_MODEL = "<unknown model>"  # stats key for requests naming no offered model
OUTPUT_KEY = "detections"  # the output image key (the stock fire-extinguisher server's)


class PerceptionWorker(network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerServicer):
    def __init__(self, slots: Sequence[PerceptionSlot], stats: WorkerStats | None = None,
                 max_pending: int | None = None, slot_wait_s: float = 5.0) -> None:
        if not slots:
            raise ValueError("a worker needs at least one perception slot")
        self.offered: list[OfferedModel] = slots[0].offered
        self.config = slots[0].config
        self.stats = stats or WorkerStats()
        self.slot_wait_s = slot_wait_s
        self.pool_size = len(slots)
        self.max_pending = max_pending or 4 * len(slots)
        self._admitted = threading.BoundedSemaphore(self.max_pending)
        self._free: queue.Queue[PerceptionSlot] = queue.Queue()
        for slot in slots:
            self._free.put(slot)

    # ------------------------------------------------------------------ RPCs
    def ListAvailableModels(self, request: Any, context: Any) -> Any:
        response = _ncb.ListAvailableModelsResponse(status=_ncb.LIST_AVAILABLE_MODELS_STATUS_SUCCESS)
        for model in self.offered:
            data = response.models.data.add(model_name=model.name, available_labels=model.labels)
            data.output_image_spec.add(key=OUTPUT_KEY, name=f"{model.name} detections")
            response.available_models.append(model.name)  # the deprecated fields, for older clients
            response.labels.add(model_name=model.name, available_labels=model.labels)
        fill_header(response, request)
        return response

    def NetworkCompute(self, request: Any, context: Any) -> Any:
        response = _ncb.NetworkComputeResponse()
        data = request.input_data
        min_confidence = data.min_confidence

        def compute(slot: PerceptionSlot) -> int:
            item = network_compute_item(request)
            found = slot.run(data.model_name, item.frame, item.rotation_deg)
            objects = world_objects(found, min_confidence, item.source.name)
            response.object_in_image.extend(objects)  # deprecated, but what older clients read
            output = response.output_images.get_or_create(OUTPUT_KEY)
            output.object_in_image.extend(objects)
            output.image_response.CopyFrom(annotated_image(item, found, min_confidence))
            return len(objects)

        return self._serve(request, response, context, data.model_name, compute)

    def WorkerCompute(self, request: Any, context: Any) -> Any:
        response = _ncb.WorkerComputeResponse()
        model = request.input_data.parameters.model_name

        def compute(slot: PerceptionSlot) -> int:
            items = worker_compute_items(request, self.config)
            min_confidence = worker_min_confidence(request)
            count = 0
            for item in items:
                found = slot.run(model, item.frame, item.rotation_deg)
                key = OUTPUT_KEY if len(items) == 1 else f"{OUTPUT_KEY}_{item.key}"
                output = response.output_images.get_or_create(key)
                output.object_in_image.extend(world_objects(found, min_confidence, item.source.name))
                output.image_response.CopyFrom(annotated_image(item, found, min_confidence))
                count += len(output.object_in_image)
            return count

        return self._serve(request, response, context, model, compute)

    # ------------------------------------------------------------------ shared
    def _serve(self, request: Any, response: Any, context: Any, model: str,
               compute: Callable[[PerceptionSlot], int]) -> Any:
        """Run `compute` on a borrowed slot and fill the header, status and stats."""
        start = time.perf_counter()
        names = [m.name for m in self.offered]
        stats_key = model if model in names else UNKNOWN_MODEL
        code, message = _Code.CODE_OK, ""
        try:
            if model not in names:
                raise bad_request(f'Cannot find model "{model}" in loaded models: {", ".join(names)}')
            with self._slot(context) as slot:
                objects = compute(slot)
            response.status = _ncb.NETWORK_COMPUTE_STATUS_SUCCESS
            self.stats.answered(stats_key, time.perf_counter() - start, objects)
        except _Busy as busy:
            self.stats.refused_busy()
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(busy))
        except RequestError as exc:
            response.status, code, message = exc.status, exc.code, str(exc)
            self.stats.failed(stats_key, _ncb.NetworkComputeStatus.Name(exc.status).lower()
                              .removeprefix("network_compute_status_"))
            log.warning("request refused: %s", message, extra={"event": "ncb_refused", "model": model})
        except Exception as exc:  # a bug must not take the worker down: answer and log it
            log.exception("request failed", extra={"event": "ncb_failed", "model": model})
            response.status = _ncb.NETWORK_COMPUTE_STATUS_EXTERNAL_SERVER_ERROR
            code, message = _Code.CODE_INTERNAL_SERVER_ERROR, f"worker failed: {exc.__class__.__name__}: {exc}"
            self.stats.failed(stats_key, "internal_error")
        fill_header(response, request, code, message)
        return response

    @contextmanager
    def _slot(self, context: Any) -> Iterator[PerceptionSlot]:
        if not self._admitted.acquire(blocking=False):
            raise _Busy(f"worker busy: {self.max_pending} requests already held ({self.pool_size} computing)")
        try:
            with self._free_slot(context) as slot:
                yield slot
        finally:
            self._admitted.release()

    @contextmanager
    def _free_slot(self, context: Any) -> Iterator[PerceptionSlot]:
        remaining = context.time_remaining() if context is not None else None
        wait = self.slot_wait_s if remaining is None else max(0.0, min(self.slot_wait_s, remaining))
        try:
            slot = self._free.get(timeout=wait)
        except queue.Empty:
            raise _Busy(f"worker busy: all {self.pool_size} perception slots taken for {wait:.1f} s") from None
        try:
            yield slot
        finally:
            self._free.put(slot)


def fill_header(response: Any, request: Any, code: int = _Code.CODE_OK, message: str = "") -> None:
    """The response header: the request's header echoed, when it arrived, the error.

    Not `bosdyn.client.server_util.populate_response_header`: that also packs the whole request
    into the header, and its byte-stripping does not know NCB requests, so every answer would
    carry the client's image back."""
    response.header.request_header.CopyFrom(request.header)
    response.header.request_received_timestamp.CopyFrom(bosdyn.util.now_timestamp())
    response.header.error.code = code
    if message:
        response.header.error.message = message


class _Busy(Exception):
    pass
