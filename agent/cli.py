"""`spot-agent`: the command line. Each subcommand lives next to the code it drives."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="spot-agent",
    help="Perception agent that makes a Boston Dynamics Spot react to what its cameras see.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"spot-agent (spot-cue-agent) {version('spot-cue-agent')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("spot-agent (spot-cue-agent, not installed)")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Perception agent that makes a Boston Dynamics Spot react to what its cameras see."""


def _register() -> None:
    # Imports are light: each command imports its heavy dependencies when it runs.
    from sim.cli import sim_app

    app.add_typer(sim_app, name="sim")  # bare `sim` runs the sim; `sim dataset` writes labelled frames
    from agent.run import run_command

    app.command("run")(run_command)  # help: run_command's docstring
    from agent.demo import demo_command

    app.command("demo")(demo_command)  # help: demo_command's docstring
    from agent.worker import worker_command

    app.command("worker")(worker_command)  # help: worker_command's docstring
    from agent.fleet.command import replay_command

    app.command("replay")(replay_command)  # one input: agent.replay.command; many: a fleet
    from agent.replay.export_command import export_frames_command

    app.command("export-frames")(export_frames_command)  # help: its docstring
    from agent.control.op_cli import keys_command, op_app

    app.add_typer(op_app, name="op", help="Control a running agent: launch, stop, watch, snapshot.")
    app.command("keys", help="Make a CurveZMQ key pair for the agent or an operator.")(keys_command)
    from deploy.package import package_command

    app.command("package", help="Build (or --check) the CORE I/O Spot Extension (.spx).")(package_command)
    from perception.cli import detect_command

    app.command("detect", help="Run the detector (and fiducials) on images, folders or videos.")(detect_command)
    from agent.eval.command import eval_command

    app.command("eval", help="Measure perception on labelled images (COCO/YOLO): AP, recall, PR curves.")(eval_command)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
