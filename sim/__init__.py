"""Simulated Spot robot: a TLS gRPC server speaking Spot's protocol, with a small world and rendered cameras."""
