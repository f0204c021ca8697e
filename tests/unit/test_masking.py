"""Masking: GitLab's maskability rules and gitlab-runner's log masking, without its leaks."""

from __future__ import annotations

import base64
import itertools
import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ci_vars import masking
from airflow_ci_vars.errors import MaskabilityError
from airflow_ci_vars.masking import (
    DEFAULT_TOKEN_PREFIXES,
    Masker,
    MaskingStream,
    is_maskable,
    maskability_problem,
    validate_maskable,
)

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def stream_parts(masker: Masker, parts: list[str]) -> str:
    """Write ``parts`` one by one to a fresh stream; return everything it emitted."""
    stream = masker.stream()
    return "".join(stream.write(p) for p in parts) + stream.flush()


def split_bars(text: str) -> list[str]:
    """gitlab-runner test notation: ``|`` marks a write boundary."""
    return text.split("|")


def every_split(text: str) -> list[list[str]]:
    """All two-write chunkings of ``text``, plus one character per write (with empty writes)."""
    splits = [[text[:i], text[i:]] for i in range(len(text) + 1)]
    splits.append([c for ch in text for c in ("", ch)])
    return splits


def union_of_occurrences(secrets: list[str], text: str, replacement: str) -> str:
    """Reference model: every occurrence of every secret; each run of overlapping ones -> one replacement."""
    phrases = {s.strip() for s in secrets if s.strip()}
    spans = sorted((i, i + len(p)) for p in phrases for i in range(len(text)) if text.startswith(p, i))
    out: list[str] = []
    pos = 0
    run: list[int] = []
    for start, end in spans:
        if run and start < run[1]:
            run[1] = max(run[1], end)
            continue
        if run:
            out += [text[pos : run[0]], replacement]
            pos = run[1]
        run = [start, end]
    if run:
        out += [text[pos : run[0]], replacement]
        pos = run[1]
    out.append(text[pos:])
    return "".join(out)


def plain(secrets: list[str], replacement: str = "[MASKED]") -> Masker:
    """A masker doing GitLab's phrase masking only."""
    return Masker(secrets, replacement=replacement, encoded_forms=False, sanitize=False)


# --------------------------------------------------------------------------------------------
# Maskability (Rails Ci::Maskable)
# --------------------------------------------------------------------------------------------

MASKABILITY_TABLE = [
    # value, maskable when expanded, maskable when raw
    ("hello", False, False),
    ("hello world", False, False),
    ("helloworld123", True, True),
    ("Hello+World_123/@:-~.", True, True),
    ("HelloWorld%#^", False, True),
    ("hello$VARIABLEworld", False, True),
    ("12345678", True, True),
    ("1234567", False, False),
    ("line1234\nline5678", False, False),
    ("tab\tseparated", False, False),
    ("caf\u00e9caf\u00e9", False, True),
]


@pytest.mark.parametrize(("value", "expanded_ok", "raw_ok"), MASKABILITY_TABLE)
def test_maskability_follows_gitlab_rules(value: str, expanded_ok: bool, raw_ok: bool) -> None:
    assert is_maskable(value) is expanded_ok
    assert is_maskable(value, raw=True) is raw_ok
    assert (maskability_problem(value) is None) is expanded_ok
    assert (maskability_problem(value, raw=True) is None) is raw_ok


@pytest.mark.parametrize(("value", "_e", "_r"), MASKABILITY_TABLE)
@pytest.mark.parametrize("raw", [False, True])
def test_maskability_reason_never_contains_the_value(value: str, _e: bool, _r: bool, raw: bool) -> None:
    reason = maskability_problem(value, raw=raw)
    if reason is not None:
        assert value not in reason


def test_short_value_reason_says_minimum_length() -> None:
    assert maskability_problem("hello") == "must be at least 8 characters"


def test_value_with_spaces_reason_says_single_line() -> None:
    assert maskability_problem("hello world") == "must be a single line with no spaces"
    assert maskability_problem("hello world", raw=True) == "must be a single line with no spaces"


def test_forbidden_characters_are_refused_without_naming_them() -> None:
    reason = maskability_problem("HelloWorld%#^%%")
    assert reason is not None
    assert reason.startswith("can contain only letters, digits and '_', '+', '='")
    assert "(disable expansion to allow other characters)" in reason
    for char in "%#^":
        assert char not in reason


def test_dollar_is_refused_unless_raw() -> None:
    reason = maskability_problem("hello$VARIABLEworld")
    assert reason is not None and reason.endswith("(disable expansion to allow other characters)")
    assert maskability_problem("hello$VARIABLEworld", raw=True) is None


