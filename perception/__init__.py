"""Perception: Spot ImageResponses -> Frames -> Detections (TFLite objects + AprilTag fiducials).

- `decode`: ImageResponse -> Frame (JPEG, RAW grey/RGB/RGBA, DEPTH_U16), `DropCounter`.
- `rotation`: upright rotation of sideways cameras, boxes mapped back.
- `detector`: `Detector` protocol, `TFLiteDetector` (LiteRT / tflite_runtime), `load_interpreter`;
  `config.DetectorConfig`; `decoders/`: one output decoder per model format (NanoDet, SSD
  post-processed, YOLOv8); `preprocess`: image -> input tensor.
- `fiducials`: AprilTag 36h11 with PnP pose; `localize`: sightings placed in odom.
- `perceiver.Perceiver`: Frame -> FrameResult, what the agent's worker threads call.
- `cli.detect_command`: `spot-agent detect`.
"""
