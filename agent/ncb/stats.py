"""What the worker measures: per model, requests answered, their latency (p50 / p95, in a
bounded window) and failures by kind; requests refused because every slot was busy."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agent.core.stats import Samples


@dataclass
class ModelStats:
    latency_s: Samples = field(default_factory=Samples)
    answered: int = 0
    objects: int = 0
    failed: Counter[str] = field(default_factory=Counter)


class WorkerStats:
    """Thread-safe: every gRPC thread records into it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelStats] = {}
        self.busy_refused = 0

    def _model(self, name: str) -> ModelStats:
        return self._models.setdefault(name, ModelStats())

    def answered(self, model: str, latency_s: float, objects: int) -> None:
        with self._lock:
            stats = self._model(model)
            stats.answered += 1
            stats.objects += objects
            stats.latency_s.add(latency_s)

    def failed(self, model: str, kind: str) -> None:
        with self._lock:
            self._model(model).failed[kind] += 1

    def refused_busy(self) -> None:
        with self._lock:
            self.busy_refused += 1

    def as_dict(self) -> dict[str, Any]:
        """{"models": {name: {"answered", "objects", "latency_ms": {n, p50, p95}, "failed"}},
        "busy_refused": n}"""
        with self._lock:
            models = {
                name: {"answered": s.answered, "objects": s.objects, "latency_ms": s.latency_s.summary(1000.0),
                       "failed": dict(s.failed)}
                for name, s in sorted(self._models.items())
            }
            return {"models": models, "busy_refused": self.busy_refused}

    def lines(self) -> list[str]:
        """One human line per model, for the periodic and final report."""
        data = self.as_dict()
        out = []
        for name, s in data["models"].items():
            lat = s["latency_ms"]
            failed = ", ".join(f"{k} {v}" for k, v in sorted(s["failed"].items())) or "none"
            out.append(f"{name}: {s['answered']} answered, {s['objects']} objects, latency p50 {lat['p50']} ms "
                       f"p95 {lat['p95']} ms, failed: {failed}")
        out.append(f"refused (busy): {data['busy_refused']}")
        return out