def test_several_problems_are_all_reported() -> None:
    reason = maskability_problem("a b%")
    assert reason is not None
    assert "at least 8" in reason and "single line" in reason and "can contain only" in reason


def test_raw_rule_uses_ascii_whitespace_like_ruby() -> None:
    # Ruby's \s is ASCII-only, so a no-break space is an ordinary character for a raw value.
    assert is_maskable("abcd\u00a0efgh", raw=True)
    assert not is_maskable("abcd\u00a0efgh")


def test_validate_maskable_error_names_key_and_reason_not_value() -> None:
    with pytest.raises(MaskabilityError) as info:
        validate_maskable("HelloWorld%#^", key="API_TOKEN")
    err = info.value
    assert str(err).startswith("Validation failed: Value of variable 'API_TOKEN' cannot be masked: can contain only")
    assert "HelloWorld" not in str(err)
    assert err.key == "API_TOKEN"
    assert err.field == "masked"
    assert err.reason == maskability_problem("HelloWorld%#^")


def test_validate_maskable_accepts_raw_value_with_symbols() -> None:
    validate_maskable("HelloWorld%#^", raw=True, key="K")


def test_validate_maskable_without_key() -> None:
    with pytest.raises(MaskabilityError, match=r"^Validation failed: Value cannot be masked: must be at least 8"):
        validate_maskable("short")


# --------------------------------------------------------------------------------------------
# Phrase masking: gitlab-runner's masker_test.go vectors ('|' = write boundary)
# --------------------------------------------------------------------------------------------

RUNNER_VECTORS = [
    ("empty secrets have no affect", [""], "empty secrets have no affect"),
    ("no escaping at all", [], "no escaping at all"),
    ("secrets", ["secrets"], "[MASKED]"),
    ("secret|s", ["secrets"], "[MASKED]"),
    ("s|ecrets", ["secrets"], "[MASKED]"),
    ("secretssecrets", ["secrets"], "[MASKED][MASKED]"),
    ("ssecrets", ["secrets"], "s[MASKED]"),
    ("s|secrets", ["secrets"], "s[MASKED]"),
    ("at the start of the buffer", ["at"], "[MASKED] the start of the buffer"),
    ("in the middle of the buffer", ["middle"], "in the [MASKED] of the buffer"),
    ("at the end of the buffer", ["buffer"], "at the end of the [MASKED]"),
    ("all values are masked", ["all", "values", "are", "masked"], "[MASKED] [MASKED] [MASKED] [MASKED]"),
    (
        "prefixed and suffixed: xfoox ybary ffoo barr ffooo bbarr",
        ["foo", "bar"],
        "prefixed and suffixed: x[MASKED]x y[MASKED]y f[MASKED] [MASKED]r f[MASKED]o b[MASKED]r",
    ),
    (
        "prefix|ed, su|ffi|xed |and split|:| xfo|ox y|bary ffo|o ba|rr ffooo b|barr",
        ["foo", "bar"],
        "prefixed, suffixed and split: x[MASKED]x y[MASKED]y f[MASKED] [MASKED]r f[MASKED]o b[MASKED]r",
    ),
    (
        "sp|lit al|l val|ues ar|e |mask|ed",
        ["split", "all", "values", "are", "masked"],
        "[MASKED] [MASKED] [MASKED] [MASKED] [MASKED]",
    ),
    (
        "prefix_mask mask prefix_|mask prefix_ma|sk mas|k",
        ["mask", "prefix_mask"],
        "[MASKED] [MASKED] [MASKED] [MASKED] [MASKED]",
    ),
    ("large secret: " + "_" * 8000 + "|" + "_" * 8000, ["_" * 16000], "large secret: [MASKED]"),
    ("overlap: this is the en| foobar", ["this is the end", "en foobar", "en"], "overlap: this is the [MASKED]"),
]


@pytest.mark.parametrize(("text", "secrets", "expected"), RUNNER_VECTORS, ids=range(len(RUNNER_VECTORS)))
def test_runner_masking_vectors_streamed_as_written(text: str, secrets: list[str], expected: str) -> None:
    masker = Masker(secrets)
    assert stream_parts(masker, split_bars(text)) == expected


@pytest.mark.parametrize(("text", "secrets", "expected"), RUNNER_VECTORS, ids=range(len(RUNNER_VECTORS)))
def test_runner_masking_vectors_one_shot(text: str, secrets: list[str], expected: str) -> None:
    assert Masker(secrets).mask(text.replace("|", "")) == expected


