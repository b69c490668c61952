"""The ``pumpsync`` command line.

Each sub-command lives in its own module and is imported only when it runs, so that
``pumpsync stream`` does not pay for the simulator or the daemon.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from pumpsync._importcheck import describe, install_hint, missing_extra
from pumpsync._version import __version__

# name -> "module:attribute" of a click.Command
_COMMANDS = {
    "stream": "pumpsync.cli.stream:stream",
    "demo": "pumpsync.cli.demo:demo",
    "simulate": "pumpsync.cli.simulate:simulate",
    "daemon": "pumpsync.cli.daemon:daemon",
    "bench": "pumpsync.cli.bench:bench",
    "top": "pumpsync.cli.top:top",
}


class _Unavailable(click.Command):
    """Stands in for a command whose module cannot be imported here (an extra that is not installed,
    a missing or broken dependency): listed like the others, so ``pumpsync --help`` works; says why,
    in one line, when run (``--help`` included, since its options are unknown)."""

    def __init__(self, name: str, problem: str, short_help: str = "(cannot load here: run it to see why)") -> None:
        super().__init__(
            name,
            short_help=short_help,
            add_help_option=False,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )
        self.problem = problem  # the whole line, after "Error: "

    def invoke(self, ctx: click.Context) -> Any:
        raise click.ClickException(self.problem)


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # anything a broken dependency raises at import
            missing = missing_extra(exc)
            if missing is not None:
                hint = install_hint(f"pumpsync {cmd_name}", *missing)
                return _Unavailable(cmd_name, hint, f"(needs pip install 'pumpsync[{missing[0]}]')")
            return _Unavailable(cmd_name, f"pumpsync {cmd_name} cannot load: {describe(module_name, exc)}")
        command: click.Command = getattr(module, attr)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pumpsync")
def cli() -> None:
    """Real-time Pump.fun token launches and trades, synchronously."""


def _providers_epilog() -> str:
    """The providers, one line each (``--provider`` in each command names them only)."""
    from pumpsync.providers import PROVIDERS

    lines = [f"  {name:<11} {spec.summary}" for name, spec in PROVIDERS.items()]
    return "\b\nProviders:\n" + "\n".join(lines)


cli.epilog = _providers_epilog()


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="pumpsync")
