"""`spot-agent worker` behind the robot's Network Compute Bridge: the same SDK calls the stock
`python/examples/network_compute_bridge/identify_object.py` makes (`NetworkComputeBridgeClient`,
`--model-list` through the directory, then `--image-source frontleft_fisheye_image` with and
without `--disable-rotation`), and the current `input_data_bridge` form (the bridge calls the
worker's WorkerCompute). Needs the sim's bridge (`sim/services/network_compute_bridge.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bosdyn.api import network_compute_bridge_pb2
from bosdyn.client.directory import DirectoryClient
from bosdyn.client.network_compute_bridge_client import NetworkComputeBridgeClient
from bosdyn.client.robot import Robot

from sim.server import SimServer
from tests.support.agent_process import wait_for
from tests.support.ncb import WorkerProcess, confidence, worker_config

ncb = network_compute_bridge_pb2
Rotate = ncb.NetworkComputeInputData.RotateImage
SERVICE = "spot-cue-agent-worker"


@pytest.fixture
def bridge(sim: SimServer, spot_robot: Robot, tmp_path: Path) -> Iterator[NetworkComputeBridgeClient]:
    worker = WorkerProcess("--config", str(worker_config(tmp_path, sim)), "--host-ip", "127.0.0.1")
    try:
        directory = spot_robot.ensure_client(DirectoryClient.default_service_name)
        wait_for("the worker in the directory",
                 lambda: SERVICE in [s.name for s in directory.list() if s.type == "bosdyn.api.NetworkComputeBridgeWorker"],
                 60, every=0.2)
        yield spot_robot.ensure_client(NetworkComputeBridgeClient.default_service_name)
    finally:
        worker.kill()


def _labels(objects: object) -> list[str]:
    return [o.name.split("_label_", 1)[1] for o in objects]  # type: ignore[attr-defined]


def test_identify_object_lists_our_models_and_finds_the_person_ahead(bridge: NetworkComputeBridgeClient) -> None:
    server = ncb.NetworkComputeServerConfiguration(service_name=SERVICE)
    listed = bridge.list_available_models_command(ncb.ListAvailableModelsRequest(server_config=server))
    assert [m.model_name for m in listed.models.data][:1] == ["agent_perception"]

    def identify(rotate: int, model: str = "agent_perception") -> object:
        source = ncb.ImageSourceAndService(image_source="frontleft_fisheye_image")
        data = ncb.NetworkComputeInputData(image_source_and_service=source, model_name=model,
                                           min_confidence=0.5, rotate_image=rotate)
        return bridge.network_compute_bridge_command(ncb.NetworkComputeRequest(input_data=data, server_config=server))

    turned = identify(Rotate.ROTATE_IMAGE_ALIGN_HORIZONTAL)
    assert "person" in _labels(turned.object_in_image) and "tag:1" in _labels(turned.object_in_image)  # type: ignore[attr-defined]
    assert all(confidence(o) >= 0.5 for o in turned.object_in_image)  # type: ignore[attr-defined]
    # The rotation reaches the worker: the COCO detector alone is sure of the person only upright.
    # (The person model also finds her lying sideways, so agent_perception would find her both ways.)
    coco = "nanodet_g_coco_int8"
    assert "person" in _labels(identify(Rotate.ROTATE_IMAGE_ALIGN_HORIZONTAL, coco).object_in_image)  # type: ignore[attr-defined]
    sideways = identify(Rotate.ROTATE_IMAGE_NO_ROTATION, coco)  # --disable-rotation: the frame as the camera took it
    assert "person" not in _labels(sideways.object_in_image)  # type: ignore[attr-defined]


def test_bridge_input_reaches_worker_compute_with_the_camera(bridge: NetworkComputeBridgeClient) -> None:
    request = ncb.NetworkComputeRequest(server_config=ncb.NetworkComputeServerConfiguration(service_name=SERVICE))
    request.input_data_bridge.image_sources_and_services.add(image_source="frontleft_fisheye_image")
    request.input_data_bridge.parameters.model_name = "agent_perception"
    response = bridge.network_compute_bridge_command(request)
    objects = [o for image in response.output_images.values() for o in image.object_in_image]
    assert "person" in _labels(objects)