def test_longest_secret_starting_at_a_position_wins() -> None:
    masker = plain(["abcdef12", "abcdef12345678"])
    assert masker.mask("abcdef12345678") == "[MASKED]"
    assert masker.mask("xabcdef1234567") == "x[MASKED]34567"
    assert plain(["abc", "bcdef"]).mask("xabcdefx") == "x[MASKED]x"  # overlapping different secrets
    for parts in every_split("abcdef12345678"):
        assert stream_parts(masker, parts) == "[MASKED]"


def test_self_overlapping_secret_split_across_writes_does_not_leak() -> None:
    # gitlab-runner outputs 'abababx' for writes 'abab' + 'abx'.
    masker = plain(["ababx"])
    assert stream_parts(masker, ["abab", "abx"]) == "ab[MASKED]"
    for parts in every_split("abababx"):
        assert stream_parts(masker, parts) == "ab[MASKED]"


def test_secret_split_at_every_position_is_masked() -> None:
    masker = Masker(["s3cr3t-Value"])
    text = "before s3cr3t-Value after"
    for parts in every_split(text):
        assert stream_parts(masker, parts) == "before [MASKED] after"


def test_non_ascii_secrets_and_text_use_character_positions() -> None:
    secret = "p\u00e4ss\U0001f600w\u00f6rd"
    text = "\u00e9\u00e9 \U0001f600 " + secret + " \u00e9\U0001f600" + secret
    masker = Masker([secret, "\u00e9\U0001f600"])
    expected = "\u00e9\u00e9 \U0001f600 [MASKED] [MASKED][MASKED]"
    assert masker.mask(text) == expected
    for parts in every_split(text):
        assert stream_parts(masker, parts) == expected


def test_lone_surrogates_in_text_or_secret_do_not_break_masking() -> None:
    # Text decoded with errors="surrogateescape" can hold lone surrogates.
    text = "a secret\udcff b \udc80 plain-secret \U00100000 \u00e9 plain-secret"
    expected = "a [MASKED] b \udc80 [MASKED] \U00100000 \u00e9 [MASKED]"
    for secrets in (["secret\udcff", "plain-secret"], ["secret\udcff", "plain-secret", "\udc80x"]):
        masker = Masker(secrets)
        assert masker.mask(text) == expected
        assert stream_parts(masker, list(text)) == expected
    masker = Masker(["plain-secret"])
    assert masker.mask(text) == "a secret\udcff b \udc80 [MASKED] \U00100000 \u00e9 [MASKED]"


def test_replacement_option_is_used_everywhere() -> None:
    masker = Masker(["topsecret1"], replacement="***")
    assert masker.mask("x topsecret1 glpat-abc ?private_token=zz") == "x *** glpat-*** ?private_token=***"


def test_empty_replacement_is_refused() -> None:
    with pytest.raises(ValueError, match="replacement"):
        Masker(["secret"], replacement="")


def test_empty_and_whitespace_secrets_are_ignored() -> None:
    masker = Masker(["", "   ", "\n\t"])
    assert len(masker) == 0
    assert masker.secrets == ()
    assert masker.mask("nothing to hide   here") == "nothing to hide   here"


def test_secrets_are_trimmed_like_the_runner() -> None:
    masker = Masker(["  hunter22\n"])
    assert masker.secrets == ("hunter22",)
    assert masker.mask("pw= hunter22 ") == "pw= [MASKED] "


def test_secrets_are_deduplicated_and_listed_longest_first() -> None:
    masker = Masker(["bbb", "a", " bbb", "cccc", "a"], encoded_forms=False)
    assert masker.secrets == ("cccc", "bbb", "a")
    assert len(masker) == 3


def test_repr_does_not_reveal_secrets() -> None:
    masker = Masker(["supersecretvalue", "another-one"])
    assert "supersecret" not in repr(masker)
    assert "another" not in repr(masker)
    assert repr(masker).startswith("Masker(<2 secrets")


def test_non_string_secret_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Masker([b"bytes"])  # type: ignore[list-item]


def test_stream_can_be_reused_after_flush() -> None:
    stream = Masker(["hunter22"]).stream()
    assert isinstance(stream, MaskingStream)
    first = stream.write("a hunter") + stream.flush()
    second = stream.write("22 b") + stream.flush()
    assert (first, second) == ("a hunter", "22 b")


def test_stream_emits_settled_text_before_flush() -> None:
    stream = plain(["hunter22"]).stream()
    emitted = stream.write("line one hunter22 line two\n")
    # Only the last len(secret) - 1 characters may be held back.
    assert emitted == "line one [MASKED] li"
    assert emitted + stream.flush() == "line one [MASKED] line two\n"


