"""`spot-agent worker`: the agent's perception served as a Spot Network Compute Bridge worker.

- `models.py`: which models the worker offers (the agent's combined perception, each detector
  alone, the AprilTag finder) and one perception slot that runs any of them.
- `requests.py`: NCB requests in (JPEG / RAW images, rotation, min_confidence) and results out
  (`object_in_image` WorldObjects as the SDK's stock servers write them, an annotated JPEG).
- `stats.py`: per-model latency percentiles and counts.
- `servicer.py`: the `NetworkComputeBridgeWorker` gRPC service over a bounded pool of slots;
  `server.py`: the gRPC server it runs in.
- `registration.py`: the worker's entry in a robot's directory, kept alive.
"""
