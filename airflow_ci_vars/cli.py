"""The ``airflow-ci-vars`` command line.

Commands are registered in ``COMMANDS``: each entry adds its own argparse sub-parser and
sets ``handler`` to a function ``(args) -> exit code``. Adding a command (``lint``,
``explain``, ``run``, ``variables list|set|unset``) means one ``_add_<name>`` function and one
entry. Nothing here imports Airflow at module import time; a command that needs it imports it
inside its handler.

Exit codes: 0 success, 1 the input is invalid (errors on stderr), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from airflow_ci_vars.dotenv import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_VARIABLES,
    read_dotenv_file,
)
from airflow_ci_vars.errors import DotenvError

__all__ = ["COMMANDS", "build_parser", "main"]

if TYPE_CHECKING:
    from typing import TypeAlias

    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace], int]


def _non_negative_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 disables the limit), got {number}")
    return number


def _write_lines(stream: TextIO, lines: Sequence[str]) -> None:
    stream.writelines(line + "\n" for line in lines)


# --- dotenv -----------------------------------------------------------------------------


def _dotenv_check(args: argparse.Namespace) -> int:
    """Print the variables of a valid dotenv report, or its first error as ``FILE:LINE: msg``."""
    try:
        parsed = read_dotenv_file(args.file, max_bytes=args.max_bytes, max_variables=args.max_variables)
    except DotenvError as exc:
        # str(DotenvError) renders "FILE:LINE: message" / "FILE: message".
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _write_lines(sys.stdout, [f"{key}={value}" for key, value in parsed.items()])
    return 0


def _add_dotenv(subparsers: SubParsers) -> None:
    dotenv = subparsers.add_parser(
        "dotenv",
        help="dotenv report tools",
        description="Work with dotenv reports (artifacts:reports:dotenv), using GitLab's rules.",
    )
    actions = dotenv.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate a dotenv report and print its variables",
        description=(
            "Validate FILE with GitLab's dotenv rules. On success print KEY=VALUE lines in "
            "file order and exit 0; otherwise print FILE:LINE: message and exit 1."
        ),
    )
    check.add_argument("file", metavar="FILE", help="the dotenv file")
    check.add_argument(
        "--max-bytes",
        type=_non_negative_int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"maximum file size in bytes (default {DEFAULT_MAX_BYTES}; 0 = no limit)",
    )
    check.add_argument(
        "--max-variables",
        type=_non_negative_int,
        default=DEFAULT_MAX_VARIABLES,
        metavar="N",
        help=f"maximum number of variables (default {DEFAULT_MAX_VARIABLES}; 0 = no limit)",
    )
    check.set_defaults(handler=_dotenv_check)


# --- registry ---------------------------------------------------------------------------

COMMANDS: dict[str, Callable[[SubParsers], None]] = {
    "dotenv": _add_dotenv,
}


def build_parser() -> argparse.ArgumentParser:
    """Return the ``airflow-ci-vars`` argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="airflow-ci-vars",
        description="GitLab CI / CircleCI variable semantics for Apache Airflow.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS.values():
        add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``airflow-ci-vars`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, usage errors: argparse exits; we return the code
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
