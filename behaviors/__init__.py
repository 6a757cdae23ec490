"""Behaviors: cues (what was seen) -> rules -> behaviors -> motion commands."""
