"""`spot-agent worker --no-robot` as its own process, called as the SDK's stock clients call it;
overload, stats and a clean stop by signal."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import grpc
import pytest
from bosdyn.api import image_pb2, network_compute_bridge_pb2, network_compute_bridge_service_pb2_grpc

from tests.support.agent_process import ENV, wait_for
from tests.support.ncb import GREY_PHOTO, best_iou, compute_request, confidence, labelled_people, raw_image

ncb = network_compute_bridge_pb2
SERVING = re.compile(r"serving on 127\.0\.0\.1:(\d+)")


class Worker:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "worker", "--no-robot", "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        self.lines: list[str] = []
        first = self.proc.stdout.readline() if self.proc.stdout else ""
        found = SERVING.search(first)
        assert found, f"worker did not start: {first!r} {self.proc.stderr.read() if self.proc.stderr else ''}"
        self.address = f"127.0.0.1:{found.group(1)}"
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return code, "".join(self.lines), self.proc.stderr.read() if self.proc.stderr else ""


@pytest.fixture
def worker() -> Iterator[Worker]:
    running = Worker("--workers", "1", "--max-pending", "2", "--stats-interval", "1")
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait()


def test_stock_identify_object_without_robot_calls(worker: Worker) -> None:
    """Exactly what the SDK's `python/examples/network_compute_bridge/identify_object_without_robot.py`
    does: `--model-list` (ListAvailableModels, reading `models.data[i].model_name`), then one
    image read with cv2, encoded as JPEG from an RGB array, sent as `NetworkCompute` with its
    model and confidence, the objects' polygons and FloatValue confidences read back."""
    channel = grpc.insecure_channel(worker.address)
    stub = network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub(channel)
    server_data = ncb.NetworkComputeServerConfiguration(service_name="test")
    listed = stub.ListAvailableModels(ncb.ListAvailableModelsRequest(server_config=server_data))
    assert [m.model_name for m in listed.models.data][:1] == ["agent_perception"]

    image_in = cv2.imread(str(GREY_PHOTO))
    rgb = cv2.cvtColor(image_in, cv2.COLOR_BGR2RGB)
    success, im_buffer = cv2.imencode(".jpg", rgb)
    assert success
    image_proto = image_pb2.Image(format=image_pb2.Image.FORMAT_JPEG, cols=image_in.shape[1], rows=image_in.shape[0],
                                  data=im_buffer.tobytes(), pixel_format=image_pb2.Image.PIXEL_FORMAT_RGB_U8)
    input_data = ncb.NetworkComputeInputData(image=image_proto, model_name="agent_perception", min_confidence=0.7)
    response = stub.NetworkCompute(ncb.NetworkComputeRequest(input_data=input_data, server_config=server_data))
    names = [o.name for o in response.object_in_image]
    assert names == ["obj1_label_person"], names
    person = response.object_in_image[0]
    assert confidence(person) >= 0.7
    vertexes = [(v.x, v.y) for v in person.image_properties.coordinates.vertexes]
    box = (min(x for x, _ in vertexes), min(y for _, y in vertexes), max(x for x, _ in vertexes),
           max(y for _, y in vertexes))
    assert best_iou(box, labelled_people(GREY_PHOTO)) >= 0.5
    channel.close()


def test_overload_is_answered_at_once_and_stats_are_reported(worker: Worker) -> None:
    """One slot, two requests held: a burst of 12 gets answers or RESOURCE_EXHAUSTED, never a
    hang; the worker keeps serving; it reports its stats periodically and when stopped."""
    grey = cv2.imread(str(GREY_PHOTO), cv2.IMREAD_GRAYSCALE)
    request = compute_request(raw_image(grey), "agent_perception", 0.5)
    with grpc.insecure_channel(worker.address) as channel:
        stub = network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub(channel)

        def call(_: int) -> str:
            try:
                stub.NetworkCompute(request, timeout=60)
            except grpc.RpcError as exc:
                return exc.code().name
            return "OK"

        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(call, range(12)))
        assert set(outcomes) == {"OK", "RESOURCE_EXHAUSTED"}, outcomes
        after = stub.NetworkCompute(request, timeout=60)
        assert [o.name for o in after.object_in_image] == ["obj1_label_person"]
    wait_for("a periodic stats report", lambda: any("worker stats (periodic)" in line for line in worker.lines), 20)
    code, out, err = worker.stop()
    assert code == 0, err
    final = out.split("worker stats (final):")[1]
    answered = int(re.search(r"agent_perception: (\d+) answered", final).group(1))  # type: ignore[union-attr]
    assert answered == outcomes.count("OK") + 1
    refused = int(re.search(r"refused \(busy\): (\d+)", final).group(1))  # type: ignore[union-attr]
    assert refused == outcomes.count("RESOURCE_EXHAUSTED")
    assert re.search(r"agent_perception: .* latency p50 \d+(\.\d+)? ms p95 \d+(\.\d+)? ms", final)
    assert "Traceback" not in err


def test_an_address_in_use_or_a_bad_config_exits_2_saying_why(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "agent.cli", "worker", "--no-robot", "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], capture_output=True, text=True, env=ENV,
                              timeout=120)
    assert done.returncode == 2 and f"cannot serve on 127.0.0.1:{port}" in done.stderr, done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector: {score_threshold: 2}\n")
    done = subprocess.run([sys.executable, "-m", "agent.cli", "worker", "--no-robot", "--config", str(bad)],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 2 and "detector.score_threshold" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
