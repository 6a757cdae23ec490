"""World-object mutations through the SDK's WorldObjectClient, making the calls the stock
`world_object_mutations` (mutate_world_objects.py) and `user_nogo_regions` examples make: the
robot's own fiducials cannot be changed or deleted; client objects get ids, are listed with their
frames merged into the robot's tree, can be changed and deleted, and expire."""

from __future__ import annotations

import time

import pytest
from bosdyn.api import geometry_pb2 as geom
from bosdyn.api import world_object_pb2
from bosdyn.client.exceptions import InvalidRequestError
from bosdyn.client.frame_helpers import (
    BODY_FRAME_NAME,
    ODOM_FRAME_NAME,
    VISION_FRAME_NAME,
    add_edge_to_tree,
    get_a_tform_b,
)
from bosdyn.client.robot import Robot
from bosdyn.client.world_object import (
    WorldObjectClient,
    make_add_world_object_req,
    make_change_world_object_req,
    make_delete_world_object_req,
)

from sim.services.world_object import APRILTAG_ID_BASE
from sim.services.world_object_store import FIRST_CLIENT_ID

Status = world_object_pb2.MutateWorldObjectResponse
WorldObjectType = world_object_pb2.WorldObjectType


@pytest.fixture
def world_objects(spot_robot: Robot) -> WorldObjectClient:
    return spot_robot.ensure_client(WorldObjectClient.default_service_name)


def _tag_object(tag_id: int = 308, size: float = 0.2, request_id: int = 21) -> world_object_pb2.WorldObject:
    """An AprilTag object with a custom frame, as the stock example builds one (its own frames under vision)."""
    edges: dict[str, geom.FrameTreeSnapshot.ParentEdge] = {}
    pose = geom.SE3Pose(position=geom.Vec3(x=2.0, y=-1.0, z=0.5), rotation=geom.Quaternion(w=1.0))
    edges = add_edge_to_tree(edges, pose, VISION_FRAME_NAME, f"fiducial_{tag_id}")
    edges = add_edge_to_tree(edges, pose, VISION_FRAME_NAME, f"filtered_fiducial_{tag_id}")
    edges = add_edge_to_tree(edges, pose, VISION_FRAME_NAME, "my_special_frame")
    # A client's version of a robot frame: the robot keeps its own.
    edges = add_edge_to_tree(edges, geom.SE3Pose(position=geom.Vec3(x=9.0), rotation=geom.Quaternion(w=1.0)), VISION_FRAME_NAME, ODOM_FRAME_NAME)
    props = world_object_pb2.AprilTagProperties(
        tag_id=tag_id, dimensions=geom.Vec2(x=size, y=size),
        frame_name_fiducial=f"fiducial_{tag_id}", frame_name_fiducial_filtered=f"filtered_fiducial_{tag_id}",
    )
    return world_object_pb2.WorldObject(
        id=request_id, name="client_tag", transforms_snapshot=geom.FrameTreeSnapshot(child_to_parent_edge_map=edges),
        apriltag_properties=props,
    )


def _listed(client: WorldObjectClient, object_id: int) -> world_object_pb2.WorldObject | None:
    return next((o for o in client.list_world_objects().world_objects if o.id == object_id), None)


def test_robot_fiducials_cannot_be_changed_or_deleted(world_objects: WorldObjectClient) -> None:
    detected = [o for o in world_objects.list_world_objects().world_objects if o.HasField("apriltag_properties")]
    assert detected, "the default scenario's tag is in view at start"
    tag = detected[0]
    assert world_objects.mutate_world_objects(make_delete_world_object_req(tag)).status == Status.STATUS_NO_PERMISSION
    assert world_objects.mutate_world_objects(make_change_world_object_req(tag)).status == Status.STATUS_NO_PERMISSION
    assert _listed(world_objects, tag.id) is not None


