"""The deployment commands of the CLI: ``fakeblock keys generate`` and ``fakeblock status``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from fakeblock.control.cli.help_format import CommandGroup, PlainHelpCommand
from fakeblock.control.cli.user_errors import VERBOSE_HELP, report_user_errors, setup_logging

STATUS_WIDTH_CHARS = 160
keys_app = typer.Typer(help="Make keys to secure links between machines.\n\n"
                       "They are CurveZMQ keys (ZeroMQ's encryption and authentication).", cls=CommandGroup,
                       no_args_is_help=True, rich_markup_mode=None)  # plain help, as the main app's (see app.py)


@keys_app.command("generate", cls=PlainHelpCommand)
def generate(
    directory: Path = typer.Argument(..., metavar="FOLDER", help="Folder for the keys (created if missing)."),
    names: Optional[List[str]] = typer.Option(None, "--name", metavar="NAME",
                                              help="Key pair to create; repeat for several. "
                                              "'server' is the site's server pair, any other name a client that "
                                              "is added to the allow-list (default: server and client)."),
    force: bool = typer.Option(False, "--force", help="Replace existing key files (default: refuse to)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Create key pairs and a metrics token.

    CurveZMQ key pairs (ZeroMQ's encryption and authentication) and metrics.token, the
    password /metrics asks for; the secret files are readable by their owner only.
    """
    setup_logging(verbose)
    from fakeblock.common.security.keys import DEFAULT_KEY_NAMES, generate_keys

    with report_user_errors():
        written = generate_keys(directory, names=tuple(names) if names else DEFAULT_KEY_NAMES, force=force)
    for path in written:
        typer.echo(str(path))
    typer.echo(f"Copy {directory} to every host (keep it private) and pass --keys {directory}, "
               f"or set keys = \"{directory}\" in the site file.", err=True)


def status_command(
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE",
                                          help="Ask every host of this deployment file "
                                          "(default: the pipelines running on this machine)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts instead of the table."),
    keys: Optional[Path] = typer.Option(None, metavar="FOLDER",
                                        help="Key folder from `fakeblock keys generate`, for pipelines secured "
                                             "with CurveZMQ, ZeroMQ's encryption (default: the deployment file's, "
                                             "else none)."),
    timeout_s: float = typer.Option(2.0, "--timeout", min=0.1, max=60.0, metavar="SECONDS",
                                    help="Seconds to wait for the answers."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Show each stage of the running pipelines.

    Per stage: workers, liveness, rates, queues, drops, batch size, latency and uptime.

    Exits 1 when some host did not answer, or when no pipeline runs here.
    """
    setup_logging(verbose)
    from fakeblock.control.status.client import ask
    from fakeblock.control.status.table import status_document, status_table

    with report_user_errors():
        targets = _targets(config, keys)
    if not targets:
        typer.echo(json.dumps({"hosts": []}) if json_output else "no fakeblock pipeline is running here")
        raise typer.Exit(1)
    with report_user_errors():
        document = status_document(ask(targets, timeout_s))
    if json_output:
        typer.echo(json.dumps(document, indent=2))
    else:
        from rich.console import Console

        console = Console()
        # Piped into a file or a pager, a row should stay one line however many columns.
        (console if console.is_terminal else Console(width=STATUS_WIDTH_CHARS)).print(status_table(document))
    raise typer.Exit(0 if all(host["answered"] for host in document["hosts"]) else 1)


def _targets(config: Optional[Path], keys: Optional[Path]) -> list:
    """The supervisors to ask: every host of the site file, else this machine's running pipelines."""
    import os

    from fakeblock.control.site.schema import CONFIG_VARIABLE
    from fakeblock.control.status.client import Target

    if config or os.environ.get(CONFIG_VARIABLE):
        from fakeblock.control.site.loading import load_site

        site = load_site(config).with_security(str(keys) if keys else None)
        if site.security.keys_directory:
            from fakeblock.common.security.access import Security, check_libzmq

            check_libzmq()
            Security(site.security).check_keys(server=False, client=True)
        return [Target(host, endpoint, site.security) for host, endpoint in site.status_endpoints().items()]
    from dataclasses import replace

    from fakeblock.control.status.discovery import local_pipelines, pipeline_labels

    pipelines = local_pipelines()
    # Two pipelines on one machine are told apart by what they read (or run, for `--only` subsets).
    return [Target(label, pipeline.status_service,
                   replace(pipeline.security, keys_directory=str(keys)) if keys else pipeline.security)
            for label, pipeline in zip(pipeline_labels(pipelines), pipelines, strict=True)]
