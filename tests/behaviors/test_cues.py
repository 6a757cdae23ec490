"""Cue filters and presence: K of N, hysteresis, timeout, camera windows."""

from __future__ import annotations

import math

import pytest

from behaviors.config import CueSpec, ImageRegion, Persistence
from behaviors.cues import CueState, CueTracker, matches
from perception.detection import FrameResult, Sighting

FL, FR, BACK = "frontleft_fisheye_image", "frontright_fisheye_image", "back_fisheye_image"


def seen(label: str = "person", t: float = 0.0, camera: str = FL, **kw) -> Sighting:
    args = dict(
        label=label,
        score=0.9,
        camera=camera,
        box=(100.0, 100.0, 300.0, 400.0),
        image_size=(640, 480),
        time_local=t,
        distance_m=2.0,
        bearing_rad=0.0,
    )
    args.update(kw)
    return Sighting(**args)  # type: ignore[arg-type]


def frame(t: float, *sightings: Sighting, camera: str = FL, seq: int = 0) -> FrameResult:
    return FrameResult(
        camera=camera, seq=seq, time_robot=t, time_local=t, sightings=list(sightings)
    )


def cue(**kw) -> CueSpec:
    kw.setdefault("label", "person")
    return CueSpec(**kw)


def feed(
    state: CueState, pattern: str, t0: float = 0.0, dt: float = 0.1, camera: str = FL
) -> list[bool]:
    """Feed frames ('x' = seen, '.' = not); return presence after each frame."""
    out = []
    for i, ch in enumerate(pattern):
        t = t0 + i * dt
        state.observe(
            frame(t, seen(t=t, camera=camera), camera=camera)
            if ch == "x"
            else frame(t, camera=camera)
        )
        out.append(state.present)
    return out


def test_present_after_k_of_n_frames_not_before() -> None:
    state = CueState("c", cue(persistence=Persistence(seen_in=3, of_last=5, clear_after_misses=3)))
    # seen, missed, seen, missed, seen: the 3rd hit in a 5-frame window makes it present
    assert feed(state, "x.x.x") == [False, False, False, False, True]


def test_hits_spread_wider_than_the_window_never_fire() -> None:
    state = CueState("c", cue(persistence=Persistence(seen_in=3, of_last=5, clear_after_misses=3)))
    assert not any(feed(state, "x...x...x...x"))


def test_hysteresis_needs_m_consecutive_misses_then_k_fresh_hits() -> None:
    state = CueState(
        "c", cue(persistence=Persistence(seen_in=2, of_last=3, clear_after_misses=3, timeout_s=10))
    )
    got = feed(state, "xx" + "..x" + "..." + "x" + "x")
    # present at frame 2; two misses then a hit keep it (not 3 consecutive); 3 misses clear it;
    # one hit is not enough again (windows emptied at clearing), the second is.
    assert got == [False, True, True, True, True, True, True, False, False, True]


def test_timeout_clears_when_frames_stop() -> None:
    state = CueState(
        "c", cue(persistence=Persistence(seen_in=2, of_last=3, clear_after_misses=5, timeout_s=0.5))
    )
    feed(state, "xx")
    assert state.present
    assert state.expire(0.5) is None  # 0.4 s since the last hit
    edge = state.expire(0.7)
    assert edge is not None and not edge.rising and edge.reason == "timeout" and edge.time == 0.7
    assert not state.present


def test_stale_hits_do_not_count_toward_k() -> None:
    state = CueState("c", cue(persistence=Persistence(seen_in=3, of_last=5, timeout_s=0.5)))
    feed(state, "xx")  # t = 0.0, 0.1
    # the camera stalls 2 s, then sees it once: two old hits + one fresh must not make it present
    state.observe(frame(2.1, seen(t=2.1)))
    assert not state.present


