"""GitLab's dotenv report parser (``artifacts:reports:dotenv``), rules and limits in one place.

Pure: no Airflow import, no I/O except in :func:`read_dotenv_file`.

The rules follow GitLab's ``Ci::ParseDotenvArtifactService`` (a custom regex parser, not the
dotenv gem) and the dotenv documentation, checked in this order:

1. **Size.** The file may be at most ``max_bytes`` bytes (default 5120, GitLab's ``5 KB``);
   otherwise ``Dotenv Artifact Too Big. Maximum Allowable Size: <limit>``. GitLab's code says
   ``size < limit`` but its documentation says "Maximum file size 5 KB": we take the
   documented reading, so a file of *exactly* ``max_bytes`` bytes is accepted. As in GitLab's
   documentation for plan limits, ``0`` disables the limit (GitLab's code would reject every
   file).
2. **Encoding.** UTF-8 only (the dotenv documentation: "Only UTF-8 encoding is supported").
   GitLab's code also transcodes UTF-16 and replaces bad bytes with U+FFFD; we reject the
   file instead, naming the line of the first invalid byte. One leading UTF-8 BOM is removed.
3. **Lines.** Split on ``\\n`` only (Ruby ``each_line``; ``\\r``, ``\\v``, U+2028... do not end
   a line). Every line needs a ``=``; key and value are split at the first ``=`` and stripped
   with Ruby ``String#strip`` semantics (ASCII whitespace and NUL only; a CRLF ``\\r`` goes
   away this way). A line without ``=`` -- including an empty line anywhere and the blank
   line of a file ending in ``\\n\\n`` -- is ``Invalid Format``. Quotes are kept, there are
   no comments, no ``export``, no escapes and no expansion. A file without a final newline is
   fine; an empty file has no variables.
   Deviation: a value containing a NUL character (which GitLab cannot store: PostgreSQL text
   refuses it, failing the upload with a server error) is refused with
   ``Value cannot contain a NUL character``.
4. **Duplicates.** The last value wins; the key keeps the position of its first occurrence.
5. **Count.** More than ``max_variables`` distinct keys (default 20; ``0`` disables) is
   ``Dotenv files cannot have more than <n> variables``.
6. **Keys.** GitLab's key rules (letters, digits, ``_``; 1 to 255 characters), with GitLab's
   messages, e.g. ``Validation failed: Key can contain only letters, digits and '_'.``.
   GitLab validates keys when saving, after the count check; so do we.
7. **Secrets** (when a ``masker`` is given; our rule, not GitLab's: XCom and Asset events are
   clear text): a line whose key or value holds a masked value (``clear_text``) is
   refused with ``holds a masked value; ...``, naming the line only -- never the key, which may
   be the secret itself. Checked as each line is read, so it comes first.

:func:`read_dotenv_file` with ``root`` reads the report as gitlab-runner uploads it: inside the
job's working directory and a regular file (``job_paths``), or an
:class:`~airflow_ci_vars.errors.ArtifactPathError` with gitlab-runner's wording.

Every error is a :class:`~airflow_ci_vars.errors.DotenvError` carrying the 1-based line
(``None`` for whole-file errors); an invalid file yields no variables at all. Messages never
contain a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from airflow_ci_vars.clear_text import holds_secret
from airflow_ci_vars.errors import DotenvError, KeyValidationError
from airflow_ci_vars.job_paths import open_regular
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.variables.keys import ruby_strip, validate_key
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MASKED_LINE",
    "DEFAULT_MAX_VARIABLES",
    "dotenv_variables",
    "parse_dotenv",
    "read_dotenv_file",
    "ruby_strip",
]

DEFAULT_MAX_BYTES = 5 * 1024  # GitLab plan limit `dotenv_size`, "5 KB"
DEFAULT_MAX_VARIABLES = 20  # GitLab plan limit `dotenv_variables` (self-managed default)

MASKED_LINE = (
    "holds a masked value; dotenv reports are handed on in clear (XCom, Asset events), so this report is refused"
)

# Ruby String#strip removes ASCII whitespace and NUL -- not Unicode spaces such as U+00A0.
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _check_limit(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (0 disables the limit)")


def _decode(blob: bytes) -> str:
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = blob.count(b"\n", 0, exc.start) + 1
        hint = " (UTF-16 is not supported)" if blob.startswith(_UTF16_BOMS) else ""
        raise DotenvError(f"Invalid UTF-8 encoding{hint}: only UTF-8 dotenv files are supported", line=line) from None
    return text.removeprefix("\ufeff")


def _to_bytes(data: str | bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, str):
        # surrogatepass keeps lone surrogates so that the strict decode reports them by line.
        return data.encode("utf-8", "surrogatepass")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"dotenv data must be str or bytes, not {type(data).__name__}")


def parse_dotenv(
    data: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_variables: int = DEFAULT_MAX_VARIABLES,
    masker: Masker | None = None,
) -> dict[str, str]:
    """Parse a dotenv report with GitLab's rules; return ``{key: value}`` in file order.

    ``str`` input is measured as its UTF-8 encoding. Raises :class:`DotenvError` (with the
    1-based ``line`` where there is one) if anything is wrong; never returns a partial result.
    ``masker``: refuse a line whose key or value holds one of its secrets (rule 7).
    """
    _check_limit("max_bytes", max_bytes)
    _check_limit("max_variables", max_variables)
    blob = _to_bytes(data)
    if max_bytes and len(blob) > max_bytes:
        raise DotenvError(f"Dotenv Artifact Too Big. Maximum Allowable Size: {max_bytes}")
    text = _decode(blob)

    values: dict[str, str] = {}
    first_line: dict[str, int] = {}
    # Ruby each_line: lines end after "\n" only; a file without final "\n" has no empty tail.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        # /^(.*?)=(.*)$/ on one line: split at the first "=" ("." never crosses "\n").
        raw_key, sep, raw_value = line.partition("=")
        if not sep:
            raise DotenvError("Invalid Format", line=number)
        key, value = ruby_strip(raw_key), ruby_strip(raw_value)
        if masker is not None and holds_secret((key, value), masker):
            raise DotenvError(MASKED_LINE, line=number)
        if "\x00" in value:
            raise DotenvError("Value cannot contain a NUL character", line=number)
        values[key] = value  # last value wins, first position kept (Ruby Hash)
        first_line.setdefault(key, number)

    if max_variables and len(values) > max_variables:
        raise DotenvError(f"Dotenv files cannot have more than {max_variables} variables")

    for key, number in first_line.items():
        try:
            validate_key(key)
        except KeyValidationError as exc:
            raise DotenvError(exc.message, line=number) from None
    return values


def dotenv_variables(
    data: str | bytes,
    *,
    producer: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_variables: int = DEFAULT_MAX_VARIABLES,
) -> list[Variable]:
    """Parse a dotenv report into ``Variable`` records of the dotenv layer (``raw=False``).

    ``producer`` names the job that wrote the report; it becomes the source's name.
    """
    parsed = parse_dotenv(data, max_bytes=max_bytes, max_variables=max_variables)
    return _as_variables(parsed, producer)


def _as_variables(parsed: Mapping[str, str], producer: str | None) -> list[Variable]:
    source = VariableSource(Layer.DOTENV, producer)
    return [Variable(key, value, raw=False, source=source) for key, value in parsed.items()]


def read_dotenv_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_variables: int = DEFAULT_MAX_VARIABLES,
    root: str | os.PathLike[str] | None = None,
    masker: Masker | None = None,
) -> dict[str, str]:
    """Read and parse a dotenv file; errors carry ``file=str(path)``.

    Reads at most ``max_bytes + 1`` bytes, so a huge file is refused without loading it.
    ``root``: ``path`` is a job's report, read only inside that working directory and only as a
    regular file (``job_paths.open_regular``: :class:`ArtifactPathError` otherwise). ``masker``:
    rule 7. ``OSError`` (missing file, permissions) propagates unchanged.
    """
    _check_limit("max_bytes", max_bytes)
    with open(path, "rb") if root is None else open_regular(root, os.fspath(path)) as handle:
        blob = handle.read(max_bytes + 1) if max_bytes else handle.read()
    try:
        return parse_dotenv(blob, max_bytes=max_bytes, max_variables=max_variables, masker=masker)
    except DotenvError as exc:
        raise exc.with_file(str(path)) from None