# --------------------------------------------------------------------------------------------
# Encoded forms (beyond GitLab)
# --------------------------------------------------------------------------------------------

ENCODED_SECRET = "p@ss w/rd+\u00e9!"


@pytest.mark.parametrize(
    "form",
    [
        quote(ENCODED_SECRET, safe=""),
        quote_plus(ENCODED_SECRET),
        base64.b64encode(ENCODED_SECRET.encode()).decode(),
        base64.b64encode(ENCODED_SECRET.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(ENCODED_SECRET.encode()).decode(),
        base64.urlsafe_b64encode(ENCODED_SECRET.encode()).decode().rstrip("="),
    ],
)
def test_url_encoded_and_base64_forms_are_masked(form: str) -> None:
    masker = Masker([ENCODED_SECRET], sanitize=False)
    assert form != ENCODED_SECRET
    assert masker.mask(f"<{form}>") == "<[MASKED]>"
    assert stream_parts(masker, list(f"<{form}>")) == "<[MASKED]>"


def test_padded_base64_form_is_masked_whole() -> None:
    secret = "abcd"  # base64 'YWJjZA==': the padding must not be left behind
    masker = Masker([secret], sanitize=False)
    assert masker.mask("Authorization: Basic YWJjZA==") == "Authorization: Basic [MASKED]"


def test_encoded_forms_can_be_disabled() -> None:
    encoded = base64.b64encode(b"hunter22hunter22").decode()
    assert plain(["hunter22hunter22"]).mask(encoded) == encoded
    assert Masker(["hunter22hunter22"]).mask(encoded) == "[MASKED]"


def test_encoded_forms_are_listed_as_phrases_but_not_as_secrets() -> None:
    masker = Masker(["a b"])
    assert masker.secrets == ("a b",)
    assert {"a%20b", "a+b", "YSBi"} <= set(masker.phrases)


# --------------------------------------------------------------------------------------------
# URL parameter sanitizer (urlsanitizer_test.go vectors)
# --------------------------------------------------------------------------------------------

URL_VECTORS = [
    ("no escaping at all http://example.org/?test=foobar", "no escaping at all http://example.org/?test=foobar"),
    (
        "multiple: &private_token=hello &?x-amz-security-token=hello &?x-amz-security-token=hello "
        "?x-amz-security?x-amz-security-token=hello",
        "multiple: &private_token=[MASKED] &?x-amz-security-token=[MASKED] &?x-amz-security-token=[MASKED] "
        "?x-amz-security?x-amz-security-token=[MASKED]",
    ),
    (
        "above known key size: http://example.org/?this-is-a-really-really-long-key-name=foobar",
        "above known key size: http://example.org/?this-is-a-really-really-long-key-name=foobar",
    ),
    (
        "http://example.com/?private_token=deadbeef sensitive URL at the start",
        "http://example.com/?private_token=[MASKED] sensitive URL at the start",
    ),
    (
        "a sensitive URL at the end http://example.com/?authenticity_token=deadbeef",
        "a sensitive URL at the end http://example.com/?authenticity_token=[MASKED]",
    ),
    (
        "a sensitive URL http://example.com/?X-AMZ-sigNATure=deadbeef with mixed case",
        "a sensitive URL http://example.com/?X-AMZ-sigNATure=[MASKED] with mixed case",
    ),
    (
        "a sensitive URL http://example.com/?rss_token=hide&x-amz-credential=deadbeef both params",
        "a sensitive URL http://example.com/?rss_token=[MASKED]&x-amz-credential=[MASKED] both params",
    ),
    (
        "a really long sensitive URL http://example.com/?x-amz-credential=" + "0" * 8192 + " that is still scrubbed",
        "a really long sensitive URL http://example.com/?x-amz-credential=[MASKED] that is still scrubbed",
    ),
    (
        "spl|it sensit|ive UR|L http://example.com/?x-amz-cred|ential=abcdefghij|klmnopqrstuvwxyz01234567",
        "split sensitive URL http://example.com/?x-amz-credential=[MASKED]",
    ),
    (
        "newline: http://example.com/?x-amz-credential=abc\nhttp://example.com/?x-amz-credential=abc",
        "newline: http://example.com/?x-amz-credential=[MASKED]\nhttp://example.com/?x-amz-credential=[MASKED]",
    ),
    (
        "control character: http://example.com/?x-amz-credential=abc\bhttp://example.com/?x-amz-credential=abc",
        "control character: http://example.com/?x-amz-credential=[MASKED]\bhttp://example.com/?x-amz-credential=[MASKED]",
    ),
    (
        "rss_token=notmasked http://x/?rss_token=!@#$A&x-amz-credential=abc&test=test",
        "rss_token=notmasked http://x/?rss_token=[MASKED]&x-amz-credential=[MASKED]&test=test",
    ),
    (
        "query string with no value: http://example.com/?x-amz-credential=&private_token=gitlab",
        "query string with no value: http://example.com/?x-amz-credential=[MASKED]&private_token=[MASKED]",
    ),
    (
        "invalid URL with double ?: http://example.com/?x-amz-credential=abc??private_token=gitlab",
        "invalid URL with double ?: http://example.com/?x-amz-credential=[MASKED]??private_token=[MASKED]",
    ),
    (
        "split after ?: http://example.com/|?||x-amz-cre|dential=abc",
        "split after ?: http://example.com/?x-amz-credential=[MASKED]",
    ),
    (
        "interweaved tokens: ?|one ?x-amz-credential=abc two=three ?|one=two &token &x-amz-credential=abc =token ?=",
        "interweaved tokens: ?one ?x-amz-credential=[MASKED] two=three ?one=two &token &x-amz-credential=[MASKED] "
        "=token ?=",
    ),
    ("terminated before mask: ?x|-", "terminated before mask: ?x-"),
    ("terminated before mask: ?x-amz-credential=|", "terminated before mask: ?x-amz-credential=[MASKED]"),
]


@pytest.mark.parametrize(("text", "expected"), URL_VECTORS, ids=range(len(URL_VECTORS)))
def test_sensitive_url_parameters_are_masked(text: str, expected: str) -> None:
    masker = Masker([])
    assert masker.mask(text.replace("|", "")) == expected
    assert stream_parts(masker, split_bars(text)) == expected
    assert stream_parts(masker, list(text.replace("|", ""))) == expected


# --------------------------------------------------------------------------------------------
# Token-prefix sanitizer (token_masker_test.go vectors)
# --------------------------------------------------------------------------------------------

TOKEN_VECTORS: list[tuple[list[str], str, str]] = [
    (
        [],
        "Lorem ipsum dolor sit amet, ex ea commodo glpat-imperdiet in voluptate velit esse",
        "Lorem ipsum dolor sit amet, ex ea commodo glpat-[MASKED] in voluptate velit esse",
    ),
    ([], "velit esseglpat-imperdiet", "velit esseglpat-[MASKED]"),
    ([], "glpat-imperdiet Lorem", "glpat-[MASKED] Lorem"),
    ([], "esseglpat-imperdiet=_-. end", "esseglpat-[MASKED] end"),
    ([], "glpat-impglpat-erdiet Lorem", "glpat-[MASKED] Lorem"),
    (
        [],
        "glpat|-imperdiet Lorem ipsum dolor sit amet, ex ea commodo gl|pat-imperdiet in",
        "glpat-[MASKED] Lorem ipsum dolor sit amet, ex ea commodo glpat-[MASKED] in",
    ),
    ([], "glpat| -imperdiet Lorem ipsum dolor sit amet", "glpat -imperdiet Lorem ipsum dolor sit amet"),
    (
        [],
        "Lorglpat-ipsu dolor sit amglp|at-t, consglpat-ctg|lpat-tur adipiscing glpat-lit, sglpat-|d do "
        "glpat-iusmod t|glpat-mpor incididunt ut |laborglpat-=_ glpat-t dolorglpat-=_ magna aliqua.",
        "Lorglpat-[MASKED] dolor sit amglpat-[MASKED], consglpat-[MASKED] adipiscing glpat-[MASKED], "
        "sglpat-[MASKED] do glpat-[MASKED] tglpat-[MASKED] incididunt ut laborglpat-[MASKED] glpat-[MASKED] "
        "dolorglpat-[MASKED] magna aliqua.",
    ),
    (
        [],
        "Lorglpat- ipsu dolor sit amglpat-t",
        "Lorglpat- ipsu dolor sit amglpat-[MASKED]",
    ),
    (["token-"], "token-imperdiet Lorem ipsum", "token-[MASKED] Lorem ipsum"),
    (
        ["tok-"],
        "Lortok-ipsu dolor sit amt|ok-t, cons-ctg|lpat-tur adipiscing tok-lit, stok-|d do tok-iusmod "
        "t|tok-mpor incididunt ut |labortok-=_ tok-t dolortok-=_ magna aliqua. Tglpat-llus orci ac auctor "
        "auguglpat-eee mauris auguglpat-wEr_ lorem",
        "Lortok-[MASKED] dolor sit amtok-[MASKED], cons-ctglpat-[MASKED] adipiscing tok-[MASKED], "
        "stok-[MASKED] do tok-[MASKED] ttok-[MASKED] incididunt ut labortok-[MASKED] tok-[MASKED] "
        "dolortok-[MASKED] magna aliqua. Tglpat-[MASKED] orci ac auctor auguglpat-[MASKED] mauris "
        "auguglpat-[MASKED] lorem",
    ),
    ([], "glpat-abcdef", "glpat-[MASKED]"),
    ([], "bare prefix glpat- stays", "bare prefix glpat- stays"),
    ([], "cookie _gitlab_session=0a1b2c; path=/", "cookie _gitlab_session=[MASKED]; path=/"),
]


@pytest.mark.parametrize(("prefixes", "text", "expected"), TOKEN_VECTORS, ids=range(len(TOKEN_VECTORS)))
def test_gitlab_token_prefixes_are_masked(prefixes: list[str], text: str, expected: str) -> None:
    masker = Masker([], token_prefixes=prefixes)
    assert masker.mask(text.replace("|", "")) == expected
    assert stream_parts(masker, split_bars(text)) == expected
    assert stream_parts(masker, list(text.replace("|", ""))) == expected


@pytest.mark.parametrize("prefix", DEFAULT_TOKEN_PREFIXES)
def test_every_default_token_prefix_is_masked(prefix: str) -> None:
    assert Masker([]).mask(f"x {prefix}Tok3n_value.x=1 y") == f"x {prefix}[MASKED] y"


@pytest.mark.parametrize("prefix", ["", "Bearer ", "tok\n", "a?b", "a&b"])
def test_token_prefix_that_could_span_a_stream_cut_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="token prefixes"):
        Masker([], token_prefixes=[prefix])


