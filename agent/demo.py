"""`spot-agent demo`: the agent on the simulated Spot, then what it saw and did, in words.

Starts the sim in this process on a free port, points `configs/sim.yaml` at it (port, CA,
login) and runs exactly the agent `spot-agent run` runs, over real TLS gRPC.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import typer

from agent.paths import CONFIG_DIR


def sim_agent_config(sim: Any, config_path: Path | None = None, rules: Path | None = None) -> Any:
    """`configs/sim.yaml` (or `config_path`) pointed at a running `SimServer`."""
    from agent.config import config_overrides, load_agent_config

    cfg = load_agent_config(config_path or CONFIG_DIR / "sim.yaml")
    return config_overrides(
        cfg,
        **{
            "robot.hostname": sim.host,
            "robot.port": sim.port,
            "robot.ca_cert": Path(sim.ca_path),
            "robot.auth.username": sim.user,
            "robot.auth.password": sim.password,
            "robot.auth.username_env": "SPOT_AGENT_SIM_UNUSED_USERNAME",
            "robot.auth.password_env": "SPOT_AGENT_SIM_UNUSED_PASSWORD",
            "rules": rules.resolve() if rules else None,
        },
    )


def demo_command(
    scenario: Path = typer.Option(
        CONFIG_DIR / "scenarios" / "default.yaml", "--scenario", help="Sim world (YAML)."
    ),
    duration: float = typer.Option(25.0, "--duration", min=1.0, help="How long to run, seconds."),
    rules: Path | None = typer.Option(None, "--rules", help="Cue rules (default: configs/rules/default.yaml)."),
    log_level: str = typer.Option("warning", "--log-level", help="Log lines on stderr from this level."),
) -> None:
    from agent.logs import setup_logging
    from agent.run import run_agent
    from agent.summary import describe_run
    from sim.server import SimServer

    setup_logging(log_level.upper())
    typer.echo(f"Starting the simulated Spot with {scenario} ...")
    sim = SimServer.start(scenario=scenario, port=0)
    try:
        scene = getattr(sim.scenario, "description", "") or ""
        typer.echo(f"Sim listening on {sim.address}. {scene}".rstrip())
        cfg = sim_agent_config(sim, rules=rules)
        typer.echo(
            f"Agent: cameras {', '.join(cfg.cameras.sources)}; rules {cfg.rules.name}; "
            f"running {duration:.0f} s ..."
        )
        started = time.time()
        result = asyncio.run(run_agent(cfg, duration))
    finally:
        sim.stop()
    typer.echo("")
    typer.echo(describe_run(result.report, t0=started))
    raise typer.Exit(result.exit_code)


# `spot-agent demo --help` (rich re-wraps paragraphs only when each is one line, hence the joins).
demo_command.__doc__ = "\n\n".join(
    [
        "Run the agent on the simulated Spot and print what it saw and did.",
        "The sim runs in this process on a free port; the agent connects to it over TLS gRPC "
        "with the Spot SDK exactly as it would to a robot (configs/sim.yaml, default rules), then "
        "prints the cues it saw, the rules and behaviors they started, the commands, the final "
        "pose and the pipeline's measurements.",
    ]
)
