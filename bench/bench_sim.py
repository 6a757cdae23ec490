"""Throughput of the simulated Spot, measured with the real SDK over TLS.

The sim runs in its own process (as `spot-agent sim` would); this process is the client.
Prints, in one run:
- images/s with the five body cameras requested concurrently (get_image_async), and the distinct
  frames/s per camera against the configured camera rate (ratio ~1.0 = the camera rate is met,
  cached frames served in between);
- robot-state calls/s from one thread and from several;
- robot-state latency while the image loop runs (it must not wait on rendering).

    python bench/bench_sim.py [--seconds 5] [--camera-rate 15] [--threads 4]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

CAMERA_SOURCES = (
    "frontleft_fisheye_image",
    "frontright_fisheye_image",
    "left_fisheye_image",
    "right_fisheye_image",
    "back_fisheye_image",
)


def _serve(camera_rate: float, ready: mp.Queue[tuple[int, str]], stop: mp.synchronize.Event) -> None:
    from sim.server import SimServer

    with SimServer.start(port=0, camera_rate_hz=camera_rate) as sim:
        ready.put((sim.port, str(sim.ca_path)))
        stop.wait()


def _connect(port: int, ca_path: str):  # type: ignore[no-untyped-def]
    import bosdyn.client

    sdk = bosdyn.client.create_standard_sdk("bench-sim", cert_resource_glob=ca_path)
    robot = sdk.create_robot("127.0.0.1")
    robot.update_secure_channel_port(port)
    robot.authenticate("spot", "spot")
    robot.time_sync.wait_for_sync()
    return robot


def bench_images(robot, seconds: float) -> tuple[float, dict[str, int]]:  # type: ignore[no-untyped-def]
    from bosdyn.client.image import ImageClient

    client = robot.ensure_client(ImageClient.default_service_name)
    client.get_image_from_sources(list(CAMERA_SOURCES))  # warm up: first renders build textures
    frames: dict[str, set[tuple[int, int]]] = defaultdict(set)
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        futures = [client.get_image_from_sources_async([name], timeout=2.0) for name in CAMERA_SOURCES]
        for future in futures:
            for response in future.result():
                stamp = response.shot.acquisition_time
                frames[response.source.name].add((stamp.seconds, stamp.nanos))
                count += 1
    elapsed = time.perf_counter() - start
    return count / elapsed, {name: len(stamps) for name, stamps in frames.items()}


def bench_state(robot, seconds: float, threads: int) -> float:  # type: ignore[no-untyped-def]
    from bosdyn.client.robot_state import RobotStateClient

    client = robot.ensure_client(RobotStateClient.default_service_name)
    client.get_robot_state()
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        while time.perf_counter() < deadline:
            client.get_robot_state(timeout=2.0)
            counts[index] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


def state_latency_under_image_load(robot, seconds: float) -> list[float]:  # type: ignore[no-untyped-def]
    from bosdyn.client.robot_state import RobotStateClient

    client = robot.ensure_client(RobotStateClient.default_service_name)
    latencies: list[float] = []
    done = threading.Event()

    def images() -> None:
        bench_images(robot, seconds)
        done.set()

    loader = threading.Thread(target=images)
    loader.start()
    while not done.is_set():
        started = time.perf_counter()
        client.get_robot_state(timeout=2.0)
        latencies.append((time.perf_counter() - started) * 1000.0)
        time.sleep(0.01)
    loader.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--camera-rate", type=float, default=15.0, help="sim camera rate (Hz)")
    parser.add_argument("--threads", type=int, default=4, help="client threads for the concurrent robot-state run")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    ready: mp.Queue[tuple[int, str]] = ctx.Queue()
    stop = ctx.Event()
    server = ctx.Process(target=_serve, args=(args.camera_rate, ready, stop), daemon=True)
    server.start()
    try:
        port, ca_path = ready.get(timeout=30)
        robot = _connect(port, ca_path)
        print(f"sim on 127.0.0.1:{port} (separate process), CA {Path(ca_path).name}, {mp.cpu_count()} CPUs")

        images_per_s, distinct = bench_images(robot, args.seconds)
        print(f"images (5 cameras concurrently, get_image_async): {images_per_s:8.1f} images/s")
        for name in CAMERA_SOURCES:
            rate = distinct.get(name, 0) / args.seconds
            print(f"  {name:26s} distinct frames {rate:5.1f}/s  ratio to camera rate {rate / args.camera_rate:4.2f}")

        single = bench_state(robot, args.seconds, threads=1)
        print(f"robot-state, 1 client thread:            {single:8.1f} calls/s")
        many = bench_state(robot, args.seconds, threads=args.threads)
        print(f"robot-state, {args.threads} client threads:           {many:8.1f} calls/s")

        latencies = sorted(state_latency_under_image_load(robot, args.seconds))
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        print(f"robot-state latency under image load:    p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  (n={len(latencies)})")
        robot._shutdown()
    finally:
        stop.set()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
