"""The ``volcast`` command: parse, call one library function, print with rich.

Commands live by concern (``data.py``, ``forecast.py``, ``analysis.py``, ``totals.py``,
``web.py``); ``main`` is the one place errors become messages and exit codes: a
``VolcastError`` is one line on stderr and exit 2, a download that gives up exits 1 saying how
far it got, Ctrl-C exits 130. Heavy libraries are imported inside commands so ``volcast
--help`` stays quick.
"""

import os
import sys
from typing import NoReturn

from volcast.cli import (  # noqa: F401  (registers the commands)
    analysis,
    covariates,
    data,
    forecast,
    models,
    totals,
    web,
)
from volcast.cli.common import app, err
from volcast.errors import FetchFailed, VolcastError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: the one place errors turn into messages and exit codes."""
    from typer import Abort, TyperException

    try:
        code = app(prog_name="volcast", standalone_mode=False)
    except TyperException as exc:  # the command line refused by typer's click: one line
        if type(exc).__name__ == "NoArgsIsHelpError":  # `volcast`, `volcast data`: the help
            err.print(exc.format_message(), markup=False, highlight=False)
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        fail(exc.format_message().rstrip(".") + (f" (see {ctx.command_path} --help)"
                                                 if ctx is not None else ""),
             getattr(exc, "exit_code", 2))
    except Abort:  # typer's word for an EOFError in a command (Ctrl-C comes as Exit(130))
        fail("input ended before the command finished", 1)
    except VolcastError as exc:
        fail(str(exc), 2)
    except FetchFailed as exc:
        fail(str(exc), 1)
    except Exception as exc:
        if os.environ.get("VOLCAST_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.filename is not None:  # a file the user named
            fail(f"{exc.filename}: {exc.strerror}", 2)
        err.print(f"internal error: {type(exc).__name__}: {exc} (set VOLCAST_DEBUG=1 for the "
                  "traceback, and please report it)", soft_wrap=True, markup=False)
        sys.exit(1)
    if isinstance(code, int) and code:  # typer.Exit(N) inside a command
        sys.exit(code)


def fail(message: str, code: int) -> NoReturn:
    err.print(f"error: {message}", soft_wrap=True, markup=False, highlight=False)
    sys.exit(code)
