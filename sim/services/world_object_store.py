"""World objects added by clients (`MutateWorldObjects`): ids, lifetimes, frames.

As on a robot: the service picks the id of an added object (the request's id is ignored); only
objects a client added can be changed or deleted (the robot's own detections answer
STATUS_NO_PERMISSION, unknown ids STATUS_INVALID_MUTATION_ID); an object lives
`object_lifetime` after its `acquisition_time` (or after it was added, when it has none), and
`DEFAULT_LIFETIME_S` when it says nothing. Its frames are merged into the robot's frame tree at
the moment of the mutation: the robot's own frames (`body`, `odom`, `vision`, ...) keep the
robot's values, the client's other frames must hang off a frame the tree has, else the object is
STATUS_INVALID_WORLD_OBJECT.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

from bosdyn.api import geometry_pb2, world_object_pb2

from sim.robot_clock import NSEC_PER_SEC, RobotClock

MutateStatus = world_object_pb2.MutateWorldObjectResponse
WorldObjectType = world_object_pb2.WorldObjectType
FIRST_CLIENT_ID = 10_000  # clear of the robot's own detections (APRILTAG_ID_BASE + tag id)
DEFAULT_LIFETIME_S = 60.0
MAX_CLIENT_OBJECTS = 1000

# Which property makes an object of which type (ListWorldObjects' object_type filter). By name:
# bosdyn-api 5.0 lacks some types (tracked entities came later), and a type the installed API
# does not know cannot be asked for either.
_TYPE_PROPERTY_NAMES = {
    "WORLD_OBJECT_DRAWABLE": "drawable_properties",
    "WORLD_OBJECT_APRILTAG": "apriltag_properties",
    "WORLD_OBJECT_IMAGE_COORDINATES": "image_properties",
    "WORLD_OBJECT_DOCK": "dock_properties",
    "WORLD_OBJECT_TRACKED_ENTITY": "tracked_entity_properties",
    "WORLD_OBJECT_USER_NOGO": "nogo_region_properties",
    "WORLD_OBJECT_STAIRCASE": "staircase_properties",
}
TYPE_PROPERTIES: dict[int, str] = {
    WorldObjectType.Value(name): field
    for name, field in _TYPE_PROPERTY_NAMES.items()
    if name in WorldObjectType.DESCRIPTOR.values_by_name and field in world_object_pb2.WorldObject.DESCRIPTOR.fields_by_name
}


def has_type(obj: world_object_pb2.WorldObject, wanted: set[int]) -> bool:
    """True if `obj` carries the properties of one of the `wanted` types (or nothing is wanted)."""
    if not wanted:
        return True
    for kind in wanted:
        field = TYPE_PROPERTIES.get(kind)
        if field == "drawable_properties":
            if len(obj.drawable_properties):
                return True
        elif field is not None and obj.HasField(field):
            return True
    return False


def merge_frames(robot: geometry_pb2.FrameTreeSnapshot, client: geometry_pb2.FrameTreeSnapshot) -> str | None:
    """Add the client's own frames to `robot` (in place). Returns why that is impossible, or None."""
    pending = {
        child: edge for child, edge in client.child_to_parent_edge_map.items() if child not in robot.child_to_parent_edge_map
    }
    while pending:
        placed = [child for child, edge in pending.items() if edge.parent_frame_name in robot.child_to_parent_edge_map]
        if not placed:
            child, edge = next(iter(pending.items()))
            return f"frame {child!r} hangs off {edge.parent_frame_name!r}, which is not in the robot's frame tree"
        for child in placed:
            robot.child_to_parent_edge_map[child].CopyFrom(pending.pop(child))
    return None


@dataclass
class _Stored:
    obj: world_object_pb2.WorldObject
    expires_ns: int


class ClientObjects:
    """The objects clients added, by id (thread-safe)."""

    def __init__(self, clock: RobotClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._objects: dict[int, _Stored] = {}
        self._ids = itertools.count(FIRST_CLIENT_ID)

    def _expiry(self, obj: world_object_pb2.WorldObject, now_ns: int) -> int:
        start = RobotClock.from_timestamp(obj.acquisition_time) if obj.HasField("acquisition_time") else now_ns
        lifetime_ns = (
            obj.object_lifetime.ToNanoseconds() if obj.HasField("object_lifetime") else int(DEFAULT_LIFETIME_S * NSEC_PER_SEC)
        )
        return start + lifetime_ns

    def _prune(self, now_ns: int) -> None:
        for object_id in [i for i, s in self._objects.items() if s.expires_ns < now_ns]:
            del self._objects[object_id]

    def add(self, obj: world_object_pb2.WorldObject) -> int | None:
        """Store `obj` (its frames already merged) under a new id; None when the store is full."""
        now_ns = self._clock.now_ns()
        with self._lock:
            self._prune(now_ns)
            if len(self._objects) >= MAX_CLIENT_OBJECTS:
                return None
            object_id = next(self._ids)
            self._objects[object_id] = _Stored(self._prepared(obj, object_id, now_ns), self._expiry(obj, now_ns))
            return object_id

    def change(self, obj: world_object_pb2.WorldObject) -> bool:
        """Replace the object with `obj.id`; False if there is none (or it expired)."""
        now_ns = self._clock.now_ns()
        with self._lock:
            self._prune(now_ns)
            if obj.id not in self._objects:
                return False
            self._objects[obj.id] = _Stored(self._prepared(obj, obj.id, now_ns), self._expiry(obj, now_ns))
            return True

    def delete(self, object_id: int) -> bool:
        with self._lock:
            self._prune(self._clock.now_ns())
            return self._objects.pop(object_id, None) is not None

    def current(self) -> list[world_object_pb2.WorldObject]:
        with self._lock:
            self._prune(self._clock.now_ns())
            return [stored.obj for stored in self._objects.values()]

    @staticmethod
    def _prepared(obj: world_object_pb2.WorldObject, object_id: int, now_ns: int) -> world_object_pb2.WorldObject:
        stored = world_object_pb2.WorldObject()
        stored.CopyFrom(obj)
        stored.id = object_id
        if not stored.HasField("acquisition_time"):
            RobotClock.to_timestamp(now_ns, stored.acquisition_time)
        return stored
