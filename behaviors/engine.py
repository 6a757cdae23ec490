"""The cue engine: frames in, motion commands out. Cues -> rules -> one behavior at a time.

Plain data in and out, no I/O, no clock of its own: time comes in as arguments, so the same
inputs always give the same commands and events (replay depends on it). The agent calls
`observe` for each frame result, `tick` at ~10 Hz, and `launch` / `stop` / `halt` /
`pause_cues` / `resume_cues` for operators and safety.

Arbitration, one behavior at a time:
- a rule fires on its cue's rising edge only (cooldown permitting); nothing resumes by itself
  after a pre-emption, `stop` or `halt`: the cue has to clear and be seen again;
- a firing rule pre-empts a running cue behavior of lower priority; equal or lower is ignored;
- an operator launch pre-empts any cue behavior (and a previous operator launch), and cue rules
  are ignored while it runs, except rules marked `safety`, which pre-empt everything else;
- `stop` always wins: it cancels everything and returns [Stop()].
Every command leaving the engine is checked against the limits once more (speed, goal
distance) and gets a deadline no longer than the stop promise allows at its speed
(behaviors/deadman.py), whatever the behavior computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from behaviors.commands import GoTo, MotionCommand, Sit, Stand, Stop, Velocity, command_to_dict
from behaviors.config import RulesConfig, RuleSpec
from behaviors.cues import CueEdge, CueTracker
from behaviors.deadman import StopBudget
from behaviors.geometry import RobotPose
from behaviors.library import behaviors_catalog, build_behavior
from behaviors.limits import Refused, cap_command
from behaviors.memory import SightingMemory
from behaviors.registry import Behavior, BehaviorCall
from behaviors.results import EngineEvent, TickResult, params_error, sighting_data
from perception.detection import FrameResult

__all__ = ["SOURCES", "CueEngine", "EngineEvent", "RobotPose", "TickResult"]

SOURCES = ("cue", "operator")

# Ranks compare (tier, priority): operator launches sit above every cue rule but the safety ones.
_TIER_CUE, _TIER_OPERATOR, _TIER_SAFETY = 0, 1, 2


@dataclass
class _Running:
    behavior: Behavior
    source: str
    rule: RuleSpec | None
    rank: tuple[int, int]
    started: float
    params: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.behavior.name,
            "source": self.source,
            "rule": self.rule.name if self.rule else None,
            "priority": self.rank[1],
            "safety": self.rank[0] == _TIER_SAFETY,
            "started": self.started,
            "params": self.params,
        }


def _rule_rank(rule: RuleSpec) -> tuple[int, int]:
    return (_TIER_SAFETY if rule.safety else _TIER_CUE, rule.priority)


class CueEngine:
    def __init__(self, config: RulesConfig, stop: StopBudget | None = None) -> None:
        """`stop`: the agent's stop promise and the robot's braking (the defaults: Spot's)."""
        self.config = config
        self.limits = config.limits
        self.stop_budget = stop if stop is not None else StopBudget()
        self._cues = CueTracker(config.cues)
        self._memory = SightingMemory()
        self._rules_by_cue: dict[str, list[tuple[int, RuleSpec]]] = {}
        for index, rule in enumerate(config.rules):
            if rule.enabled:
                self._rules_by_cue.setdefault(rule.cue, []).append((index, rule))
        self._last_fired: dict[str, float] = {}
        self._pending: dict[str, CueEdge] = {}  # latest rising edge per cue since the last tick
        self._running: _Running | None = None
        self._queued: list[MotionCommand] = []  # from launches between ticks, sent at the next
        self._events: list[EngineEvent] = []
        self._cues_paused = False
        self._motion_until: float | None = None  # a velocity / go-to may act until then
        self._time = 0.0  # latest time seen in any input: stamps events of calls without time

    # ---------------------------------------------------------------- inputs

    def observe(self, result: FrameResult) -> list[CueEdge]:
        """Take one frame's sightings: updates the world memory and the cues' presence; returns
        the cues that appeared (`rising`) or cleared because of this frame."""
        self._time = max(self._time, result.time_local)
        self._memory.update(result)
        edges = self._cues.observe(result)
        for edge in edges:
            self._cue_event(edge)
        return edges

    def tick(self, now: float, pose: RobotPose) -> TickResult:
        """Evaluate rules, arbitrate, step the running behavior: the commands to send now and
        the rule that fired."""
        self._time = max(self._time, now)
        for edge in self._cues.expire(now):
            self._cue_event(edge)
        out, self._queued = self._queued, []
        fired = self._fire_rules(now, out)
        running = self._running
        if (
            running is not None
            and running.rule is not None
            and running.rule.while_cue_present
            and not self._cues.present(running.rule.cue)
        ):
            self._end(now, "succeeded", f"cue {running.rule.cue} cleared", out)
        running = self._running
        if running is not None:
            out += running.behavior.step(now, pose)
            if running.behavior.done:
                self._running = None
                self._emit(
                    "behavior_finished",
                    now,
                    {
                        **running.describe(),
                        "outcome": running.behavior.outcome,
                        "detail": running.behavior.detail,
                    },
                )
        return TickResult(self._send(out, now, pose), fired)

    def launch(
        self,
        name: str,
        params: dict[str, Any],
        now: float,
        source: str = "operator",
        priority: int | None = None,
    ) -> None:
        """Start a behavior by name; its commands go out from the next tick.

        An operator launch pre-empts whatever runs (only `stop` and safety rules beat it). A
        launch with source "cue" is arbitrated like a rule of `priority` (default 0).
        Raises ValueError for an unknown name, bad parameters or a behavior that cannot start.
        """
        if source not in SOURCES:
            raise ValueError(f"launch {name!r}: source must be one of {SOURCES}, got {source!r}")
        try:
            call = BehaviorCall.model_validate({"behavior": name, "params": params})
        except ValidationError as exc:
            raise ValueError(params_error(name, exc)) from None
        behavior = build_behavior(
            call, self.limits, self._memory, None, self._emit, self.stop_budget
        )
        self._time = max(self._time, now)
        if source == "operator":
            rank = (_TIER_OPERATOR, 0)
        else:
            rank = (_TIER_CUE, 0 if priority is None else int(priority))
            if self._running is not None and rank <= self._running.rank:
                self._emit(
                    "launch_ignored",
                    now,
                    {
                        "name": name,
                        "source": source,
                        "priority": rank[1],
                        "reason": "an equal or higher priority behavior is running",
                        "running": self._running.describe(),
                    },
                )
                return
        self._start(
            behavior,
            source,
            None,
            rank,
            call.validated_params.model_dump(mode="json"),
            now,
            self._queued,
            None,
        )

    def stop(self, now: float, reason: str) -> list[MotionCommand]:
        """Stop always wins: cancel the behavior, forget pending cue edges, return [Stop()]."""
        self._time = max(self._time, now)
        self._cancel(now, "stop", reason)
        return self._send([Stop()], now, None)

    def halt(self, reason: str) -> None:
        """The robot cannot be commanded (connection, lease, watchdog): cancel, never resume.

        No command is returned (there is no one to send it to); the robot stops by itself at
        the deadline of the last command. A rule starts again only on a fresh rising edge.
        """
        self._cancel(self._time, "halt", reason)

    def pause_cues(self) -> None:
        """Rules stop firing (cues are still tracked); a running behavior carries on."""
        if not self._cues_paused:
            self._cues_paused = True
            self._emit("cues_paused", self._time, {})

    def resume_cues(self) -> None:
        """Rules fire again, on rising edges from now on (cues already present do not fire)."""
        if self._cues_paused:
            self._cues_paused = False
            self._pending.clear()
            self._emit("cues_resumed", self._time, {})

    # ---------------------------------------------------------------- views

    @property
    def active(self) -> str | None:
        return self._running.behavior.name if self._running else None

    @property
    def active_info(self) -> dict[str, Any] | None:
        return self._running.describe() if self._running else None

    @property
    def cues_paused(self) -> bool:
        return self._cues_paused

    def cue_states(self) -> dict[str, bool]:
        """Whether each cue is present, by name."""
        return {name: state.present for name, state in self._cues.states.items()}

    def behaviors_catalog(self) -> list[dict[str, Any]]:
        return behaviors_catalog()

    def drain_events(self) -> list[EngineEvent]:
        events, self._events = self._events, []
        return events

    # ---------------------------------------------------------------- internals

    def _emit(self, kind: str, time: float, data: dict[str, Any]) -> None:
        self._events.append(EngineEvent(kind, time, data))

    def _cue_event(self, edge: CueEdge) -> None:
        self._emit(
            "cue_fired" if edge.rising else "cue_cleared",
            edge.time,
            {
                "cue": edge.cue,
                "reason": edge.reason,
                **sighting_data(edge.sighting),
            },
        )
        if edge.rising:
            self._pending[edge.cue] = edge
        else:
            self._pending.pop(edge.cue, None)

    def _fire_rules(self, now: float, out: list[MotionCommand]) -> str | None:
        """Start the behaviors of the rules whose cue appeared; the first rule fired, if any."""
        first: str | None = None
        edges, self._pending = self._pending, {}
        candidates = [
            (index, rule, edge)
            for edge in edges.values()
            for index, rule in self._rules_by_cue.get(edge.cue, [])
        ]
        # Highest rank first, then file order: deterministic, and the strongest rule wins a tie.
        candidates.sort(key=lambda c: (-_rule_rank(c[1])[0], -_rule_rank(c[1])[1], c[0]))
        for _, rule, edge in candidates:
            reason = self._why_not(rule, now)
            if reason is not None:
                self._emit(
                    "rule_ignored", now, {"rule": rule.name, "cue": rule.cue, "reason": reason}
                )
                continue
            try:
                behavior = build_behavior(
                    rule, self.limits, self._memory, edge.sighting, self._emit, self.stop_budget
                )
            except (
                ValueError
            ) as exc:  # checked at load; kept so a bad case never raises in the loop
                self._emit("rule_failed", now, {"rule": rule.name, "error": str(exc)})
                continue
            self._last_fired[rule.name] = now
            first = first or rule.name
            self._emit(
                "rule_fired",
                now,
                {
                    "rule": rule.name,
                    "cue": rule.cue,
                    "behavior": rule.behavior,
                    "priority": rule.priority,
                    **sighting_data(edge.sighting),
                },
            )
            self._start(
                behavior,
                "cue",
                rule,
                _rule_rank(rule),
                rule.validated_params.model_dump(mode="json"),
                now,
                out,
                rule.name,
            )
        return first

    def _why_not(self, rule: RuleSpec, now: float) -> str | None:
        if not self._cues.present(rule.cue):
            return "cue cleared before the tick"
        if self._cues_paused:
            return "cues paused"
        last = self._last_fired.get(rule.name)
        if last is not None and now - last < rule.cooldown_s:
            return f"cooldown ({rule.cooldown_s - (now - last):.1f} s left)"
        running = self._running
        if running is not None and _rule_rank(rule) <= running.rank:
            who = f"{running.behavior.name} ({running.source}"
            who += f" rule {running.rule.name}" if running.rule else ""
            return f"{who}, priority {running.rank[1]}) is running and not outranked"
        return None

    def _start(
        self,
        behavior: Behavior,
        source: str,
        rule: RuleSpec | None,
        rank: tuple[int, int],
        params: dict[str, Any],
        now: float,
        out: list[MotionCommand],
        by: str | None,
    ) -> None:
        previous = self._running
        if previous is not None:
            self._emit(
                "behavior_preempted",
                now,
                {
                    **previous.describe(),
                    "by": by or f"{source}:{behavior.name}",
                },
            )
            out += self._stop_motion(now)
        self._running = _Running(behavior, source, rule, rank, now, dict(params))
        self._emit("behavior_started", now, self._running.describe())

    def _end(self, now: float, outcome: str, detail: str, out: list[MotionCommand]) -> None:
        running = self._running
        assert running is not None
        self._running = None
        self._emit(
            "behavior_finished", now, {**running.describe(), "outcome": outcome, "detail": detail}
        )
        out += self._stop_motion(now)

    def _cancel(self, now: float, kind: str, reason: str) -> None:
        if self._running is not None:
            self._emit(
                "behavior_cancelled",
                now,
                {**self._running.describe(), "by": kind, "reason": reason},
            )
            self._running = None
        self._emit(kind, now, {"reason": reason})
        self._pending.clear()
        self._queued.clear()
        self._motion_until = None

    def _stop_motion(self, now: float) -> list[MotionCommand]:
        """[Stop()] if a velocity or go-to command may still be moving the robot."""
        if self._motion_until is not None and now < self._motion_until:
            self._motion_until = None
            return [Stop()]
        return []

    def _send(
        self, commands: list[MotionCommand], now: float, pose: RobotPose | None
    ) -> list[MotionCommand]:
        sent = []
        for command in commands:
            checked = self._within_limits(command, now, pose)
            if isinstance(checked, (Velocity, GoTo)):
                self._motion_until = max(self._motion_until or now, now + checked.duration_s)
            elif isinstance(checked, (Stop, Sit, Stand)):
                self._motion_until = None
            self._emit("command", now, command_to_dict(checked))
            sent.append(checked)
        return sent

    def _within_limits(
        self, command: MotionCommand, now: float, pose: RobotPose | None
    ) -> MotionCommand:
        """The command within the rules' limits (a last guard; behaviors already obey them)."""
        checked = cap_command(command, self.limits, pose, self.stop_budget)
        if isinstance(checked, Refused):
            self._emit("command_refused", now,
                       {"command": command_to_dict(command), "reason": checked.reason})
            return Stop()
        if checked != command:
            self._emit(
                "command_capped",
                now,
                {"asked": command_to_dict(command), "sent": command_to_dict(checked)},
            )
        return checked