def test_sanitizers_can_be_disabled() -> None:
    text = "glpat-abcdef http://x/?private_token=abc"
    assert Masker([], sanitize=False).mask(text) == text


def test_phrase_mask_next_to_a_token_prefix_is_not_remangled() -> None:
    masker = Masker(["abcdefgh"])
    for text, expected in [
        ("glpat-abcdefgh", "glpat-[MASKED]"),
        ("glpat-abcdefghXYZ rest", "glpat-[MASKED]XYZ rest"),
        ("?private_token=abcdefgh&x=1", "?private_token=[MASKED]&x=1"),
    ]:
        assert masker.mask(text) == expected
        for parts in every_split(text):
            assert stream_parts(masker, parts) == expected


def test_long_text_without_whitespace_streams_identically() -> None:
    masker = Masker(["s3cretvalue"])
    text = ("A" * 5000 + "s3cretvalue" + "glpat-" + "B" * 3000 + "?x-amz-signature=" + "C" * 7000) * 3
    expected = masker.mask(text)
    assert "s3cretvalue" not in expected and "BBB" not in expected and "CCC" not in expected
    chunks = [text[i : i + 997] for i in range(0, len(text), 997)]
    assert stream_parts(masker, chunks) == expected


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@st.composite
def secrets_and_text(draw: st.DrawFn, alphabet: str, noise: str) -> tuple[list[str], str, list[str]]:
    """Secrets over a small alphabet, a text interleaving them with noise, and a chunking of it."""
    secrets = draw(st.lists(st.text(alphabet, min_size=1, max_size=12), min_size=1, max_size=5))
    pieces = draw(st.lists(st.one_of(st.sampled_from(secrets), st.text(noise, max_size=6)), max_size=12))
    text = "".join(pieces)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=10)))
    bounds = [0, *cuts, len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    return secrets, text, chunks


@settings(max_examples=300, deadline=None)
@given(secrets_and_text(alphabet="ab", noise="ab"))
def test_property_streaming_equals_one_shot_two_letter_alphabet(case: tuple[list[str], str, list[str]]) -> None:
    secrets, text, chunks = case
    masker = plain(secrets, replacement="#")
    assert stream_parts(masker, chunks) == masker.mask(text)


@settings(max_examples=300, deadline=None)
@given(secrets_and_text(alphabet="abc", noise="abc"))
def test_property_no_secret_survives_masking(case: tuple[list[str], str, list[str]]) -> None:
    secrets, text, chunks = case
    masker = plain(secrets, replacement="#")
    streamed = stream_parts(masker, chunks)
    assert streamed == masker.mask(text)
    for secret in masker.secrets:
        assert secret not in streamed


@settings(max_examples=300, deadline=None)
@given(secrets_and_text(alphabet="a\u00e9\U0001f600", noise="a\u00e9\U0001f600 "))
def test_property_masking_covers_every_occurrence(case: tuple[list[str], str, list[str]]) -> None:
    secrets, text, chunks = case
    masker = plain(secrets)
    expected = union_of_occurrences(secrets, text, "[MASKED]")
    assert masker.mask(text) == expected
    assert stream_parts(masker, chunks) == expected


@settings(max_examples=300, deadline=None)
@given(
    secrets_and_text(
        alphabet="ab=?&_-",
        noise="ab &?=\n\x07\u00e9",
    ).filter(lambda c: bool(c[1])),
    st.lists(st.sampled_from(["glpat-", "?private_token=", "&rss_token=", "_gitlab_session=", "YWJh", " "])),
)
def test_property_streaming_equals_one_shot_with_everything_enabled(
    case: tuple[list[str], str, list[str]], extra: list[str]
) -> None:
    secrets, text, _ = case
    # Sprinkle sanitizer triggers between the characters of the text, then chunk it finely.
    full = "".join(c + (extra[i] if i < len(extra) else "") for i, c in enumerate(text))
    masker = Masker(secrets)
    expected = masker.mask(full)
    assert stream_parts(masker, list(full)) == expected
    assert stream_parts(masker, [full[i : i + 3] for i in range(0, len(full), 3)]) == expected


def sanitize_reference(text: str, prefixes: tuple[str, ...] = DEFAULT_TOKEN_PREFIXES) -> str:
    """gitlab-runner's two sanitizers as plain regular expressions, applied in the runner's order."""
    keys = "private_token|authenticity_token|rss_token|x-amz-signature|x-amz-credential|x-amz-security-token"
    text = re.sub(rf"([?&](?i:{keys})=)[^?&\s\x00-\x1f\x7f-\x9f]*", r"\1[MASKED]", text)
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=lambda p: (len(p), p)))
    return re.sub(rf"({alternatives})[A-Za-z0-9._=-]+", r"\1[MASKED]", text)


