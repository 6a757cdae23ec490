"""Data buffer service: keeps operator comments (tests read them back); accepts and drops the
other logging RPCs (text messages, events, blobs, signal ticks) like a robot with a full log."""

from __future__ import annotations

import threading
from collections import deque

import grpc
from bosdyn.api import data_buffer_pb2, data_buffer_service_pb2_grpc
from bosdyn.client.data_buffer import DataBufferClient

from sim.robot_clock import RobotClock
from sim.services.common import Reply, ServiceSpec

KEPT_COMMENTS = 1000


class DataBufferServicer(data_buffer_service_pb2_grpc.DataBufferServiceServicer):
    spec = ServiceSpec(DataBufferClient.default_service_name, DataBufferClient.service_type)

    def __init__(self, clock: RobotClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._comments: deque[data_buffer_pb2.OperatorComment] = deque(maxlen=KEPT_COMMENTS)
        self._next_schema_id = 1

    def add_to_server(self, server: grpc.Server) -> None:
        data_buffer_service_pb2_grpc.add_DataBufferServiceServicer_to_server(self, server)

    @property
    def operator_comments(self) -> list[data_buffer_pb2.OperatorComment]:
        with self._lock:
            return list(self._comments)

    def RecordOperatorComments(
        self, request: data_buffer_pb2.RecordOperatorCommentsRequest, context: grpc.ServicerContext
    ) -> data_buffer_pb2.RecordOperatorCommentsResponse:
        response = data_buffer_pb2.RecordOperatorCommentsResponse()
        with Reply(response, request, self._clock):
            now = self._clock.now_ns()
            with self._lock:
                for comment in request.operator_comments:
                    kept = data_buffer_pb2.OperatorComment()
                    kept.CopyFrom(comment)
                    if not kept.HasField("timestamp"):
                        RobotClock.to_timestamp(now, kept.timestamp)  # "when the robot receives it"
                    self._comments.append(kept)
        return response

    def RecordTextMessages(
        self, request: data_buffer_pb2.RecordTextMessagesRequest, context: grpc.ServicerContext
    ) -> data_buffer_pb2.RecordTextMessagesResponse:
        response = data_buffer_pb2.RecordTextMessagesResponse()
        with Reply(response, request, self._clock):
            pass
        return response

    def RecordEvents(
        self, request: data_buffer_pb2.RecordEventsRequest, context: grpc.ServicerContext
    ) -> data_buffer_pb2.RecordEventsResponse:
        response = data_buffer_pb2.RecordEventsResponse()
        with Reply(response, request, self._clock):
            pass
        return response

    def RecordDataBlobs(
        self, request: data_buffer_pb2.RecordDataBlobsRequest, context: grpc.ServicerContext
    ) -> data_buffer_pb2.RecordDataBlobsResponse:
        response = data_buffer_pb2.RecordDataBlobsResponse()
        with Reply(response, request, self._clock):
            pass
        return response

    def RecordSignalTicks(
        self, request: data_buffer_pb2.RecordSignalTicksRequest, context: grpc.ServicerContext
    ) -> data_buffer_pb2.RecordSignalTicksResponse:
        response = data_buffer_pb2.RecordSignalTicksResponse()
        with Reply(response, request, self._clock):
            pass
        return response

    def RegisterSignalSchema(
        self, request: data_buffer_pb2.RegisterSignalSchemaRequest, context: grpc.ServicerContext
    ) -> data_buffer_pb2.RegisterSignalSchemaResponse:
        response = data_buffer_pb2.RegisterSignalSchemaResponse()
        with Reply(response, request, self._clock), self._lock:
            response.schema_id = self._next_schema_id
            self._next_schema_id += 1
        return response
