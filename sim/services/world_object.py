"""World object service: the AprilTags the body cameras can see now, as Spot reports fiducials.

Each tag comes with `apriltag_properties` (tag_id, dimensions, `fiducial_<id>` and
`filtered_fiducial_<id>` frame names, the camera that saw it) and a transforms snapshot holding
the body tree (`body`, `odom`, `vision`, ...) plus both fiducial frames under `vision`.
Detections are refreshed at most once per camera frame period, like the robot's own detector.
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
from sim.services.common import Reply, ServiceSpec
from sim.services.frames import SnapshotBuilder
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
            if wanted and WorldObjectType.WORLD_OBJECT_APRILTAG not in wanted:
                return response
            after_ns = (
                RobotClock.from_timestamp(request.timestamp_filter) if request.HasField("timestamp_filter") else None
            )
            for obj in self.detections():
                if after_ns is not None and RobotClock.from_timestamp(obj.acquisition_time) < after_ns:
                    continue
                response.world_objects.add().CopyFrom(obj)
        return response