def test_added_object_gets_an_id_and_is_listed_with_its_frames(spot_robot: Robot, world_objects: WorldObjectClient) -> None:
    response = world_objects.mutate_world_objects(make_add_world_object_req(_tag_object()))
    assert response.status == Status.STATUS_OK
    object_id = response.mutated_object_id
    assert object_id >= FIRST_CLIENT_ID  # the service's id, not the request's 21, clear of the detections
    listed = _listed(world_objects, object_id)
    assert listed is not None and listed.name == "client_tag"
    assert listed.apriltag_properties.tag_id == 308
    assert listed.HasField("acquisition_time")
    snapshot = listed.transforms_snapshot
    vision_tform_special = get_a_tform_b(snapshot, VISION_FRAME_NAME, "my_special_frame")
    assert (vision_tform_special.x, vision_tform_special.y, vision_tform_special.z) == pytest.approx((2.0, -1.0, 0.5))
    # The robot's own frames are the robot's: odom from the robot, not the client's 9 m.
    state_snapshot = spot_robot.ensure_client("robot-state").get_robot_state().kinematic_state.transforms_snapshot
    assert get_a_tform_b(snapshot, VISION_FRAME_NAME, ODOM_FRAME_NAME).x == pytest.approx(
        get_a_tform_b(state_snapshot, VISION_FRAME_NAME, ODOM_FRAME_NAME).x, abs=1e-6
    )
    assert get_a_tform_b(snapshot, BODY_FRAME_NAME, "fiducial_308") is not None


def test_added_object_can_be_changed_then_deleted(world_objects: WorldObjectClient) -> None:
    object_id = world_objects.mutate_world_objects(make_add_world_object_req(_tag_object())).mutated_object_id
    changed = _tag_object(size=0.35, request_id=object_id)
    response = world_objects.mutate_world_objects(make_change_world_object_req(changed))
    assert (response.status, response.mutated_object_id) == (Status.STATUS_OK, object_id)
    listed = _listed(world_objects, object_id)
    assert listed is not None and listed.apriltag_properties.dimensions.x == pytest.approx(0.35)

    gone = world_object_pb2.WorldObject(id=object_id)
    assert world_objects.mutate_world_objects(make_delete_world_object_req(gone)).status == Status.STATUS_OK
    assert _listed(world_objects, object_id) is None
    assert world_objects.mutate_world_objects(make_delete_world_object_req(gone)).status == Status.STATUS_INVALID_MUTATION_ID
    assert world_objects.mutate_world_objects(make_change_world_object_req(changed)).status == Status.STATUS_INVALID_MUTATION_ID


def test_unknown_id_cannot_be_mutated(world_objects: WorldObjectClient) -> None:
    for make in (make_change_world_object_req, make_delete_world_object_req):
        response = world_objects.mutate_world_objects(make(_tag_object(request_id=FIRST_CLIENT_ID + 777)))
        assert response.status == Status.STATUS_INVALID_MUTATION_ID


def test_mutation_without_an_action_is_an_invalid_request(world_objects: WorldObjectClient) -> None:
    request = world_object_pb2.MutateWorldObjectRequest(mutation={"object": _tag_object()})
    with pytest.raises(InvalidRequestError):
        world_objects.mutate_world_objects(request)


def test_object_on_a_frame_the_robot_does_not_have_is_invalid(world_objects: WorldObjectClient) -> None:
    obj = _tag_object()
    edge = obj.transforms_snapshot.child_to_parent_edge_map["my_special_frame"]
    edge.parent_frame_name = "nowhere"
    assert world_objects.mutate_world_objects(make_add_world_object_req(obj)).status == Status.STATUS_INVALID_WORLD_OBJECT


def test_drawn_sphere_is_listed_as_a_drawable(world_objects: WorldObjectClient) -> None:
    response = world_objects.draw_sphere("debug_sphere", 0.5, 0.0, 0.0, BODY_FRAME_NAME, 0.05, (255, 0, 0, 1))
    assert response.status == Status.STATUS_OK
    drawables = world_objects.list_world_objects([WorldObjectType.WORLD_OBJECT_DRAWABLE]).world_objects
    assert [o.name for o in drawables] == ["debug_sphere"]
    sphere = drawables[0]
    assert get_a_tform_b(sphere.transforms_snapshot, BODY_FRAME_NAME, "debug_sphere").x == pytest.approx(0.5)
    tags = world_objects.list_world_objects([WorldObjectType.WORLD_OBJECT_APRILTAG]).world_objects
    assert all(o.id < FIRST_CLIENT_ID for o in tags) and all(o.id >= APRILTAG_ID_BASE for o in tags)


def test_object_expires_after_its_lifetime(world_objects: WorldObjectClient) -> None:
    obj = _tag_object()
    obj.object_lifetime.FromMilliseconds(1500)  # no acquisition_time: counted from when it is added
    object_id = world_objects.mutate_world_objects(make_add_world_object_req(obj)).mutated_object_id
    assert _listed(world_objects, object_id) is not None
    time.sleep(2.0)
    assert _listed(world_objects, object_id) is None
    expired = world_object_pb2.WorldObject(id=object_id)
    assert world_objects.mutate_world_objects(make_delete_world_object_req(expired)).status == Status.STATUS_INVALID_MUTATION_ID
