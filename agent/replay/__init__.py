"""Replay: recorded footage (MCAP recordings, videos, image folders) through the agent's own
pipeline with a dry-run robot, deterministically: same input and config, same commands at the
same times, however fast the machine.

Inputs: `sources` (open the right one), `mcap`, `files`, with `reading` and `images` shared.
Driving time: `timed` (frame by frame), `recorded_run` (a live run's own inputs), `timing`,
`detect_ahead`, `dry_run`. Running and reporting: `runner`, `config`, `result`, `compare`,
`summary`, `annotated_video`, `command` (the CLI).
"""
