"""Operator control over ZeroMQ (requests + event stream) and the Foxglove live view.

See PROTOCOL.md for the wire format, `server.ControlServer` for the agent side and
`client.ControlClient` / `op_cli` for the operator side.
"""
