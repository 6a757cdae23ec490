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

import configs


def sim_agent_config(sim: Any, config_path: Path | None = None, rules: str | Path | None = None) -> Any:
    """The shipped `sim.yaml` (or `config_path`) pointed at a running `SimServer`; `rules`: a
    rules file or the name of a shipped one."""
    from agent.config import config_overrides, load_agent_config

    cfg = load_agent_config(config_path or configs.shipped("sim"))
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
            "rules": configs.find(rules, configs.RULES) if rules else None,
        },
    )


def demo_command(
    scenario: str = typer.Option(
        "default", "--scenario", help="Sim world: a scenario YAML file, or the name of a shipped "
        f"one ({', '.join(configs.shipped_names(configs.SCENARIOS))})."
    ),
    duration: float = typer.Option(25.0, "--duration", min=1.0, help="How long to run, seconds."),
    rules: str | None = typer.Option(
        None, "--rules", help="Cue rules: a YAML file, or the name of a shipped one "
        f"({', '.join(configs.shipped_names(configs.RULES))}). Default: default."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="Log lines on stderr from this level."),
) -> None:
    from agent.core.logs import setup_logging
    from agent.run import run_agent
    from agent.summary import describe_run
    from configs.loading import ConfigError
    from sim.scene import ScenarioError, find_scenario
    from sim.server import SimServer

    setup_logging(log_level.upper())
    try:
        scenario_path = find_scenario(scenario)
        rules_path = configs.find(rules, configs.RULES) if rules else None
        typer.echo(f"Starting the simulated Spot with {configs.display(scenario_path)} ...")
        sim = SimServer.start(scenario=scenario_path, port=0)
    except (ConfigError, ScenarioError) as exc:
        typer.echo(f"spot-agent demo: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        scene = getattr(sim.scenario, "description", "") or ""
        typer.echo(f"Sim listening on {sim.address}. {scene}".rstrip())
        cfg = sim_agent_config(sim, rules=rules_path)
        typer.echo(
            f"Agent: cameras {', '.join(cfg.cameras.sources)}; rules {configs.display(cfg.rules)}; "
            f"running {duration:.0f} s ..."
        )
        started = time.time()
        result = asyncio.run(run_agent(cfg, duration))
    except ConfigError as exc:  # the rules file, checked before the robot is touched
        typer.echo(f"spot-agent demo: {exc}", err=True)
        raise typer.Exit(2) from None
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