def test_object_seen_by_one_of_two_cameras_is_present_and_stays() -> None:
    tracker = CueTracker(
        {
            "c": cue(
                cameras=[FL, FR],
                persistence=Persistence(seen_in=3, of_last=5, clear_after_misses=4),
            )
        }
    )
    rising = []
    for i in range(6):  # frontleft sees it, frontright (interleaved) does not
        t = i * 0.05
        rising += tracker.observe(frame(t, seen(t=t), camera=FL))
        rising += tracker.observe(frame(t + 0.01, camera=FR))
    assert tracker.present("c")
    assert [e.rising for e in rising] == [True]
    # gone from both: 4 consecutive frames of the two cameras together clear it
    edges = []
    for i in range(2):
        t = 1.0 + i * 0.05
        edges += tracker.observe(frame(t, camera=FL))
        edges += tracker.observe(frame(t + 0.01, camera=FR))
    assert not tracker.present("c") and [e.reason for e in edges] == ["missed"]


def test_frames_of_unwatched_cameras_are_ignored() -> None:
    tracker = CueTracker(
        {
            "c": cue(
                cameras=[FL], persistence=Persistence(seen_in=1, of_last=1, clear_after_misses=1)
            )
        }
    )
    tracker.observe(frame(0.0, seen(camera=BACK), camera=BACK))
    assert not tracker.present("c")
    tracker.observe(frame(0.1, seen(t=0.1)))
    assert tracker.present("c")
    tracker.observe(frame(0.2, camera=BACK))  # a back frame without it is not a miss
    assert tracker.present("c")


@pytest.mark.parametrize(
    ("spec", "sighting", "expected"),
    [
        (dict(min_score=0.5), dict(score=0.49), False),
        (dict(min_score=0.5), dict(score=0.5), True),
        (dict(), dict(label="dog"), False),
        (dict(label="tag:3"), dict(label="tag:3"), True),
        (dict(label=3), dict(label="tag:3"), True),
        (dict(max_distance_m=1.5), dict(distance_m=1.4), True),
        (dict(max_distance_m=1.5), dict(distance_m=1.6), False),
        (dict(max_distance_m=1.5), dict(distance_m=None), False),  # unknown distance never matches
        (dict(min_distance_m=1.5), dict(distance_m=1.0), False),
        (dict(max_abs_bearing_deg=30), dict(bearing_rad=math.radians(29)), True),
        (dict(max_abs_bearing_deg=30), dict(bearing_rad=math.radians(-31)), False),
        (dict(max_abs_bearing_deg=30), dict(bearing_rad=None), False),
        # box 200x300 in 640x480 = 0.195 of the image
        (dict(min_box_area_frac=0.19), dict(), True),
        (dict(min_box_area_frac=0.2), dict(), False),
        # box centre (200, 250) = (0.3125, 0.52)
        (dict(region=ImageRegion(x1=0.0, y1=0.0, x2=0.5, y2=1.0)), dict(), True),
        (dict(region=ImageRegion(x1=0.5, y1=0.0, x2=1.0, y2=1.0)), dict(), False),
    ],
)
def test_cue_filters(spec: dict, sighting: dict, expected: bool) -> None:
    assert matches(cue(**spec), seen(**sighting)) is expected


def test_cue_keeps_the_best_sighting_of_the_frame() -> None:
    state = CueState("c", cue(persistence=Persistence(seen_in=1, of_last=1)))
    state.observe(frame(0.0, seen(score=0.6, distance_m=3.0), seen(score=0.8, distance_m=2.0)))
    assert state.last_sighting is not None and state.last_sighting.score == 0.8


def test_clearing_empties_the_windows_so_old_hits_do_not_refire() -> None:
    # M (2) <= N - K (3): after clearing, the window still holds 3 old hits; they must not count
    state = CueState(
        "c", cue(persistence=Persistence(seen_in=2, of_last=5, clear_after_misses=2, timeout_s=10))
    )
    assert feed(state, "xxx..x") == [False, True, True, True, False, False]
