"""The `stylewrap` command: a Click group whose subcommands load only when invoked.

Each subcommand lives in its own module here (one per command group, as `hf` does), parses its
flags, calls one library function and prints. This module turns domain errors into one-line
messages and exit codes; set STYLEWRAP_DEBUG=1 for the traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from stylewrap import __version__
from stylewrap.cli import helptext
from stylewrap.errors import StylewrapError, printable

# name -> (module, attribute, one-line help). The help is here so `stylewrap --help` needs no import.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("stylewrap.cli.init_cmd", "init", "Scaffold a project: a commented stylewrap.yaml."),
    "run": ("stylewrap.cli.run_cmd", "run", "The whole path from one stylewrap.yaml; up-to-date stages skipped."),
    "config": ("stylewrap.cli.config_cmd", "config", "Show or validate the effective configuration."),
    "datagen": ("stylewrap.cli.datagen_cmd", "datagen", "Generate a style dataset through an OpenAI-compatible API."),
    "styles": ("stylewrap.cli.styles_cmd", "styles", "List and show styles."),
    "data": ("stylewrap.cli.data_cmd", "data", "Validate, convert, inspect and register datasets."),
    "backend": ("stylewrap.cli.backend_cmd", "backend", "Install and check the backends' own environments."),
    "render": ("stylewrap.cli.train_cmd", "render", "Write the backend configs a training run would use."),
    "train": ("stylewrap.cli.train_cmd", "train", "Fine-tune with LLaMA-Factory or ms-swift, here or as a Slurm job."),
    "runs": ("stylewrap.cli.runs_cmd", "runs", "List, show and cancel training runs."),
    "export": ("stylewrap.cli.export_cmd", "export", "Merge a LoRA adapter into its base model."),
    "compare": ("stylewrap.cli.compare_cmd", "compare", "Base vs tuned answers side by side (a view of eval)."),
    "eval": ("stylewrap.cli.eval_cmd", "eval_command", "Measure a style: strength, content kept, what broke."),
    "publish": ("stylewrap.cli.publish_cmd", "publish", "Publish a model or dataset to ModelScope."),
    "deploy": ("stylewrap.cli.deploy_cmd", "deploy", "Serve a model behind an OpenAI-compatible API."),
    "chat": ("stylewrap.cli.chat_cmd", "chat", "Chat in the terminal with any OpenAI-compatible endpoint."),
    "app": ("stylewrap.cli.app_cmd", "app", "A web chat page for a deployed model."),
    "webui": ("stylewrap.cli.webui_cmd", "webui", "The backend's own training UI (swift web-ui, LLaMA Board)."),
    "demo": ("stylewrap.cli.demo_cmd", "demo", "An offline demo project on a tiny local model, then `stylewrap run` on it."),
}


class CliError(click.ClickException):
    """A StylewrapError on its way out: one line on stderr, the error's exit code."""

    def __init__(self, error: StylewrapError):
        super().__init__(safe_for_terminal(error.one_line()))
        self.exit_code = error.exit_code


def safe_for_terminal(text: str) -> str:
    """What stylewrap prints on stderr: no terminal control sequences, no secrets, no URL credentials."""
    from stylewrap.secrets import redact, redact_urls

    return printable(redact_urls(redact(text)))


def debug_enabled() -> bool:
    return os.environ.get("STYLEWRAP_DEBUG", "") not in ("", "0", "false", "no")


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, never for `--help`."""

    def __init__(self, *args, lazy_commands: dict[str, tuple[str, str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in self.lazy_commands:
            return None
        module_name, attr, _ = self.lazy_commands[name]
        try:
            command = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            # a known command that cannot load is a broken install, not a typo
            if debug_enabled():
                raise
            raise CliError(StylewrapError(
                f"the {name!r} command cannot load: {module_name}: {type(exc).__name__}: {exc}",
                hint="reinstall stylewrap; STYLEWRAP_DEBUG=1 shows the traceback",
            )) from None
        self.commands[name] = helptext.attach(command, (name,))
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            # Click suggests only among commands already loaded; a lazy group has loaded none
            raise click.exceptions.NoSuchCommand(str(args[0]), possibilities=self.list_commands(ctx), ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        summaries = {name: help_text for name, (_, _, help_text) in self.lazy_commands.items()}
        summaries.update({n: c.get_short_help_str(1000) for n, c in self.commands.items() if n not in self.lazy_commands})
        helptext.write_stages(formatter, summaries)

    def invoke(self, ctx: click.Context) -> None:
        try:
            # a command's return value is dropped: `main()` reads what `cli.main` returns as the exit code
            super().invoke(ctx)
            return None
        except StylewrapError as exc:
            if debug_enabled():
                raise
            raise CliError(exc) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except OSError as exc:
            if debug_enabled():
                raise
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise CliError(StylewrapError(f"{where}{exc.strerror or exc}")) from None
        except Exception as exc:  # the last line of defence: a one-line message, not a traceback
            if debug_enabled():
                raise
            raise CliError(
                StylewrapError(f"internal error: {type(exc).__name__}: {exc}", hint="set STYLEWRAP_DEBUG=1 for the traceback")
            ) from None


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=helptext.examples_epilog(""))
@click.version_option(__version__, prog_name="stylewrap")
def cli() -> None:
    """stylewrap: a chat style from nothing to a deployed, published model.

    Wraps LLaMA-Factory (llamafactory-cli) and ms-swift (swift), each in its own environment.
    """
    show_notices_on_stderr()


class StderrNotices(logging.Handler):
    """Library notices (e.g. `config: PATH`) as lines on stderr, each said once per command."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.said: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        if line not in self.said:
            self.said.add(line)
            click.echo(safe_for_terminal(line), err=True)


def show_notices_on_stderr() -> None:
    logger = logging.getLogger("stylewrap")
    for handler in [h for h in logger.handlers if isinstance(h, StderrNotices)]:
        logger.removeHandler(handler)
    logger.addHandler(StderrNotices())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main() -> None:
    # standalone_mode=False so Ctrl-C ends with the conventional 130, not Click's "Aborted!" and 1.
    # In that mode Click *returns* the code of `ctx.exit(n)` / `raise Exit(n)` instead of exiting
    # (and None on success, as LazyGroup.invoke drops commands' return values): it is the exit status.
    try:
        returned = cli.main(prog_name="stylewrap", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(returned or 0)