SANITIZER_SOUP = [
    *("?", "&", "=", "private_token", "RSS_Token", "x-amz-credential", "glpat-", "glrt", "r-", "gl", "pat-"),
    *("_gitlab_session=", "a", "Z9", ".", " ", "\n", "\x07", "\u00e9", "[MASKED]"),
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(SANITIZER_SOUP),
        max_size=25,
    )
)
def test_property_sanitizers_match_the_regex_definition(pieces: list[str]) -> None:
    text = "".join(pieces)
    masker = Masker([])
    assert masker.mask(text) == sanitize_reference(text)
    assert stream_parts(masker, list(text)) == sanitize_reference(text)


# --------------------------------------------------------------------------------------------
# Bounded memory: a long run of overlapping occurrences is not held back forever
# --------------------------------------------------------------------------------------------


def test_stream_memory_is_bounded_for_endless_overlapping_runs() -> None:
    stream = plain(["aaaaaaaa"]).stream()
    out = "".join(stream.write("a" * 1000) for _ in range(200))
    assert out.startswith("[MASKED]")  # emitted long before the end of the input
    assert len(stream._buf) <= masking._MAX_HELD + 1000
    out += stream.write("b end\n") + stream.flush()
    assert "a" not in out.replace("[MASKED]", "")
    assert out.endswith("[MASKED]b end\n")


