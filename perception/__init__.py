"""Perception: Spot ImageResponses -> Frames -> Detections (TFLite objects + AprilTag fiducials)."""
