"""The MCAP recorder: Foxglove channels and schemas, bit-exact frames, a queue that never blocks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from bosdyn.api import geometry_pb2
from mcap.reader import make_reader
from skimage import data as skdata

from agent.core.seams import LeaseLost, RobotStatus
from agent.recording import format as fmt
from agent.recording.segments import RecordingConfig
from agent.recording.writer import Recorder, RecordingError
from agent.replay.mcap import McapRecording
from agent.replay.recorded import (
    RecordedCommand,
    RecordedEvent,
    RecordedFrame,
    RecordedObservation,
    RecordedStatus,
    RecordedStep,
)
from behaviors.commands import GoTo, Sit, Velocity
from perception.detection import FrameResult, Sighting
from perception.frame import Frame, PinholeIntrinsics

CAMERA = "frontleft_fisheye_image"
SENSOR = "frontleft_fisheye"
T0 = 1_700_000_000.123456789  # local clock
R0 = 5000.5  # robot clock


def _grey_jpeg() -> tuple[np.ndarray, bytes]:
    grey = cv2.resize(skdata.camera(), (640, 480))
    ok, jpeg = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED), jpeg.tobytes()


def _snapshot(x: float) -> geometry_pb2.FrameTreeSnapshot:
    """odom -> body -> frontleft_fisheye, as a robot's image response carries it."""
    snap = geometry_pb2.FrameTreeSnapshot()
    body = snap.child_to_parent_edge_map["body"]
    body.parent_frame_name = "odom"
    body.parent_tform_child.position.x = x
    body.parent_tform_child.rotation.w = 1.0
    cam = snap.child_to_parent_edge_map[SENSOR]
    cam.parent_frame_name = "body"
    cam.parent_tform_child.position.x = 0.4
    cam.parent_tform_child.position.z = 0.1
    cam.parent_tform_child.rotation.w = 0.5
    cam.parent_tform_child.rotation.x = -0.5
    cam.parent_tform_child.rotation.y = 0.5
    cam.parent_tform_child.rotation.z = -0.5
    snap.child_to_parent_edge_map["odom"].parent_frame_name = ""
    return snap


def _frame(i: int, image: np.ndarray, jpeg: bytes | None) -> Frame:
    return Frame(
        camera=CAMERA,
        image=image,
        acquisition_time_robot=R0 + i / 15,
        acquisition_time_local=T0 + i / 15,
        intrinsics=PinholeIntrinsics(fx=330.1, fy=330.2, cx=320.5, cy=240.25),
        frame_name_image_sensor=SENSOR,
        transforms_snapshot=_snapshot(0.1 * i),
        encoded=jpeg,
        seq=i,
        extra={"rotation_deg": -78, "not_json": object()},
    )


def _result(frame: Frame) -> FrameResult:
    sighting = Sighting(
        label="person",
        score=0.74,
        camera=frame.camera,
        box=(100.0, 50.5, 220.0, 400.0),
        image_size=(frame.width, frame.height),
        time_local=frame.acquisition_time_local,
        position_odom=(2.0, 0.5, 0.0),
        distance_m=2.06,
        bearing_rad=0.24,
    )
    return FrameResult(
        frame.camera, frame.seq, frame.acquisition_time_robot, frame.acquisition_time_local,
        [sighting], detect_ms=14.5, age_at_detection_s=0.05,
    )


def _record_session(path: Path, n: int = 6) -> tuple[list[Frame], list]:
    image, jpeg = _grey_jpeg()
    frames = [_frame(i, image, jpeg) for i in range(n)]
    commands = [Velocity(0.2, 0.0, 0.3, 0.6), Sit(), GoTo(1.0, 2.0, 0.5, "odom", 5.0)]
    with Recorder(path, metadata={"rules": "configs/rules/demo.yaml"}) as rec:
        for i, frame in enumerate(frames):
            assert rec.record_frame(frame)
            assert rec.record_observed(_result(frame), frame.acquisition_time_local + 0.02)
            assert rec.record_step(frame.acquisition_time_local + 0.03, "cue" if i % 2 else "tick")
            status = RobotStatus(True, True, False, True, odom_x=0.1 * i, detail="ok")
            assert rec.record_status(frame.acquisition_time_local + 0.031, status)
        assert rec.record_status(T0 + 0.35, None, LeaseLost("tablet took it"))
        assert rec.record_event("cue_fired", T0 + 0.3, {"rule": "person_sit"})
        for k, cmd in enumerate(commands):
            assert rec.record_command(T0 + 0.4 + k, cmd, "sent" if k else "refused: too fast")
    return frames, commands