@settings(max_examples=300, deadline=None)
@given(secrets_and_text(alphabet="ab", noise="abc"))
def test_property_small_hold_limit_never_leaks(case: tuple[list[str], str, list[str]]) -> None:
    secrets, text, chunks = case
    masker = plain(secrets, replacement="#")
    original = masking._MAX_HELD
    masking._MAX_HELD = 3  # force the bounded-memory path as often as possible
    try:
        streamed = stream_parts(masker, chunks)
    finally:
        masking._MAX_HELD = original
    for secret in masker.secrets:
        assert secret not in streamed
    # The clear text is exactly the one-shot clear text; only the count of markers may differ.
    assert streamed.replace("#", "") == masker.mask(text).replace("#", "")


# --------------------------------------------------------------------------------------------
# Periodic and self-overlapping secrets (issue 11: registration and masking stay linear)
# --------------------------------------------------------------------------------------------


@st.composite
def periodic_case(draw: st.DrawFn) -> tuple[list[str], str, list[str]]:
    """Secrets that repeat a short word (``ab`` x 9, ``aab`` x 4 ...), a text of repetitions of
    those words with a little noise, and a chunking of it."""
    words = draw(st.lists(st.text("ab", min_size=1, max_size=3), min_size=1, max_size=3))
    secrets = [w * draw(st.integers(3, 9)) for w in words]
    pieces = draw(st.lists(st.one_of(st.sampled_from(words), st.sampled_from(secrets), st.text("abc", max_size=2))))
    text = "".join(pieces)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return secrets, text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=400, deadline=None)
