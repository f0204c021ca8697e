"""The ``airflow-ci-vars`` command line.

Commands are registered in ``COMMANDS``: each entry adds its own argparse sub-parser and
sets ``handler`` to a function ``(args) -> exit code``. Adding a command (``lint``,
``explain``, ``run``, ``variables list|set|unset``) means one ``_add_<name>`` function and one
entry. Nothing here imports Airflow at module import time; a command that needs it imports it
inside its handler.

``variables list|set|unset`` works on the configured store (``stores.configured``, which reads
Airflow's configuration, imported inside the handler). Masked and hidden values are never printed.

Exit codes: 0 success, 1 the input is invalid (errors on stderr), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from airflow_ci_vars.dotenv import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_VARIABLES,
    read_dotenv_file,
)
from airflow_ci_vars.errors import CIVarsError, DotenvError, VariableValidationError
from airflow_ci_vars.masking import MASK
from airflow_ci_vars.settings import DESCRIPTION_LIMIT
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.variables.keys import ruby_strip
from airflow_ci_vars.variables.model import ENV_VAR, FILE, Variable
from airflow_ci_vars.variables.validation import validate_variable

__all__ = ["COMMANDS", "build_parser", "main"]

if TYPE_CHECKING:
    from typing import TypeAlias

    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

    from airflow_ci_vars.stores.base import VariableStore

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


# --- variables --------------------------------------------------------------------------

VALUE_PREVIEW = 60
"""Longest value shown by ``variables list --format text`` (``--format json`` shows all)."""
_COLUMNS = ("KEY", "VALUE", "TYPE", "SCOPE", "FLAGS", "DESCRIPTION")
_FLAGS = ("masked", "hidden", "protected", "raw")


def _layer(text: str) -> LayerRef:
    try:
        return LayerRef.parse(text)
    except VariableValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _open_store(args: argparse.Namespace) -> VariableStore:
    """The configured store (Vault or the settings file); reads Airflow's configuration."""
    from airflow_ci_vars.stores.configured import configured_store
    from airflow_ci_vars.stores.file import FileStore

    store = configured_store(args.settings)
    if args.settings and not isinstance(store, FileStore):
        print("warning: --settings is ignored: the configured secrets backend is CIVaultBackend", file=sys.stderr)
    return store


def _shown_value(variable: Variable) -> str:
    """The value as ``list`` may show it: masked and hidden values never appear."""
    return MASK if variable.masked or variable.hidden else variable.value