def test_recording_opens_with_mcap_reader_with_foxglove_schemas(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    frames, commands = _record_session(path)
    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None
        topics = {
            c.topic: (summary.schemas[c.schema_id].name, c.message_encoding)
            for c in summary.channels.values()
        }
        assert topics == {
            f"/camera/{CAMERA}/compressed": ("foxglove.CompressedImage", "protobuf"),
            f"/camera/{CAMERA}/annotations": ("foxglove.ImageAnnotations", "protobuf"),
            f"/camera/{CAMERA}/meta": ("spot_cue_agent.FrameMeta", "json"),
            f"/camera/{CAMERA}/calibration": ("foxglove.CameraCalibration", "protobuf"),
            "/tf": ("foxglove.FrameTransforms", "protobuf"),
            "/sightings": ("foxglove.SceneUpdate", "protobuf"),
            "/detections": ("spot_cue_agent.ObservedResult", "json"),
            "/pipeline/steps": ("spot_cue_agent.ControlStep", "json"),
            "/robot/status": ("spot_cue_agent.RobotStatus", "json"),
            "/events": ("spot_cue_agent.EngineEvent", "json"),
            "/commands": ("spot_cue_agent.Command", "json"),
        }
        counts = {summary.channels[cid].topic: n for cid, n in summary.statistics.channel_message_counts.items()}
        assert counts[f"/camera/{CAMERA}/compressed"] == len(frames)
        assert counts["/commands"] == len(commands)
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
        assert metadata[fmt.RECORDING_METADATA]["rules"] == "configs/rules/demo.yaml"
        assert json.loads(metadata[fmt.RECORDING_STATS_METADATA]["dropped_total"]) == 0
        # Frames are logged at their local acquisition time.
        image_times = [
            m.log_time for _, c, m in reader.iter_messages(topics=[f"/camera/{CAMERA}/compressed"])
        ]
        assert image_times == [fmt.to_ns(f.acquisition_time_local) for f in frames]


def test_frames_round_trip_bit_exact_with_meta(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    frames, commands = _record_session(path)
    recording = McapRecording(path)
    items = list(recording.items())
    assert recording.report.complete and recording.report.problems == []
    got = [i.frame for i in items if isinstance(i, RecordedFrame)]
    assert len(got) == len(frames)
    for original, replayed in zip(frames, got):
        assert replayed.encoded == original.encoded  # the JPEG bytes, not re-encoded
        assert np.array_equal(replayed.image, original.image)
        assert replayed.acquisition_time_local == original.acquisition_time_local  # exact float
        assert replayed.acquisition_time_robot == original.acquisition_time_robot
        assert replayed.intrinsics == original.intrinsics
        assert replayed.frame_name_image_sensor == SENSOR
        assert replayed.seq == original.seq
        assert replayed.transforms_snapshot == original.transforms_snapshot
        assert replayed.extra == {"rotation_deg": -78}
    assert recording.cameras == [CAMERA]

    observations = [i for i in items if isinstance(i, RecordedObservation)]
    control = [i for i in items if isinstance(i, RecordedStep)]
    assert [o.result for o in observations] == [_result(f) for f in frames]
    # Engine inputs are numbered in the order they happened: observe, step, observe, step...
    assert [o.step for o in observations] == list(range(0, 2 * len(frames), 2))
    assert [c.step for c in control] == list(range(1, 2 * len(frames), 2))
    assert [c.trigger for c in control][:3] == ["tick", "cue", "tick"]
    statuses = [i for i in items if isinstance(i, RecordedStatus)]
    assert statuses[2].status == RobotStatus(True, True, False, True, odom_x=0.2, detail="ok")
    assert (statuses[-1].status, statuses[-1].error_kind) == (None, "LeaseLost")
    assert statuses[-1].error_message == "tablet took it"
    assert [c.command for c in items if isinstance(c, RecordedCommand)] == commands
    assert [c.outcome for c in items if isinstance(c, RecordedCommand)][0] == "refused: too fast"
    assert [e.kind for e in items if isinstance(e, RecordedEvent)] == ["cue_fired"]


def test_meta_has_readable_camera_transforms(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    _record_session(path, n=2)
    with open(path, "rb") as f:
        metas = [
            json.loads(m.data)
            for _, _, m in make_reader(f).iter_messages(topics=[f"/camera/{CAMERA}/meta"])
        ]
    transforms = metas[1]["transforms"]
    assert transforms["body_tform_camera"][:3] == pytest.approx([0.4, 0.0, 0.1])
    assert transforms["odom_tform_camera"][:3] == pytest.approx([0.5, 0.0, 0.1])  # body at x=0.1
    assert "vision_tform_camera" not in transforms  # not in this snapshot
    assert metas[1]["intrinsics"] == {"fx": 330.1, "fy": 330.2, "cx": 320.5, "cy": 240.25}


def _decoded(path: Path, topic: str) -> list[tuple[int, Any]]:
    """(log time, message) of a protobuf topic, decoded with the schema stored in the file."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    out = []
    with open(path, "rb") as f:
        for schema, _, message in make_reader(f).iter_messages(topics=[topic]):
            pool = descriptor_pool.DescriptorPool()
            for file in descriptor_pb2.FileDescriptorSet.FromString(schema.data).file:
                pool.Add(file)
            cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.name))
            out.append((message.log_time, cls.FromString(message.data)))
    return out


def _ns(stamp: Any) -> int:
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)


def test_annotations_carry_the_image_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    frames, _ = _record_session(path, n=3)
    decoded = [msg for _, msg in _decoded(path, f"/camera/{CAMERA}/annotations")]
    assert [_ns(m.timestamp) for m in decoded] == [fmt.to_ns(f.acquisition_time_local) for f in frames]
    assert [(p.x, p.y) for p in decoded[0].points[0].points] == [
        (100.0, 50.5), (220.0, 50.5), (220.0, 400.0), (100.0, 400.0)
    ]
    assert decoded[0].texts[0].text == "person 0.74 2.1m"


def test_transforms_place_camera_and_body_in_odom(tmp_path: Path) -> None:
    """The 3D panel needs odom -> body -> camera sensor frame, at each image's time."""
    path = tmp_path / "run.mcap"
    frames, _ = _record_session(path, n=3)
    tfs = _decoded(path, "/tf")
    assert [t for t, _ in tfs] == [fmt.to_ns(f.acquisition_time_local) for f in frames]
    _, last = tfs[-1]
    edges = {(t.parent_frame_id, t.child_frame_id): t for t in last.transforms}
    assert set(edges) == {("odom", "body"), ("body", SENSOR)}
    assert edges[("odom", "body")].translation.x == pytest.approx(0.2)  # frame 2: body at x=0.2
    camera = edges[("body", SENSOR)]
    assert (camera.translation.x, camera.translation.z) == pytest.approx((0.4, 0.1))
    assert (camera.rotation.w, camera.rotation.x) == pytest.approx((0.5, -0.5))
    assert _ns(camera.timestamp) == fmt.to_ns(frames[-1].acquisition_time_local)
    # Images and calibrations name the same sensor frame, so the panel can place them.
    (_, image), *_ = _decoded(path, f"/camera/{CAMERA}/compressed")
    (_, calibration), *_ = _decoded(path, f"/camera/{CAMERA}/calibration")
    assert image.frame_id == calibration.frame_id == SENSOR
    assert list(calibration.K) == [330.1, 0.0, 320.5, 0.0, 330.2, 240.25, 0.0, 0.0, 1.0]
    assert (calibration.width, calibration.height) == (640, 480)


def test_sightings_are_entities_at_their_odom_position(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    frames, _ = _record_session(path, n=2)
    updates = _decoded(path, "/sightings")
    assert [t for t, _ in updates] == [fmt.to_ns(f.acquisition_time_local) for f in frames]
    (entity,) = updates[0][1].entities
    assert entity.frame_id == "odom"
    (sphere,) = entity.spheres
    position = sphere.pose.position
    assert (position.x, position.y, position.z) == (2.0, 0.5, 0.0)
    assert entity.texts[0].text.startswith("person 0.74")


def test_frames_without_jpeg_are_stored_losslessly(tmp_path: Path) -> None:
    path = tmp_path / "raw.mcap"
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    bgr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = rng.random((24, 42), dtype=np.float32) * 5.0
    with Recorder(path) as rec:
        rec.record_frame(Frame("left_fisheye_image", grey, 1.0, 1.0))
        rec.record_frame(Frame("hand_color_image", bgr, 1.5, 1.5))
        rec.record_frame(Frame("frontleft_depth", depth, 2.0, 2.0, is_depth=True))
    got = {f.camera: f for f in McapRecording(path).frames()}
    assert np.array_equal(got["left_fisheye_image"].image, grey)
    assert np.array_equal(got["hand_color_image"].image, bgr)
    assert got["frontleft_depth"].image.dtype == np.float32
    assert np.array_equal(got["frontleft_depth"].image, depth)
    assert got["frontleft_depth"].is_depth
    assert all(f.encoded is None for f in got.values())  # they never were JPEG


def test_full_queue_drops_and_counts_never_blocks(tmp_path: Path) -> None:
    path = tmp_path / "slow.mcap"
    image, jpeg = _grey_jpeg()
    rec = Recorder(path, queue_size=8, frame_fill_limit=0.5)
    stuck = threading.Event()
    release = threading.Event()
    original = rec._write_frame

    def slow_disk(frame: Frame) -> None:  # the writer is stuck until the test lets it go
        stuck.set()
        release.wait()
        original(frame)

    rec._write_frame = slow_disk  # type: ignore[method-assign]
    accepted: list[bool] = []

    def produce() -> None:
        accepted.append(rec.record_frame(_frame(0, image, jpeg)))
        assert stuck.wait(5)
        for i in range(1, 200):
            accepted.append(rec.record_frame(_frame(i, image, jpeg)))
        for i in range(200):
            accepted.append(rec.record_step(float(i)))

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(10)
    assert not producer.is_alive(), "record_* blocked on a full queue"
    stats = rec.stats()
    # The stuck writer holds frame 0; frames may fill half the queue, ticks the rest.
    assert sum(accepted[:200]) == 1 + 4
    assert sum(accepted[200:]) == 8 - 4
    assert stats.dropped == {"frame": 195, "step": 196}
    release.set()
    final = rec.close()
    assert final.written == {"frame": 5, "step": 4}
    assert final.dropped_total == 391
    recording = McapRecording(path)
    assert len(list(recording.items())) == 9
    assert any("dropped 391 items" in p.what for p in recording.report.problems)
    # Tick steps 4.. were dropped: replay is told the engine inputs are incomplete.
    assert any("engine steps" in p.what for p in recording.report.problems)


def test_after_close_records_are_refused(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "x.mcap")
    rec.record_step(0.5)
    rec.close()
    assert rec.record_step(1.0) is False
    assert rec.close().written_total == 1  # closing twice is fine
    assert (tmp_path / "x.mcap").exists()


def test_a_recording_that_never_started_leaves_no_file(tmp_path: Path) -> None:
    """E.g. the robot could not be reached: the next run may record to the same path."""
    Recorder(tmp_path / "empty.mcap").close()
    assert not (tmp_path / "empty.mcap").exists()
    Recorder(tmp_path / "kept.mcap").close(keep_empty=True)
    with open(tmp_path / "kept.mcap", "rb") as f:
        assert make_reader(f).get_summary() is not None


def test_refuses_to_overwrite_or_write_nowhere(tmp_path: Path) -> None:
    existing = tmp_path / "old.mcap"
    existing.write_bytes(b"precious")
    with pytest.raises(RecordingError, match="already exists"):
        Recorder(existing)
    assert existing.read_bytes() == b"precious"
    with pytest.raises(RecordingError, match="does not exist"):
        Recorder(tmp_path / "missing_dir" / "x.mcap")


def test_reduced_jpeg_decode_and_registered_depth_replay_identically(tmp_path: Path) -> None:
    """Live may decode a big JPEG at 1/2 size; replay must hand the detector the same pixels."""
    path = tmp_path / "reduced.mcap"
    _, jpeg = _grey_jpeg()
    reduced = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_2)
    depth = np.full((60, 80), np.nan, np.float32)
    depth[10:20, 10:20] = 2.5
    frame = Frame(CAMERA, reduced, 1.0, 2.0, encoded=jpeg, image_scale=0.5, depth_m=depth)
    with Recorder(path) as rec:
        rec.record_frame(frame)
    recording = McapRecording(path)
    (got,) = list(recording.frames())
    assert recording.report.problems == []
    assert got.image_scale == 0.5 and got.original_size == (640, 480)
    assert np.array_equal(got.image, reduced)
    assert got.depth_m is not None
    assert np.array_equal(got.depth_m, depth, equal_nan=True)


def test_recordings_hold_no_machine_paths(tmp_path: Path) -> None:
    """A recording is read on other machines: shipped files by their shipped name, other
    files by their name, never this machine's absolute paths."""
    from agent.config import config_overrides, load_agent_config
    from agent.recording.metadata import recording_metadata
    from configs import SHIPPED_DIR

    own_rules = tmp_path / "site" / "my_rules.yaml"
    own_rules.parent.mkdir()
    own_rules.write_text((SHIPPED_DIR / "rules" / "default.yaml").read_text())
    config = load_agent_config(SHIPPED_DIR / "agent.yaml")
    for rules, expected in ((SHIPPED_DIR / "rules" / "follow.yaml", "rules/follow.yaml"),
                            (own_rules, "my_rules.yaml")):
        path = tmp_path / f"{expected.replace('/', '_')}.mcap"
        cfg = config_overrides(config, rules=rules)
        with Recorder(path, metadata=recording_metadata(cfg, started_local=T0, replay_of=str(path))) as rec:
            image, jpeg = _grey_jpeg()
            rec.record_frame(_frame(0, image, jpeg))
        with open(path, "rb") as f:
            reader = make_reader(f)
            header = {m.name: m.metadata for m in reader.iter_metadata()}[fmt.RECORDING_METADATA]
            everything = [v.encode() for v in header.values()]
            everything += [m.data for _, _, m in reader.iter_messages()]
        assert header["rules_name"] == Path(expected).name  # the rules travel as text (rules_yaml)
        assert header["detector_model"] == "nanodet_g_coco_int8.tflite"  # and by its sha256
        assert header["replay_of"] == path.name
        for machine_path in (str(tmp_path), str(SHIPPED_DIR.parent)):
            assert not any(machine_path.encode() in data for data in everything), machine_path


# --- segments, cap, bounded memory, disk full ----------------------------------------------

def _record_steps(rec: Recorder, n: int, image: np.ndarray, jpeg: bytes) -> None:
    """n frames, each followed by its observation and a control step (engine inputs)."""
    for i in range(n):
        frame = _frame(i, image, jpeg)
        while not rec.record_frame(frame):  # wait for room: this test wants every frame
            time.sleep(0.001)
        while not rec.record_observed(_result(frame), frame.acquisition_time_local + 0.01):
            time.sleep(0.001)
        while not rec.record_step(frame.acquisition_time_local + 0.02):
            time.sleep(0.001)


def _chunk_index_count(path: Path) -> int:
    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None, f"{path.name} has no summary: not closed properly"
    return len(summary.chunk_indexes)


def test_segments_rotate_by_size_each_complete_and_replayable_alone(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    image, jpeg = _grey_jpeg()  # ~33 kB a frame
    limits = RecordingConfig(max_file_mb=0.5, max_total_mb=100)
    with Recorder(path, chunk_size=64 * 1024, limits=limits, metadata={"rules": "x.yaml"},
                  compression=None) as rec:  # uncompressed: sizes add up predictably
        _record_steps(rec, 60, image, jpeg)
    names = [p.name for p in rec.segments]
    assert names[:3] == ["run.mcap", "run-001.mcap", "run-002.mcap"] and len(names) >= 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    frames_seen = []
    for index, segment in enumerate(rec.segments):
        assert segment.stat().st_size < 0.5 * 1024 * 1024 + 64 * 1024 + 16 * 1024
        recording = McapRecording(segment)
        items = list(recording.items())
        # Complete on its own: summary, its own header and stats, engine steps from 0, no loss.
        assert recording.report.problems == [], (segment.name, recording.report.problems)
        header = recording.scan.metadata[fmt.RECORDING_METADATA]
        assert header["rules"] == "x.yaml" and header["segment"] == str(index)
        assert header["previous_segment"] == (names[index - 1] if index else "")
        steps = [i.step for i in items if isinstance(i, (RecordedObservation, RecordedStep))]
        assert steps == list(range(len(steps)))
        frames_seen += [i.frame.seq for i in items if isinstance(i, RecordedFrame)]
        if index:  # a later segment's clock starts where the previous one ended
            assert float(header["started_local"]) <= min(
                i.frame.acquisition_time_local for i in items if isinstance(i, RecordedFrame))
    assert frames_seen == list(range(60))  # every frame once, in order, across the segments


def test_segments_rotate_by_age(tmp_path: Path) -> None:
    image, jpeg = _grey_jpeg()
    with Recorder(tmp_path / "run.mcap", limits=RecordingConfig(max_file_s=0.3)) as rec:
        for i in range(8):
            rec.record_frame(_frame(i, image, jpeg))
            time.sleep(0.1)
    assert len(rec.segments) >= 2
    assert sum(len(list(McapRecording(p).frames())) for p in rec.segments) == 8


def test_total_cap_deletes_the_oldest_segments_never_the_current(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    image, jpeg = _grey_jpeg()
    limits = RecordingConfig(max_file_mb=0.25, max_total_mb=0.75)
    with Recorder(path, chunk_size=32 * 1024, limits=limits, compression=None) as rec:
        _record_steps(rec, 80, image, jpeg)  # ~3 MB recorded
    on_disk = sorted(tmp_path.iterdir())
    assert on_disk == sorted(rec.segments)
    assert not path.exists()  # the oldest went first
    assert sum(p.stat().st_size for p in on_disk) <= 0.75 * 1024 * 1024 + 64 * 1024
    assert max(int(p.stem.split("-")[1]) for p in on_disk) >= 8  # it kept recording
    newest = McapRecording(rec.segments[-1])
    assert [f.seq for f in newest.frames()][-1] == 79 and newest.report.problems == []


def test_writer_index_held_in_memory_is_bounded_by_the_segment_size(tmp_path: Path) -> None:
    """The leak: an MCAP writer holds one chunk index per chunk until the file closes (the
    summary is written from them), so one endless file grows memory without bound. Each
    segment's summary holds exactly what its writer held: it stays under max_file / chunk."""
    image, jpeg = _grey_jpeg()
    chunk = 16 * 1024
    limits = RecordingConfig(max_file_mb=0.25, max_total_mb=100)
    with Recorder(tmp_path / "run.mcap", chunk_size=chunk, limits=limits, compression=None) as rec:
        _record_steps(rec, 100, image, jpeg)  # ~4 MB: ~250 chunks in one file without segments
    bound = int(0.25 * 1024 * 1024 / chunk) + 2
    held = [_chunk_index_count(p) for p in rec.segments]
    assert sum(held) > 3 * bound  # the run produced far more chunks than one segment holds
    assert max(held) <= bound, held


def test_an_existing_segment_blocks_a_new_recording(tmp_path: Path) -> None:
    (tmp_path / "run-003.mcap").write_bytes(b"an old run")
    with pytest.raises(RecordingError, match="run-003.mcap: already exists"):
        Recorder(tmp_path / "run.mcap")
    assert (tmp_path / "run-003.mcap").read_bytes() == b"an old run"


def test_limits_must_hold_a_segment() -> None:
    with pytest.raises(ValueError, match="at least twice max_file_mb"):
        RecordingConfig(max_file_mb=100, max_total_mb=150)


_FILL_THE_DISK = r"""
import json, logging, sys, time
sys.path.insert(0, sys.argv[2])
import tests.agent.recording.test_writer as t
from agent.recording.writer import Recorder

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append((record.levelname, record.name, record.getMessage()))
logging.basicConfig(level=logging.INFO, handlers=[Keep()])
image, jpeg = t._grey_jpeg()
rec = Recorder(sys.argv[1], chunk_size=32 * 1024, compression=None)
accepted, slowest = [], 0.0
for i in range(600):  # ~24 MB offered to a 2 MB disk, at 150 frames/s
    started = time.perf_counter()
    accepted.append(rec.record_frame(t._frame(i, image, jpeg)))
    rec.record_step(t.T0 + i / 15)
    slowest = max(slowest, time.perf_counter() - started)
    time.sleep(1 / 150)
failure_before_close = rec.failure
stats = rec.close(timeout_s=10)
print(json.dumps({
    "failure": failure_before_close, "accepted": sum(accepted), "last_accepted": max(
        (i for i, a in enumerate(accepted) if a), default=-1),
    "refused": stats.refused_after_failure, "written": stats.written, "slowest_s": slowest,
    "logs": [r for r in records if r[0] in ("WARNING", "ERROR")],
}))
"""


def _fill_the_disk(args: list[str], path: Path, **kwargs: Any) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [*args, sys.executable, "-c", _FILL_THE_DISK, str(path), str(root)],
        capture_output=True, text=True, timeout=120, cwd=root, **kwargs,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def _check_one_clear_stop(
    outcome: dict[str, Any], reason: str, path: Path, on_disk: Path | None = None
) -> None:
    assert outcome["failure"].startswith(f"{reason}: {path}"), outcome["failure"]
    # One clear event, no flood: a single error naming the condition, nothing else logged.
    errors = [r for r in outcome["logs"] if r[0] == "ERROR"]
    assert len(errors) == 1 and f"recording stopped: {reason}" in errors[0][2], outcome["logs"]
    assert len(outcome["logs"]) <= 2, outcome["logs"]  # + at most the low-space warning
    # Recording stopped, the producer did not: everything after was refused at once.
    assert outcome["last_accepted"] < 599 and outcome["refused"] > 0
    assert outcome["slowest_s"] < 0.5  # never blocked (generous: a loaded CI machine)
    # What reached the disk before it filled replays.
    assert len(list(McapRecording(on_disk or path).frames())) > 10


def test_a_full_filesystem_stops_recording_once_and_clearly(tmp_path: Path) -> None:
    """A real ENOSPC: a 2 MB tmpfs mounted in a private mount namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) not installed")
    mount = tmp_path / "small_disk"
    mount.mkdir()
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f"mount -t tmpfs -o size=2m tmpfs {mount}"], capture_output=True, text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"no private tmpfs here (unprivileged namespaces off?): {probe.stderr.strip()}")
    # The tmpfs lives only inside the child's namespace: it reports, the test checks its JSON.
    path = mount / "run.mcap"
    script = (f"mount -t tmpfs -o size=2m tmpfs {mount} && \"$@\" && "
              f"cp {mount}/run.mcap {tmp_path}/salvaged.mcap")
    outcome = _fill_the_disk(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"], path)
    _check_one_clear_stop(outcome, "disk full", path, tmp_path / "salvaged.mcap")


def test_a_file_size_limit_stops_recording_once_and_clearly(tmp_path: Path) -> None:
    """A real EFBIG: the kernel refuses writes past RLIMIT_FSIZE (2 MB) in the child."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, 2 * 1024 * 1024))

    path = tmp_path / "run.mcap"
    outcome = _fill_the_disk([], path, preexec_fn=limit)
    _check_one_clear_stop(outcome, "file size limit reached", path)