@given(periodic_case())
def test_property_periodic_secrets_mask_the_union_of_occurrences(case: tuple[list[str], str, list[str]]) -> None:
    secrets, text, chunks = case
    masker = plain(secrets, replacement="#")
    expected = union_of_occurrences(secrets, text, "#")
    assert masker.mask(text) == expected
    assert stream_parts(masker, chunks) == expected
    assert stream_parts(masker, list(text)) == expected


@settings(max_examples=200, deadline=None)
@given(periodic_case())
def test_property_periodic_secrets_stream_like_one_shot_with_encoded_forms(
    case: tuple[list[str], str, list[str]],
) -> None:
    secrets, text, chunks = case
    masker = Masker(secrets)
    # The encoded forms of a periodic secret are periodic too (base64 of 'ab' x 9 repeats 'YWJh').
    encoded = "".join(base64.b64encode(c.encode()).decode() for c in chunks)
    for sample in (text, encoded, text + encoded):
        expected = masker.mask(sample)
        assert stream_parts(masker, [sample[i : i + 5] for i in range(0, len(sample), 5)]) == expected
    for secret in masker.phrases:
        assert secret not in masker.mask(text + encoded)


def test_runner_vector_16000_underscores_is_one_mask() -> None:
    """gitlab-runner's large-secret test vector, surrounded by text, in one and in many writes."""
    secret = "_" * 16000
    masker = Masker([secret])
    text = "before " + secret + " middle " + secret + secret + "_" * 10 + " after\n"
    expected = "before [MASKED] middle [MASKED] after\n"
    assert masker.mask(text) == expected
    assert stream_parts(masker, [text[i : i + 4096] for i in range(0, len(text), 4096)]) == expected
    assert stream_parts(masker, [text[i : i + 7] for i in range(0, len(text), 7)]) == expected


def test_periodic_secret_in_a_periodic_text_masks_every_run() -> None:
    secret = "ab" * 5000
    masker = plain([secret])
    # Runs longer than the secret by a few periods are one mask; a run one character short of
    # the secret is not masked at all; touching runs (no overlap) stay apart.
    text = secret + "ab" * 3 + " " + secret[:-1] + " " + secret + secret
    expected = "[MASKED] " + secret[:-1] + " [MASKED]"
    assert masker.mask(text) == expected
    assert stream_parts(masker, [text[i : i + 333] for i in range(0, len(text), 333)]) == expected


def scanned_characters(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the length of every text the masker's automaton scans."""
    sizes: list[int] = []
    find = masking._Automaton.find

    def counting(self: masking._Automaton, text: str, *, overlapping: bool = False) -> list[tuple[int, int, int]]:
        sizes.append(len(text))
        return find(self, text, overlapping=overlapping)

    monkeypatch.setattr(masking._Automaton, "find", counting)
    return sizes


@pytest.mark.parametrize("chunk", [1, 7, 100, 4096])
@pytest.mark.parametrize("text_kind", ["plain", "periodic run", "near misses"])
def test_stream_scans_each_character_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch, chunk: int, text_kind: str
) -> None:
    """Small writes against a long secret: the held-back tail is not rescanned at every write."""
    secret = "ab" * 1000
    masker = plain([secret])
    text = {
        "plain": "lorem ipsum dolor sit amet " * 1500,
        "periodic run": "ab" * 20000,
        "near misses": (secret[:-1] + "!") * 20,
    }[text_kind]
    sizes = scanned_characters(monkeypatch)
    out = stream_parts(masker, [text[i : i + chunk] for i in range(0, len(text), chunk)])
    assert out.replace("[MASKED]", "") == masker.mask(text).replace("[MASKED]", "")
    assert sum(sizes) <= 6 * len(text) + 4 * len(secret)


def test_stream_memory_stays_bounded_with_small_writes() -> None:
    stream = plain(["aaaaaaaa"]).stream()
    out = "".join(stream.write("a" * 10) for _ in range(20000))
    assert out.startswith("[MASKED]")
    assert len(stream._buf) + stream._incoming_len <= masking._MAX_HELD + 10
