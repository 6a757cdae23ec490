"""Replaying and evaluating a fleet's footage in parallel: many inputs, one task per recording.

`inputs` turns files, folders and globs into the list of recordings; `executor` runs tasks on
this machine (in-process or a process pool) or on a Ray cluster (`ray_executor`) behind one
protocol, results streamed back as they finish; `batch` drives it with a progress bar and
Ctrl-C handling; `replay_task` is one recording's replay as plain data; `report` is the fleet
report (JSON and a readable summary) and the regression comparison of two configurations.
"""
