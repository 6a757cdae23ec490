"""Replaying and evaluating a fleet's footage in parallel: many inputs, one task per recording.

`inputs` turns files, folders and globs into the list of recordings; `executor` runs tasks in
this process or on a pool of worker processes, `ray_executor` on a Ray cluster, behind one
protocol (`choose` picks one from the options), results streamed back as they finish; `batch`
drives an executor with a progress bar and Ctrl-C handling; `replay_task` is one recording's
replay as plain data; `report` and `summary` are the fleet report (JSON and words) with the
regression comparison of two configurations; `replay_fleet` and `command` are `spot-agent
replay` for many inputs. `agent.eval` runs its images on the same executors.
"""
