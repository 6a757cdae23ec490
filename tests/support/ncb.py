"""Requests as NCB clients build them, and reading their answers (shared by the worker tests)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from bosdyn.api import image_pb2, network_compute_bridge_pb2
from google.protobuf import wrappers_pb2

from perception.boxes import iou
from perception.network_compute import object_box
from tests.support.devset import DEVSET_DIR, load_devset

Box = tuple[float, float, float, float]
GREY_PHOTO = DEVSET_DIR / "images" / "mpl_grace_hopper.jpg"  # a real grey photo of one person
CROWD_PHOTO = DEVSET_DIR / "images" / "vtest_0709.jpg"  # eight pedestrians


def labelled_people(path: object) -> tuple[Box, ...]:
    return next(im.persons for im in load_devset() if im.path == path)


def jpeg_image(bgr_or_grey: np.ndarray, pixel_format: int = image_pb2.Image.PIXEL_FORMAT_RGB_U8) -> image_pb2.Image:
    ok, data = cv2.imencode(".jpg", bgr_or_grey)
    assert ok
    rows, cols = bgr_or_grey.shape[:2]
    return image_pb2.Image(format=image_pb2.Image.FORMAT_JPEG, rows=rows, cols=cols, data=data.tobytes(),
                           pixel_format=pixel_format)


def raw_image(pixels: np.ndarray) -> image_pb2.Image:
    """RAW grey (H x W) or RGB (H x W x 3, in RGB order as the robot sends it)."""
    fmt = image_pb2.Image.PIXEL_FORMAT_GREYSCALE_U8 if pixels.ndim == 2 else image_pb2.Image.PIXEL_FORMAT_RGB_U8
    return image_pb2.Image(format=image_pb2.Image.FORMAT_RAW, rows=pixels.shape[0], cols=pixels.shape[1],
                           data=np.ascontiguousarray(pixels).tobytes(), pixel_format=fmt)


def compute_request(image: image_pb2.Image, model: str, min_confidence: float = 0.0, **input_fields: object
                    ) -> network_compute_bridge_pb2.NetworkComputeRequest:
    data = network_compute_bridge_pb2.NetworkComputeInputData(image=image, model_name=model,
                                                              min_confidence=min_confidence, **input_fields)
    return network_compute_bridge_pb2.NetworkComputeRequest(
        input_data=data, server_config=network_compute_bridge_pb2.NetworkComputeServerConfiguration(
            service_name="test"))


def confidence(obj: object) -> float:
    value = wrappers_pb2.FloatValue()
    assert obj.additional_properties.Unpack(value)  # type: ignore[attr-defined]
    return float(value.value)


def polygon_box(obj: object) -> Box:
    """The object's box, as the agent's remote detector reads it; our worker sends 4 corners."""
    assert len(obj.image_properties.coordinates.vertexes) == 4  # type: ignore[attr-defined]
    return object_box(obj)


def best_iou(box: Box, others: tuple[Box, ...]) -> float:
    return max((iou(box, o) for o in others), default=0.0)


class WorkerProcess:
    """`spot-agent worker` in its own process; `port` is the one it serves on."""

    def __init__(self, *args: str) -> None:
        import re
        import subprocess
        import sys

        from tests.support.agent_process import ENV

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "worker", "--host", "127.0.0.1", "--port", "0", "--workers", "1",
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        first = self.proc.stdout.readline() if self.proc.stdout else ""
        serving = re.search(r"serving on 127\.0\.0\.1:(\d+)", first)
        if serving is None:
            self.kill()
            raise AssertionError(f"the worker did not start: {first!r}")
        self.port = int(serving.group(1))

    def stop(self) -> tuple[int, str]:
        """SIGINT, as an operator's Ctrl-C: (exit code, stderr)."""
        import signal

        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        return code, self.proc.stderr.read() if self.proc.stderr else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def worker_config(tmp_path: Path, sim: object, **robot: object) -> Path:
    """The shipped sim.yaml pointed at a running sim, as `spot-agent worker --config` takes it."""
    import yaml

    from configs import SHIPPED_DIR

    data = yaml.safe_load((SHIPPED_DIR / "sim.yaml").read_text())
    data["robot"].update({"hostname": sim.host, "port": sim.port, "ca_cert": str(sim.ca_path),  # type: ignore[attr-defined]
                          "auth": {"username": sim.user, "password": sim.password,  # type: ignore[attr-defined]
                                   "username_env": "UNUSED_USER", "password_env": "UNUSED_PASSWORD"}, **robot})
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
