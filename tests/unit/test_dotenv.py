"""GitLab's dotenv report rules (spec §6.1, seed 003: UTF-8 only)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ci_vars.dotenv import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_VARIABLES,
    dotenv_variables,
    parse_dotenv,
    read_dotenv_file,
    ruby_strip,
)
from airflow_ci_vars.errors import DotenvError
from airflow_ci_vars.variables.model import Layer, VariableSource

KEY_CHARSET = "Validation failed: Key can contain only letters, digits and '_'."
KEY_BLANK = "Validation failed: Key can't be blank"


def error_of(data: str | bytes, **limits: int) -> DotenvError:
    with pytest.raises(DotenvError) as info:
        parse_dotenv(data, **limits)
    return info.value


# --- the spec's behaviour table ---------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        pytest.param("KEY1 =VAR1", "KEY1", "VAR1", id="space-before-equals-stripped"),
        pytest.param("KEY=VARCONTAINING=EQLS", "KEY", "VARCONTAINING=EQLS", id="split-at-first-equals"),
        pytest.param('KEY1="VAR1"', "KEY1", '"VAR1"', id="double-quotes-kept"),
        pytest.param("KEY1='VAR1'", "KEY1", "'VAR1'", id="single-quotes-kept"),
        pytest.param('KEY1="  VAR1  "', "KEY1", '"  VAR1  "', id="only-outer-whitespace-stripped"),
        pytest.param("KEY1=", "KEY1", "", id="empty-value"),
        pytest.param("skateboard=🛹", "skateboard", "🛹", id="non-ascii-value"),
        pytest.param("KEY1=V A R 1", "KEY1", "V A R 1", id="inner-spaces-kept"),
        pytest.param(
            "KEY1=VAR1         # This is variable",
            "KEY1",
            "VAR1         # This is variable",
            id="no-comment-support",
        ),
        pytest.param("KEY2=${KEY1}_Test", "KEY2", "${KEY1}_Test", id="no-expansion"),
        pytest.param("KEY1=VAR1\r", "KEY1", "VAR1", id="crlf-carriage-return-stripped"),
        pytest.param("1VAR=x", "1VAR", "x", id="key-may-start-with-digit"),
        pytest.param("\tKEY\t=\tv\t", "KEY", "v", id="tabs-stripped"),
    ],
)
def test_behaviour_table_accepted_lines(line: str, key: str, value: str) -> None:
    assert parse_dotenv(line + "\n") == {key: value}


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        pytest.param("=VAR1\n", KEY_BLANK, 1, id="blank-key"),
        pytest.param("K E Y 1=VAR1\n", KEY_CHARSET, 1, id="spaces-in-key"),
        pytest.param("🛹=x\n", KEY_CHARSET, 1, id="emoji-key"),
        pytest.param("{ 'KEY1': 'VAR1' }\n", "Invalid Format", 1, id="json-like-line"),
        pytest.param("A=1\n\nB=2\n", "Invalid Format", 2, id="empty-line-in-the-middle"),
        pytest.param("\nA=1\n", "Invalid Format", 1, id="empty-first-line"),
        pytest.param("A=1\n\n", "Invalid Format", 2, id="trailing-blank-line"),
        pytest.param("# comment\n", "Invalid Format", 1, id="comment-without-equals"),
        pytest.param("# a=b\n", KEY_CHARSET, 1, id="comment-with-equals-is-a-bad-key"),
        pytest.param("export KEY=V\n", KEY_CHARSET, 1, id="export-prefix-is-a-bad-key"),
        pytest.param("A=1\nB-C=2\n", KEY_CHARSET, 2, id="bad-key-line-number"),
        pytest.param("A=1\n   \n", "Invalid Format", 2, id="whitespace-only-line"),
    ],
)
def test_behaviour_table_refused_files(text: str, message: str, line: int) -> None:
    err = error_of(text)
    assert (err.message, err.line) == (message, line)


def test_duplicate_keys_last_value_wins_first_position_kept() -> None:
    parsed = parse_dotenv("A=1\nB=2\nA=3\n")
    assert parsed == {"A": "3", "B": "2"}
    assert list(parsed) == ["A", "B"]


def test_duplicate_after_strip_is_the_same_key() -> None:
    assert parse_dotenv("A =1\nA=2\n") == {"A": "2"}


def test_empty_file_has_no_variables() -> None:
    assert parse_dotenv("") == {}
    assert parse_dotenv(b"") == {}


def test_file_without_final_newline_is_accepted() -> None:
    assert parse_dotenv("A=1\nB=2") == {"A": "1", "B": "2"}


def test_crlf_file() -> None:
    assert parse_dotenv(b"A=1\r\nB=2\r\n") == {"A": "1", "B": "2"}


def test_lines_split_on_newline_only() -> None:
    # Ruby each_line: \r, \v, \f, \x1c-\x1e, \x85, U+2028/2029 do not end a line.
    for sep in ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]:
        assert parse_dotenv(f"A=1{sep}B=2\n") == {"A": f"1{sep}B=2"}


def test_ruby_strip_keeps_unicode_spaces() -> None:
    assert ruby_strip("\x00\t\n\x0b\x0c\r a \x00") == "a"
    assert ruby_strip("\u00a0a\u2003") == "\u00a0a\u2003"
    assert parse_dotenv("A=\u00a0v\u00a0\n") == {"A": "\u00a0v\u00a0"}


def test_unicode_space_around_key_is_refused() -> None:
    assert error_of("\u00a0KEY=v\n").message == KEY_CHARSET


def test_key_too_long_is_refused() -> None:
    assert parse_dotenv("K" * 255 + "=v") == {"K" * 255: "v"}
    err = error_of("K" * 256 + "=v", max_bytes=0)
    assert "too long" in err.message
    assert err.line == 1


def test_nul_in_value_is_refused() -> None:
    err = error_of("A=1\nB=x\x00y\n")
    assert err.line == 2
    assert "NUL" in err.message


def test_trailing_nul_is_stripped_like_ruby() -> None:
    assert parse_dotenv("A=x\x00\n") == {"A": "x"}


# --- encoding ---------------------------------------------------------------------------


def test_utf8_bytes_are_decoded() -> None:
    assert parse_dotenv("A=é\n".encode()) == {"A": "é"}


def test_leading_utf8_bom_is_stripped() -> None:
    assert parse_dotenv(b"\xef\xbb\xbfA=1\n") == {"A": "1"}
    assert parse_dotenv("\ufeffA=1\n") == {"A": "1"}


def test_invalid_utf8_names_the_line() -> None:
    err = error_of(b"A=1\nB=2\nC=\xff\n")
    assert err.line == 3
    assert err.message.startswith("Invalid UTF-8 encoding")


def test_utf16_is_not_supported() -> None:
    # Seed 003: "Only UTF-8 encoding is supported" (GitLab's code also accepted UTF-16).
    err = error_of("A=1\n".encode("utf-16"))
    assert err.line == 1
    assert "UTF-16 is not supported" in err.message


def test_lone_surrogate_in_text_is_an_encoding_error() -> None:
    err = error_of("A=1\nB=\ud800\n")
    assert (err.line, err.message.startswith("Invalid UTF-8")) == (2, True)


# --- limits -----------------------------------------------------------------------------


def test_default_limits_are_gitlabs() -> None:
    assert (DEFAULT_MAX_BYTES, DEFAULT_MAX_VARIABLES) == (5120, 20)


def test_file_of_exactly_max_bytes_is_accepted() -> None:
    text = "A=" + "x" * (DEFAULT_MAX_BYTES - 3) + "\n"
    assert len(text.encode()) == DEFAULT_MAX_BYTES
    assert parse_dotenv(text)["A"] == "x" * (DEFAULT_MAX_BYTES - 3)


def test_file_over_max_bytes_is_too_big() -> None:
    err = error_of("A=" + "x" * (DEFAULT_MAX_BYTES - 2) + "\n")
    assert err.message == "Dotenv Artifact Too Big. Maximum Allowable Size: 5120"
    assert err.line is None


def test_size_is_measured_in_utf8_bytes() -> None:
    text = "A=" + "é" * 5  # 2 + 10 bytes
    assert parse_dotenv(text, max_bytes=12)
    assert error_of(text, max_bytes=11).message.endswith("Maximum Allowable Size: 11")


def test_size_checked_before_format() -> None:
    assert error_of("garbage\n" * 10, max_bytes=10).message.startswith("Dotenv Artifact Too Big")


def test_twenty_variables_are_accepted() -> None:
    assert len(parse_dotenv("".join(f"K{i}=v\n" for i in range(20)))) == 20


def test_more_than_max_variables_is_refused() -> None:
    err = error_of("".join(f"K{i}=v\n" for i in range(21)))
    assert err.message == "Dotenv files cannot have more than 20 variables"
    assert err.line is None


def test_duplicates_count_once_against_the_variable_limit() -> None:
    assert parse_dotenv("A=1\nA=2\nA=3\n", max_variables=1) == {"A": "3"}


def test_count_checked_before_keys_as_gitlab_saves_after_counting() -> None:
    err = error_of("bad key=1\nB=2\nC=3\n", max_variables=2)
    assert err.message == "Dotenv files cannot have more than 2 variables"


def test_zero_disables_limits() -> None:
    text = "".join(f"K{i}={'x' * 300}\n" for i in range(30))
    assert len(parse_dotenv(text, max_bytes=0, max_variables=0)) == 30


def test_negative_limit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        parse_dotenv("A=1", max_bytes=-1)


def test_format_error_reported_before_key_error() -> None:
    err = error_of("bad key=1\nno equals\n")
    assert (err.message, err.line) == ("Invalid Format", 2)


def test_error_never_contains_the_value() -> None:
    many = "".join(f"K{i}=s3cr3t\n" for i in range(30))
    cases: list[tuple[str | bytes, dict[str, int]]] = [
        ("bad key=s3cr3t\n", {}),
        ("A=s3cr3t\x00x\n", {}),
        ("A=s3cr3t\xff\n".encode("latin-1"), {}),
        (many, {}),
        (many, {"max_bytes": 10}),
    ]
    for text, limits in cases:
        err = error_of(text, **limits)
        assert "s3cr3t" not in str(err)


def test_invalid_file_gives_no_partial_result() -> None:
    with pytest.raises(DotenvError):
        parse_dotenv("A=1\nB=2\nbroken\n")


# --- variables and files ----------------------------------------------------------------


def test_dotenv_variables_are_not_raw_and_come_from_the_producer() -> None:
    variables = dotenv_variables("A=$B\nB=2\n", producer="build")
    assert [(v.key, v.value, v.raw) for v in variables] == [("A", "$B", False), ("B", "2", False)]
    assert {v.source for v in variables} == {VariableSource(Layer.DOTENV, "build")}


def test_dotenv_variables_without_producer() -> None:
    (variable,) = dotenv_variables(b"A=1")
    assert variable.source == VariableSource(Layer.DOTENV, None)


def test_read_dotenv_file(tmp_path: Path) -> None:
    path = tmp_path / "build.env"
    path.write_bytes(b"A=1\r\nB=2\r\n")
    assert read_dotenv_file(path) == {"A": "1", "B": "2"}


def test_read_dotenv_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "build.env"
    path.write_text("A=1\nnope\n")
    with pytest.raises(DotenvError) as info:
        read_dotenv_file(path)
    assert (info.value.file, info.value.line) == (str(path), 2)
    assert str(info.value) == f"{path}:2: Invalid Format"


def test_read_dotenv_file_refuses_big_file_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.env"
    path.write_bytes(b"A=" + b"x" * 1_000_000)
    with pytest.raises(DotenvError) as info:
        read_dotenv_file(path, max_bytes=100)
    assert str(info.value) == f"{path}: Dotenv Artifact Too Big. Maximum Allowable Size: 100"


def test_read_dotenv_file_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_dotenv_file(tmp_path / "missing.env")


# --- properties -------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_dotenv_error(data: bytes) -> None:
    try:
        result = parse_dotenv(data, max_bytes=512, max_variables=5)
    except DotenvError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


_DOTENVISH = st.sampled_from("AZaz09_= \t\r\n\x00#\"'é\u00a0\u2028\ufeff")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=_DOTENVISH, max_size=300) | st.text(max_size=300))
def test_arbitrary_text_raises_only_dotenv_error(text: str) -> None:
    try:
        result = parse_dotenv(text, max_bytes=0, max_variables=10)
    except DotenvError as err:
        assert err.message
        return
    assert len(result) <= 10
    for key, value in result.items():
        assert key and set(key) <= set(string.ascii_letters + string.digits + "_")
        assert "\n" not in value and "\x00" not in value


_KEYS = st.from_regex(r"[A-Za-z0-9_]{1,30}", fullmatch=True)
_EDGE = "\x00\t\n\x0b\x0c\r "
_VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\n\x00"), max_size=40).filter(
    lambda v: v == v.strip(_EDGE)
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=20), st.booleans(), st.booleans())
def test_valid_generated_files_round_trip(variables: dict[str, str], final_newline: bool, crlf: bool) -> None:
    eol = "\r\n" if crlf else "\n"
    text = eol.join(f"{k}={v}" for k, v in variables.items())
    if variables and final_newline:
        text += eol
    parsed = parse_dotenv(text.encode(), max_bytes=0)
    assert parsed == variables
    assert list(parsed) == list(variables)
