"""World object service: the AprilTags the body cameras can see now, as Spot reports fiducials.

Each tag comes with `apriltag_properties` (tag_id, dimensions, `fiducial_<id>` and
`filtered_fiducial_<id>` frame names, the camera that saw it) and a transforms snapshot holding
the body tree (`body`, `odom`, `vision`, ...) plus both fiducial frames under `vision`.
Detections are refreshed at most once per camera frame period, like the robot's own detector.
Clients add, change and delete their own objects with `MutateWorldObjects`
(sim/services/world_object_store.py); they are listed with the detections.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc
from bosdyn.api import world_object_pb2, world_object_service_pb2_grpc
from bosdyn.client.frame_helpers import VISION_FRAME_NAME
from bosdyn.client.world_object import WorldObjectClient

from sim import render
from sim.body_state import BodyState
from sim.cameras import CameraSpec
from sim.poses import vision_tform_odom_se3
from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.scene import Scenario
from sim.services.common import InvalidRequest, Reply, ServiceSpec
from sim.services.frames import SnapshotBuilder
from sim.services.world_object_store import ClientObjects, MutateStatus, has_type, merge_frames
from sim.world import SimWorld

WorldObjectType = world_object_pb2.WorldObjectType
APRILTAG_ID_BASE = 1000  # world object ids: APRILTAG_ID_BASE + tag id (stable across calls)
OBJECT_LIFETIME_S = 3.0


@dataclass(frozen=True)
class _Detections:
    body: BodyState
    objects: tuple[world_object_pb2.WorldObject, ...]


class WorldObjectServicer(world_object_service_pb2_grpc.WorldObjectServiceServicer):
    spec = ServiceSpec(WorldObjectClient.default_service_name, WorldObjectClient.service_type)

    def __init__(
        self,
        clock: RobotClock,
        world: SimWorld,
        scenario: Scenario,
        cameras: dict[str, CameraSpec],
        snapshots: SnapshotBuilder,
        refresh_hz: float = 15.0,
    ) -> None:
        self._clock = clock
        self._world = world
        self._scenario = scenario
        self._cameras = list(cameras.values())
        self._snapshots = snapshots
        self._period_ns = int(NSEC_PER_SEC / refresh_hz)
        self._lock = threading.Lock()
        self._detections: _Detections | None = None
        self._vision_tform_odom = vision_tform_odom_se3()
        self._client_objects = ClientObjects(clock)
        self._detected_ids = {APRILTAG_ID_BASE + tag.tag_id for tag in scenario.tags}

    def add_to_server(self, server: grpc.Server) -> None:
        world_object_service_pb2_grpc.add_WorldObjectServiceServicer_to_server(self, server)

    def _fresh(self) -> tuple[world_object_pb2.WorldObject, ...] | None:
        """The cached detections if still current: redone once per camera frame period (a 1/rate grid)."""
        cached = self._detections
        if cached is not None and cached.body.robot_ns // self._period_ns == self._clock.now_ns() // self._period_ns:
            return cached.objects
        return None

    def detections(self) -> tuple[world_object_pb2.WorldObject, ...]:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        with self._lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            body = self._world.snapshot()
            cached = _Detections(body, self._detect(body))
            self._detections = cached
            return cached.objects

    def _detect(self, body: BodyState) -> tuple[world_object_pb2.WorldObject, ...]:
        if not self._scenario.tags:
            return ()
        # The nearest sighting of each tag, over all cameras.
        best: dict[int, tuple[render.TagView, CameraSpec]] = {}
        odom_tform_body = body.odom_tform_body
        for camera in self._cameras:
            for view in render.visible_tags(camera, odom_tform_body, self._scenario, body.sim_time_s):
                seen = best.get(view.tag_id)
                if seen is None or view.distance_m < seen[0].distance_m:
                    best[view.tag_id] = (view, camera)
        objects = []
        for tag_id in sorted(best):
            view, camera = best[tag_id]
            obj = world_object_pb2.WorldObject(
                id=APRILTAG_ID_BASE + tag_id,
                name=f"world_obj_apriltag_{tag_id}",
            )
            RobotClock.to_timestamp(body.robot_ns, obj.acquisition_time)
            obj.object_lifetime.FromNanoseconds(int(OBJECT_LIFETIME_S * NSEC_PER_SEC))
            fiducial = f"fiducial_{tag_id}"
            filtered = f"filtered_fiducial_{tag_id}"
            self._snapshots.snapshot(body, obj.transforms_snapshot)
            vision_tform_tag = self._vision_tform_odom * view.odom_tform_tag
            self._snapshots.add_world_frame(obj.transforms_snapshot, fiducial, VISION_FRAME_NAME, vision_tform_tag)
            self._snapshots.add_world_frame(obj.transforms_snapshot, filtered, VISION_FRAME_NAME, vision_tform_tag)
            props = obj.apriltag_properties
            props.tag_id = tag_id
            props.dimensions.x = props.dimensions.y = view.size_m
            props.frame_name_fiducial = fiducial
            props.fiducial_pose_status = world_object_pb2.AprilTagProperties.STATUS_OK
            props.frame_name_fiducial_filtered = filtered
            props.fiducial_filtered_pose_status = world_object_pb2.AprilTagProperties.STATUS_OK
            props.frame_name_camera = camera.frame_name
            objects.append(obj)
        return tuple(objects)

    def ListWorldObjects(
        self, request: world_object_pb2.ListWorldObjectRequest, context: grpc.ServicerContext
    ) -> world_object_pb2.ListWorldObjectResponse:
        response = world_object_pb2.ListWorldObjectResponse()
        with Reply(response, request, self._clock):
            wanted = set(request.object_type)
            after_ns = (
                RobotClock.from_timestamp(request.timestamp_filter) if request.HasField("timestamp_filter") else None
            )
            detections = self.detections() if not wanted or WorldObjectType.WORLD_OBJECT_APRILTAG in wanted else ()
            for obj in (*detections, *self._client_objects.current()):
                if after_ns is not None and RobotClock.from_timestamp(obj.acquisition_time) < after_ns:
                    continue
                if has_type(obj, wanted):
                    response.world_objects.add().CopyFrom(obj)
        return response

    def MutateWorldObjects(
        self, request: world_object_pb2.MutateWorldObjectRequest, context: grpc.ServicerContext
    ) -> world_object_pb2.MutateWorldObjectResponse:
        response = world_object_pb2.MutateWorldObjectResponse()
        with Reply(response, request, self._clock):
            response.status = self._mutate(request.mutation, response)
        return response

    def _mutate(self, mutation: world_object_pb2.MutateWorldObjectRequest.Mutation, response: world_object_pb2.MutateWorldObjectResponse) -> int:
        Action = world_object_pb2.MutateWorldObjectRequest
        obj = mutation.object
        if mutation.action in (Action.ACTION_CHANGE, Action.ACTION_DELETE) and obj.id in self._detected_ids:
            return MutateStatus.STATUS_NO_PERMISSION  # the robot's own perception owns it
        if mutation.action == Action.ACTION_DELETE:
            response.mutated_object_id = obj.id
            return MutateStatus.STATUS_OK if self._client_objects.delete(obj.id) else MutateStatus.STATUS_INVALID_MUTATION_ID
        if mutation.action not in (Action.ACTION_ADD, Action.ACTION_CHANGE):
            raise InvalidRequest(f"mutation.action {mutation.action} is not ACTION_ADD, ACTION_CHANGE or ACTION_DELETE")
        placed = world_object_pb2.WorldObject()
        placed.CopyFrom(obj)
        self._snapshots.snapshot(self._world.snapshot(), placed.transforms_snapshot)
        if merge_frames(placed.transforms_snapshot, obj.transforms_snapshot) is not None:
            return MutateStatus.STATUS_INVALID_WORLD_OBJECT
        if mutation.action == Action.ACTION_CHANGE:
            response.mutated_object_id = obj.id
            return MutateStatus.STATUS_OK if self._client_objects.change(placed) else MutateStatus.STATUS_INVALID_MUTATION_ID
        object_id = self._client_objects.add(placed)
        if object_id is None:
            return MutateStatus.STATUS_INVALID_WORLD_OBJECT
        response.mutated_object_id = object_id
        return MutateStatus.STATUS_OK