def _cell(text: str, limit: int | None = None) -> str:
    """One table cell on one line: control characters escaped, optionally shortened."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _variables_list(args: argparse.Namespace, store: VariableStore) -> int:
    ref: LayerRef = args.layer
    variables = store.list_variables(ref)
    if args.scope is not None:
        scope = ruby_strip(args.scope)
        variables = tuple(v for v in variables if v.environment_scope == scope)
    if args.format == "json":
        records: list[dict[str, Any]] = [
            {
                "key": v.key,
                "value": _shown_value(v),
                "variable_type": v.variable_type,
                **{flag: getattr(v, flag) for flag in _FLAGS},
                "environment_scope": v.environment_scope,
                "description": v.description,
            }
            for v in variables
        ]
        print(json.dumps(records, indent=2, ensure_ascii=False))
        return 0
    rows = [_COLUMNS] + [
        (
            _cell(v.key),
            _cell(_shown_value(v), VALUE_PREVIEW),
            v.variable_type,
            _cell(v.environment_scope),
            ",".join(f for f in _FLAGS if getattr(v, f)) or "-",
            _cell(v.description or ""),
        )
        for v in variables
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    _write_lines(sys.stdout, ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows])
    return 0


def _read_value(args: argparse.Namespace) -> str:
    """VALUE, or stdin for ``-`` (one trailing line break dropped, unless ``--file``)."""
    if args.value != "-":
        return str(args.value)
    value = sys.stdin.read()
    if not args.file:
        value = value.removesuffix("\n").removesuffix("\r")
    return value


def _variables_set(args: argparse.Namespace, store: VariableStore) -> int:
    ref: LayerRef = args.layer
    variable: Variable = args.variable
    store.set_variable(ref, variable)
    key, scope = ruby_strip(variable.key), ruby_strip(variable.environment_scope)
    print(f"Set variable '{key}' (environment scope '{scope}') in {ref}.")
    return 0


def _variables_unset(args: argparse.Namespace, store: VariableStore) -> int:
    ref: LayerRef = args.layer
    key, scope = ruby_strip(args.key), ruby_strip(args.scope)
    if not store.unset_variable(ref, key, scope):
        print(f"{ref}: no variable '{key}' with environment scope '{scope}'", file=sys.stderr)
        return 1
    print(f"Removed variable '{key}' (environment scope '{scope}') from {ref}.")
    return 0


def _prepare_set(args: argparse.Namespace) -> None:
    """Build the variable of ``set`` and check it before any store is opened.

    Every save rule that does not depend on the stored variable is checked here (the store
    checks them again); the hidden rules differ on create and update and are the store's.
    """
    ref: LayerRef = args.layer
    variable = Variable(
        args.key,
        _read_value(args),
        variable_type=FILE if args.file else ENV_VAR,
        masked=args.masked,
        hidden=args.hidden,
        protected=args.protected,
        raw=args.raw,
        environment_scope=args.scope,
        description=args.description,
    )
    args.variable = variable
    validate_variable(dataclasses.replace(variable, hidden=False), layer=ref.layer)
    if ref.kind == "instance" and ruby_strip(variable.environment_scope) != "*":
        raise VariableValidationError(
            "instance variables cannot have an environment scope (GitLab's are not scoped)",
            key=variable.key,
            field="environment_scope",
        )
    if variable.description is not None and len(variable.description) > DESCRIPTION_LIMIT:
        raise VariableValidationError(
            f"Validation failed: Description is too long (maximum is {DESCRIPTION_LIMIT} characters)",
            key=variable.key,
            field="description",
        )


def _redact(message: str, args: argparse.Namespace) -> str:
    """Belt and braces: no error text ever carries the masked or hidden value being set."""
    variable: Variable | None = getattr(args, "variable", None)
    if variable is not None and variable.is_secret and variable.value.strip():
        message = message.replace(variable.value, MASK)
    return message


def _variables(args: argparse.Namespace) -> int:
    """Run ``variables list|set|unset``; errors go to stderr (exit 1), never with a value."""
    ref: LayerRef = args.layer
    action: Callable[[argparse.Namespace, VariableStore], int] = args.action_handler
    try:
        if args.action == "set":
            _prepare_set(args)
        return action(args, _open_store(args))
    except VariableValidationError as exc:
        key = exc.key or getattr(args, "key", None)
        where = f"{ref} variable '{ruby_strip(key)}'" if key else str(ref)
        print(_redact(f"{where}: {exc.message}", args), file=sys.stderr)
    except CIVarsError as exc:
        print(_redact(str(exc), args), file=sys.stderr)
    except Exception as exc:  # the store's own errors (OS, Vault, Airflow configuration)
        text = str(exc).strip()
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        print(_redact(f"{ref}: {detail}", args), file=sys.stderr)
    return 1


def _add_variables(subparsers: SubParsers) -> None:
    variables = subparsers.add_parser(
        "variables",
        help="list, set and unset instance, group and project variables",
        description=(
            "Manage the stored CI/CD variables of a layer in the configured store: Vault when "
            "Airflow's [secrets] backend is CIVaultBackend, otherwise the settings file "
            "(--settings, else [ci_vars] settings_file). Masked and hidden values are never printed."
        ),
    )
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--layer",
        required=True,
        type=_layer,
        metavar="LAYER",
        help="instance, group:PATH or project:PATH (full paths: group:acme/data, project:acme/data/etl)",
    )
    store.add_argument(
        "--settings",
        metavar="FILE",
        help="the settings file (default: [ci_vars] settings_file); ignored when the store is Vault",
    )
    actions = variables.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list",
        parents=[store],
        help="list a layer's variables",
        description=(
            "Print the variables of a layer. Masked and hidden values show as [MASKED]; in the text "
            f"table, values longer than {VALUE_PREVIEW} characters are shortened (use --format json)."
        ),
    )
    listing.add_argument("--scope", metavar="ENV", help="only variables with this environment scope")
    listing.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    listing.set_defaults(action_handler=_variables_list)

    setting = actions.add_parser(
        "set",
        parents=[store],
        help="create or update a variable",
        description=(
            "Create a variable, or replace the one with the same key and environment scope, checked "
            "with GitLab's rules (key, value size, maskability, hidden requires masked, scope, and "
            "hidden/masked cannot change on update). VALUE '-' reads the value from stdin, so it "
            "stays out of the shell history; one trailing line break is dropped unless --file."
        ),
    )
    setting.add_argument("key", metavar="KEY", help="the variable key (letters, digits and '_')")
    setting.add_argument("value", metavar="VALUE", help="the value, or '-' to read it from stdin")
    setting.add_argument("--masked", action="store_true", help="mask the value in job logs")
    setting.add_argument("--hidden", action="store_true", help="masked and never shown again (needs --masked)")
    setting.add_argument("--protected", action="store_true", help="only for pipelines on protected refs")
    setting.add_argument("--file", action="store_true", help="a file-type variable (VALUE is the content)")
    setting.add_argument("--raw", action="store_true", help="do not expand variable references in the value")
    setting.add_argument("--scope", default="*", metavar="ENV", help="environment scope (default '*')")
    setting.add_argument(
        "--description", metavar="TEXT", help=f"a description (at most {DESCRIPTION_LIMIT} characters)"
    )
    setting.set_defaults(action_handler=_variables_set)

    unsetting = actions.add_parser(
        "unset",
        parents=[store],
        help="delete a variable",
        description="Delete the variable with KEY and environment scope (default '*'); exit 1 if there is none.",
    )
    unsetting.add_argument("key", metavar="KEY", help="the variable key")
    unsetting.add_argument("--scope", default="*", metavar="ENV", help="environment scope (default '*')")
    unsetting.set_defaults(action_handler=_variables_unset)
    variables.set_defaults(handler=_variables)


# --- registry ---------------------------------------------------------------------------

COMMANDS: dict[str, Callable[[SubParsers], None]] = {
    "dotenv": _add_dotenv,
    "variables": _add_variables,
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
