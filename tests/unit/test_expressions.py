"""rules:if expressions and rules evaluation (spec §8, §12 items 14-17, gitlab-ci-local vectors)."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ci_vars.errors import CIVarsError, PipelineError, RuleSyntaxError
from airflow_ci_vars.pipeline.expressions import (
    Expression,
    Pattern,
    RuleEvaluationError,
    RuleOutcome,
    RulesResult,
    evaluate_rule,
    evaluate_rules,
    parse_expression,
    present,
    variables_hash,
)
from airflow_ci_vars.variables.model import FILE, Variable

DATA = Path(__file__).parent.parent / "data" / "gitlab-ci-local" / "rules_if.json"
VECTORS = json.loads(DATA.read_text(encoding="utf-8"))

# spec §8.3 [SIM] table variables
SIM = {"A": "x", "B": "", "C": "  ", "BR": "release-1", "P": "/^rel/", "S": "1234", "T": "true"}


# --- spec §8.3 table -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$A", True),
        ("$B", False),
        ("$C", False),
        ("$NOPE", False),
        ("$NOPE == null", True),
        ("$B == null", False),
        ('$B == ""', True),
        (r"$BR =~ /^release-\d+$/", True),
        ("$BR =~ /^REL/i", True),
        ("$BR =~ $P", True),
        ('"23" =~ $S', True),
        ('$A =~ "x"', True),
        ('$A == "y" || $A == "x" && $B', False),
        # The spec's [SIM] table says true, but its own rule (Ruby short-circuit returning operand
        # values, `"x" && ""` -> `""`) gives ("" || "x") -> "" (a Ruby String is truthy) -> blank -> false.
        ('$A == "x" && $B || $A', False),
        ("$T == true", True),
    ],
)
def test_spec_8_3_table(expression: str, expected: bool) -> None:
    assert evaluate_rule(expression, SIM) is expected


@pytest.mark.parametrize(("expression", "message"), [("$BR =~ /a/", "Unknown lexeme found!")])
def test_spec_8_3_single_char_regex_literal_is_a_syntax_error(expression: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        evaluate_rule(expression, SIM)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("expression", "message", "position"),
    [
        ("(($A)", "Unprocessable token found in parse tree: parenthesis_open", 0),
        ('$A == "x")', "Unmatched parenthesis", 9),
    ],
)
def test_spec_8_3_unbalanced_parentheses_are_errors(expression: str, message: str, position: int) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_expression(expression)
    assert (info.value.message, info.value.position, info.value.expression) == (message, position, expression)


def test_or_returns_the_empty_string_because_ruby_strings_are_truthy() -> None:
    expression = parse_expression("$B || $A")
    assert expression.evaluate(SIM) == ""
    assert expression.truthful(SIM) is False


# --- spec §12 items 14-17 --------------------------------------------------------------------


def test_spec_12_14_rules_if_sees_unexpanded_values() -> None:
    variables = [Variable("B", "b"), Variable("A", "$B")]
    assert evaluate_rule('$A == "$B"', variables)
    assert not evaluate_rule('$A == "b"', variables)


def test_spec_12_14_last_definition_of_a_key_wins_and_file_variables_give_content() -> None:
    variables = [Variable("K", "first"), Variable("F", "content", variable_type=FILE), Variable("K", "last")]
    assert variables_hash(variables) == {"K": "last", "F": "content"}
    assert evaluate_rule('$K == "last" && $F == "content"', variables)


@pytest.mark.parametrize(
    ("expression", "variables", "expected"),
    [
        ('"23" =~ "1234"', {}, True),
        ('"1234" =~ "23"', {}, False),
        ("'23' =~ '1234'", {}, True),
        ("$UNDEF !~ $UNDEF", {}, True),
        ("$UNDEF =~ $UNDEF", {}, False),
        ("$V =~ $P", {"V": "cat", "P": "/a/"}, True),
        ('$V =~ "/a/"', {"V": "cat"}, True),
        ('$V !~ "/a/"', {"V": "cat"}, False),
        ("$W", {"W": " \t\n"}, False),
        ("$W", {"W": "\u00a0\u3000"}, False),
        ("$W", {"W": "0"}, True),
        ("$W", {"W": "false"}, True),
    ],
)
def test_spec_12_15_matches_and_truthiness(expression: str, variables: dict[str, str], expected: bool) -> None:
    assert evaluate_rule(expression, variables) is expected


def test_spec_12_15_single_char_regex_literal_is_refused() -> None:
    for literal in ("/a/", "/./"):
        with pytest.raises(RuleSyntaxError, match="Unknown lexeme found!"):
            parse_expression(f"$V =~ {literal}")


@pytest.mark.parametrize(
    ("expression", "variables", "expected"),
    [
        ("$V =~ /^b$/", {"V": "a\nb"}, False),
        ("$V =~ /^b$/m", {"V": "a\nb"}, True),
        # RE2's $ without m is the end of the text, not "before a final newline" (Python's default)
        ("$V =~ /a$/", {"V": "a\n"}, False),
        ("$V =~ /a$/m", {"V": "a\n"}, True),
        ("$V =~ /a.b/", {"V": "a\nb"}, False),
        ("$V =~ /a.b/s", {"V": "a\nb"}, True),
        ("$V =~ /AB/i", {"V": "ab"}, True),
        ("$V =~ /AB/", {"V": "ab"}, False),
        ("$V =~ /a+b/U", {"V": "aab"}, True),
        ("$V =~ /^ab$/imsU", {"V": "AB"}, True),
    ],
)
def test_spec_12_16_regex_flags_are_re2s(expression: str, variables: dict[str, str], expected: bool) -> None:
    assert evaluate_rule(expression, variables) is expected


@pytest.mark.parametrize(
    ("source", "text", "span"),
    [
        ("/a+/", "aaa", (0, 3)),
        ("/a+/U", "aaa", (0, 1)),  # U: ungreedy
        ("/a+?/U", "aaa", (0, 3)),  # U swaps: a+? is greedy
        ("/a{1,3}/U", "aaa", (0, 1)),
        ("/(?U)a*?b/", "aab", (0, 3)),
    ],
)
def test_spec_12_16_ungreedy_flag_swaps_quantifiers(source: str, text: str, span: tuple[int, int]) -> None:
    pattern = parse_expression(source).evaluate({})
    assert isinstance(pattern, Pattern)
    assert pattern.span(text) == span


@pytest.mark.parametrize(
    "expression",
    [
        '/ab/ == "ab"',  # UntrustedRegexp#== calls "ab".source: NoMethodError in Ruby
        "/ab/ != null",
        "$A =~ ($A == $A)",  # Pattern.build(true): NoMethodError in Ruby
    ],
)
def test_spec_12_17_evaluation_errors_make_the_rule_not_match(expression: str) -> None:
    variables = {"A": "x"}
    with pytest.raises(RuleEvaluationError):
        parse_expression(expression).evaluate(variables)
    assert evaluate_rule(expression, variables) is False
    assert isinstance(RuleEvaluationError("x"), CIVarsError)


# --- gitlab-ci-local vectors -----------------------------------------------------------------

# Vectors where gitlab-ci-local disagrees with GitLab's code (spec §8): GitLab wins.
EXPECTED_DIFFERENCES: dict[str, str] = {
    '"23" =~ "1234"': (
        "gitlab-ci-local refuses a non-/re/ string on the right of =~; GitLab's Matches keeps the String and "
        "uses String#scan, a substring test (spec §8.3, §12 item 15): true"
    ),
    "\"23\" =~ '1234'": (
        "gitlab-ci-local refuses a non-/re/ string on the right of =~; GitLab's Matches keeps the String and "
        "uses String#scan, a substring test (spec §8.3, §12 item 15): true"
    ),
}
GITLAB_VALUES: dict[str, bool] = {'"23" =~ "1234"': True, "\"23\" =~ '1234'": True}


def _ids(vectors: Sequence[dict[str, object]], key: str) -> list[str]:
    return [f"{i}:{v[key]}" for i, v in enumerate(vectors)]


@pytest.mark.parametrize("vector", VECTORS["evaluate_rule_if"], ids=_ids(VECTORS["evaluate_rule_if"], "name"))
def test_gitlab_ci_local_evaluate_rule_if(vector: dict[str, object]) -> None:
    assert vector["name"] not in EXPECTED_DIFFERENCES
    expression, variables = str(vector["if"]), dict(vector["variables"])  # type: ignore[call-overload]
    if "expected_error_regex" in vector:
        with pytest.raises(RuleSyntaxError):
            evaluate_rule(expression, variables)
    else:
        assert evaluate_rule(expression, variables) is vector["expected"]


@pytest.mark.parametrize("vector", VECTORS["regex_table"], ids=_ids(VECTORS["regex_table"], "if"))
def test_gitlab_ci_local_regex_table(vector: dict[str, object]) -> None:
    expression, variables = str(vector["if"]), dict(vector["variables"])  # type: ignore[call-overload]
    if expression in EXPECTED_DIFFERENCES:
        assert "expected_error_contains" in vector  # gitlab-ci-local errors...
        assert evaluate_rule(expression, variables) is GITLAB_VALUES[expression]  # ...GitLab evaluates
    elif "expected_error_contains" in vector:
        with pytest.raises(RuleSyntaxError):
            evaluate_rule(expression, variables)
    else:
        assert evaluate_rule(expression, variables) is vector["expected"]


@pytest.mark.parametrize("vector", VECTORS["rules_result"], ids=_ids(VECTORS["rules_result"], "name"))
def test_gitlab_ci_local_rules_result(vector: dict[str, object]) -> None:
    assert vector["name"] not in EXPECTED_DIFFERENCES
    variables = dict(vector["variables"]) if "variables" in vector else {}  # type: ignore[call-overload]
    if "rules_each" in vector:
        for rule in vector["rules_each"]:  # type: ignore[attr-defined]
            with pytest.raises(RuleSyntaxError, match="must be a string, but got"):
                evaluate_rules([rule], variables)
        return
    outcome = evaluate_rules(
        vector["rules"],  # type: ignore[arg-type]
        variables,
        job_when=vector.get("job_when", "on_success"),  # type: ignore[arg-type]
        job_allow_failure=vector.get("job_allow_failure"),  # type: ignore[arg-type]
    )
    expected = vector["expected"]
    assert outcome is not None
    assert outcome.when == expected["when"]  # type: ignore[index]
    assert outcome.allow_failure is expected["allowFailure"]  # type: ignore[index]
    assert dict(outcome.variables) == (expected["variables"] or {})  # type: ignore[index]


def test_every_expected_difference_names_a_vector() -> None:
    known = {str(v["if"]) for v in VECTORS["regex_table"]} | {str(v["name"]) for v in VECTORS["evaluate_rule_if"]}
    assert set(EXPECTED_DIFFERENCES) <= known
    assert set(GITLAB_VALUES) == set(EXPECTED_DIFFERENCES)


# --- lexer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "variables", "expected"),
    [
        ('$A=="x"', {"A": "x"}, True),
        ("$A=='x'&&$B", {"A": "x", "B": "y"}, True),
        ('$A == ""', {"A": ""}, True),
        ("$A == ''", {"A": ""}, True),
        (r'$A == "a\"', {"A": "a\\"}, True),  # no escapes in strings
        ('$A == "it\'s"', {"A": "it's"}, True),
        ("$A_1 == 'v'", {"A_1": "v"}, True),
        ("$1 == 'v'", {"1": "v"}, True),
        ("$A == null", {}, True),
        (r"$A =~ /a\/b/", {"A": "a/b"}, True),  # \/ unescaped
        (r"$A =~ /a\/b/", {"A": "a\\/b"}, False),
        ("$A =~ /$B/", {"A": "$B", "B": "x"}, False),  # variables are not expanded in a regex literal
        ("$A =~ /\\$B/", {"A": "$B", "B": "x"}, True),
        ("true", {}, True),
        ("false", {}, False),
        ("null", {}, False),
        ('$A == "%A%"', {"A": "%A%"}, True),
    ],
)
def test_lexer_tokens(expression: str, variables: dict[str, str], expected: bool) -> None:
    assert evaluate_rule(expression, variables) is expected


@pytest.mark.parametrize(
    ("expression", "position"),
    [
        ("${A} == 'x'", 0),  # ${VAR} is not a token
        ("%A% == 'x'", 0),
        ("$A == nullx", 10),  # null has no word boundary: `null` then `x`
        ("$A == truex", 6),  # true/false need one
        ("$A == true1", 6),
        ("$É == 'x'", 0),  # \w is ASCII
        ('$A == "a\nb"', 6),  # strings do not span lines
        ("$A = 'x'", 3),
        ("$A === 'x'", 5),
        ("$A == 'x' & $B", 10),
        ("!$A", 0),
        ("$A =~ /test/ur/", 12),
    ],
)
def test_lexer_unknown_lexeme(expression: str, position: int) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_expression(expression)
    assert (info.value.message, info.value.position) == ("Unknown lexeme found!", position)


def test_lexer_reads_at_most_99_tokens() -> None:
    ninety_nine = " || ".join(["$A"] * 50)
    assert evaluate_rule(ninety_nine, {"A": "x"})
    with pytest.raises(RuleSyntaxError) as info:
        parse_expression(ninety_nine + " || $A")  # GitLab's loop raises once it has read 100 tokens
    assert info.value.message == "Too many tokens!"


def test_input_lexeme_reads_uninterpolated_inputs() -> None:
    expression = parse_expression("$[[ inputs.env ]] == 'prod' && $[[inputs.flag]] == true")
    assert expression.truthful({}, inputs={"env": "prod", "flag": True})
    assert not expression.truthful({})
    assert expression.variable_names == frozenset()


# --- parser: precedence, associativity, errors -----------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$T || $F && $F", "t"),  # && binds tighter: $T || ($F && $F)
        ("($T || $F) && $N", None),
        ("$F && $F || $T", ""),  # ("" && "") -> "", a truthy String: || keeps it
        ("$N || $F && $T", "t"),
        ('"a" == "a" == true', True),  # left-associative: ("a" == "a") == true
        ('"a" == ("a" == true)', False),
        ("$T =~ /^t/ && $T", "t"),
        ("$T == 't' || $X", True),
        ("$N && $X =~ /^x/", None),
        ("(((($T))))", "t"),
    ],
)
def test_precedence_and_operand_values(expression: str, expected: object) -> None:
    assert parse_expression(expression).evaluate({"T": "t", "F": "", "X": "x"}) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$A && $B", "b"),
        ("$N && $A", None),
        ("$E && $A", "a"),  # "" is truthy in Ruby
        ("false && $A", False),
        ("$A || $B", "a"),
        ("$N || $A", "a"),
        ("$E || $A", ""),
        ("false || null", None),
        ("$N || false", False),
        ("/a.b/ || $A", Pattern.compile("a.b")),
    ],
)
def test_short_circuit_returns_operand_values(expression: str, expected: object) -> None:
    assert parse_expression(expression).evaluate({"A": "a", "B": "b", "E": ""}) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('true == "true"', True),
        ('"true" == true', True),
        ('false == "false"', True),
        ('false != "false"', False),
        ('true == "TRUE"', False),
        ("true == $T", True),
        ("true == $N", False),
        ("false == null", False),
        ("null == null", True),
        ("$N == null", True),
        ("$N != null", False),
        ('$E == ""', True),
        ("$E == null", False),
        ("/ab/ == /ab/", True),  # UntrustedRegexp#== compares sources
        ("/ab/i == /(?i)ab/", True),
        ("/ab/ == /ab/i", False),
        ('"ab" == /ab/', False),  # String#== with a non-String is false
        ("null == /ab/", False),
    ],
)
def test_equality_and_coercion(expression: str, expected: bool) -> None:
    assert parse_expression(expression).evaluate({"T": "true", "E": ""}) is expected


@pytest.mark.parametrize(
    ("expression", "message", "position"),
    [
        ("", "Empty statement", None),
        ("   ", "Empty statement", None),
        ("()", "Empty parse tree", None),
        ("$A $B", "Unreachable nodes in parse tree", None),
        ("$A ($B)", "Unreachable nodes in parse tree", None),
        ("== $A", "Invalid left operand", 0),
        ("$A ==", "Invalid left operand", 3),
        ("$A == $B &&", "Invalid left operand", 9),
        ("($A", "Unprocessable token found in parse tree: parenthesis_open", 0),
        ("$A)", "Unmatched parenthesis", 2),
        (")(", "Unmatched parenthesis", 0),
    ],
)
def test_parser_errors_use_gitlab_messages(expression: str, message: str, position: int | None) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_expression(expression)
    error = info.value
    assert (error.message, error.position, error.expression) == (message, position, expression)
    assert isinstance(error, CIVarsError) and isinstance(error, ValueError)
    assert message in str(error)


def test_rule_syntax_error_pickles() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_expression("$A ==")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.message, copy.expression, copy.position, str(copy)) == (
        "Invalid left operand",
        "$A ==",
        3,
        str(info.value),
    )


def test_parsed_expressions_are_cached() -> None:
    assert parse_expression("$CACHED == 'x'") is parse_expression("$CACHED == 'x'")
    assert parse_expression("$X == $Y || $Z").variable_names == frozenset({"X", "Y", "Z"})


# --- regular expressions (RE2 semantics) -----------------------------------------------------


@pytest.mark.parametrize(
    ("regex", "text", "expected"),
    [
        (r"/\w+$/", "é", False),  # \w, \d, \s, \b are ASCII in RE2
        (r"/^\d$/", "\u0663", False),
        (r"/^\s$/", "\u00a0", False),
        (r"/^\s$/", "\v", False),  # RE2's \s has no \v
        (r"/a\b/", "aé", True),
        (r"/a\B/", "ab", True),
        (r"/^\B$/", "", True),
        (r"/^[[:alpha:]]+$/", "abC", True),
        (r"/^[[:^digit:]]+$/", "ab", True),
        (r"/^[^[:space:]]+$/", "a b", False),
        (r"/^\pL+$/", "éß", True),
        (r"/^\p{Lu}$/", "É", True),
        (r"/^\PN$/", "1", False),
        (r"/^\p{^L}$/", "1", True),
        (r"/^\p{Any}$/", "\U0001f600", True),
        (r"/\Qa.b\E/", "a.b", True),
        (r"/\Qa.b\E/", "axb", False),
        (r"/^a\z/", "a\n", False),
        (r"/\Aa/", "ba", False),
        (r"/Hello (?i)world/", "Hello WORLD", True),
        (r"/Hello (?i)world/", "HELLO world", False),
        (r"/(?i:a)b/", "AB", False),
        (r"/(?i)a(?-i)b|c/", "C", False),  # flags last to the end of the group, across |
        (r"/x(?i)a|b/", "B", True),
        (r"/^[]a]+$/", "]a", True),
        (r"/^[^]a]$/", "]", False),
        (r"/^[a-]+$/", "-a", True),
        (r"/^[\d-z]+$/", "1-z", True),
        (r"/a{,2}/", "a{,2}", True),  # not a repetition in RE2: literal
        (r"/^a{2}$/", "aa", True),
        (r"/^a{2,}$/", "aaa", True),
        (r"/^\x41\x{42}\103\0$/", "ABC\x00", True),
        (r"/^\12$/", "\n", True),  # octal, not a backreference
        (r"/(?P<n>a)(?<m>b)/", "ab", True),
        (r"/^*a/", "a", True),  # RE2 may repeat an empty-width assertion
        (r"/^.$/", "\n", False),
        (r"/[^a]/", "\n", True),
        ("/\\_/", "_", True),
        (r"/^\p{Greek}+$/", "αβγ", True),  # a script class
        (r"/^\p{Greek}+$/", "abc", False),
        (r"/^a\Cb$/", "axb", True),  # \C: any byte
    ],
)
def test_re2_semantics(regex: str, text: str, expected: bool) -> None:
    assert evaluate_rule(f"$V =~ {regex}", {"V": text}) is expected


@pytest.mark.parametrize(
    ("regex", "detail"),
    [
        # RE2's own error text, as GitLab's UntrustedRegexp reports it (regexp.error)
        (r"/(?=a)b/", "invalid perl operator: (?="),
        (r"/(?!a)b/", "invalid perl operator: (?!"),
        (r"/(?<=a)b/", "invalid perl operator: (?<="),
        (r"/(?<!a)b/", "invalid perl operator: (?<!"),
        (r"/(a)\1/", "invalid escape sequence: \\1"),
        (r"/(?P<n>a)(?P=n)/", "invalid perl operator: (?P"),
        (r"/\k<n>x/", "invalid escape sequence: \\k"),
        (r"/a(?>b)/", "invalid perl operator: (?>"),
        (r"/a**/", "bad repetition operator: **"),
        (r"/a*+/", "bad repetition operator: *+"),
        (r"/a{1001}/", "invalid repetition size: {1001}"),
        (r"/(a{100}){11}/", "invalid repetition size: {11}"),
        (r"/a{3,2}/", "invalid repetition size: {3,2}"),
        (r"/(*a)/", "no argument for repetition operator: *"),
        (r"/ab(/", "missing ): ab("),
        (r"/a)b/", "unexpected ): a)b"),
        (r"/[ab/", "missing ]: [ab"),
        (r"/[z-a]/", "invalid character class range: z-a"),
        (r"/[[:foo:]]/", "invalid character class range: [:foo:]"),
        (r"/a\Z/", "invalid escape sequence: \\Z"),
        (r"/a\q/", "invalid escape sequence: \\q"),
        (r"/(?i-)a/", "invalid perl operator: (?i-)"),
        (r"/\p{Foo}/", "invalid character class range: \\p{Foo}"),
    ],
)
def test_invalid_regex_literals_are_syntax_errors(regex: str, detail: str) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_expression(f"$V =~ {regex}")
    assert info.value.message.startswith("Invalid regular expression! (")
    assert detail in info.value.message
    assert info.value.position == 6


@pytest.mark.parametrize(
    ("right", "text", "expected"),
    [
        ("/a/", "cat", True),  # no two-character minimum on this path
        ("/REL/i", "release", True),
        ("/a\\/b/", "a/b", True),
        ("/^prefix\\/.+/", "prefix/1.0.0", True),
        ("/a(/", "xa(", False),  # invalid RE2: the String is kept, substring test "xa(" in "/a(/"
        ("/a(/", "a(", True),
        ("/(?=x)/", "x", True),  # look-ahead is invalid RE2: substring test
        ("noslash", "slash", True),
        ("noslash", "other", False),
        ("", "", True),  # "".scan("") is [""]
        ("abc", "", True),
        ("line1\n/b/", "b", True),  # Ruby's ^ and $ in RubySyntax::PATTERN are per line
        ("//", "anything", True),
    ],
)
def test_regex_from_a_string(right: str, text: str, expected: bool) -> None:
    assert evaluate_rule("$T =~ $R", {"T": text, "R": right}) is expected
    assert evaluate_rule("$T !~ $R", {"T": text, "R": right}) is not expected


def test_regex_value_is_a_pattern_with_gitlab_source() -> None:
    pattern = parse_expression(r"/a\/b/iU").evaluate({})
    assert isinstance(pattern, Pattern) and pattern.source == "(?iU)a/b"
    assert present(pattern)
    assert evaluate_rule("/ab/", {}) is True


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$N =~ /^x/", False),
        ("$N !~ /^x/", True),
        ("$A =~ $N", False),
        ("$A !~ $N", True),
        ("$A =~ false", False),
        ("$A !~ false", True),
        ("$A =~ ($A == 'y')", False),
        ("true =~ /^true$/", True),  # left side is to_s'd
        ("null =~ /^$/", True),
    ],
)
def test_matches_nil_and_boolean_operands(expression: str, expected: bool) -> None:
    assert evaluate_rule(expression, {"A": "x"}) is expected


# --- rules (spec §8.4) -----------------------------------------------------------------------


def test_rules_first_matching_rule_wins() -> None:
    rules: list[dict[str, object]] = [
        {"if": "$A == 'no'", "when": "manual"},
        {"if": "$A == 'x'", "when": "delayed", "start_in": "5 minutes", "variables": {"V": "1"}, "needs": ["b"]},
        {"when": "always"},
    ]
    outcome = evaluate_rules(rules, {"A": "x"})
    assert outcome == RuleOutcome(
        when="delayed",
        allow_failure=False,
        start_in="5 minutes",
        variables={"V": "1"},
        needs=("b",),
        rule_index=1,
    )
    assert outcome is not None and outcome.created


def test_rules_no_match_is_never() -> None:
    outcome = evaluate_rules([{"if": "$A"}], {})
    assert outcome == RuleOutcome(when="never", allow_failure=False)
    assert outcome is not None and not outcome.created
    assert evaluate_rules([], {}) == RuleOutcome(when="never", allow_failure=False)
    assert evaluate_rules(None, {}) is None
    assert RulesResult is RuleOutcome


@pytest.mark.parametrize(
    ("rule", "job_when", "job_allow_failure", "when", "allow_failure"),
    [
        ({}, "on_success", None, "on_success", False),
        ({}, None, None, "on_success", False),
        ({}, "manual", None, "manual", True),  # job-level manual: allow_failure defaults to true
        ({"when": "manual"}, "on_success", None, "manual", False),  # rule-level manual: false (§12 item 30)
        ({"when": "on_success"}, "manual", None, "on_success", True),  # the default follows the job's when
        ({}, "manual", False, "manual", False),
        ({"allow_failure": True}, "on_success", None, "on_success", True),
        ({"allow_failure": False, "when": "manual"}, "manual", None, "manual", False),
        ({"when": None}, "delayed", None, "delayed", False),
    ],
)
def test_rules_when_and_allow_failure(
    rule: dict[str, object], job_when: str | None, job_allow_failure: bool | None, when: str, allow_failure: bool
) -> None:
    outcome = evaluate_rules([rule], {}, job_when=job_when, job_allow_failure=job_allow_failure)
    assert outcome is not None and (outcome.when, outcome.allow_failure) == (when, allow_failure)


def test_rules_exists_uses_the_callable_with_expanded_globs() -> None:
    seen: list[Sequence[str]] = []

    def exists(globs: Sequence[str]) -> bool:
        seen.append(list(globs))
        return "Dockerfile" in globs

    variables = {"NAME": "Dockerfile"}
    assert evaluate_rules([{"exists": ["$NAME", "$UNDEF/x"]}], variables, exists=exists) == RuleOutcome(
        when="on_success", allow_failure=False, rule_index=0
    )
    assert seen == [["Dockerfile", "$UNDEF/x"]]  # expand_existing keeps undefined references
    outcome = evaluate_rules([{"exists": {"paths": ["${NAME}"]}}], variables, exists=exists)
    assert outcome is not None and outcome.when == "on_success"
    outcome = evaluate_rules([{"exists": "other"}], variables, exists=exists)
    assert outcome is not None and outcome.when == "never"
    outcome = evaluate_rules([{"exists": ["Dockerfile"]}], variables)  # no callable: no file exists
    assert outcome is not None and outcome.when == "never"
    outcome = evaluate_rules([{"exists": []}], variables, exists=lambda _: True)
    assert outcome is not None and outcome.when == "never"


def test_rules_all_clauses_must_match_and_changes_always_matches() -> None:
    rules: list[dict[str, object]] = [
        {"if": "$A", "exists": ["f"], "when": "manual"},
        {"if": "$A", "changes": ["src/**/*"], "when": "always"},
    ]
    outcome = evaluate_rules(rules, {"A": "x"}, exists=lambda _: False)
    assert outcome is not None and (outcome.when, outcome.rule_index) == ("always", 1)
    outcome = evaluate_rules([{"changes": {"paths": ["a"], "compare_to": "main"}}], {})
    assert outcome is not None and outcome.when == "on_success"


def test_rules_every_if_is_validated_first() -> None:
    with pytest.raises(RuleSyntaxError, match="Unmatched parenthesis"):
        evaluate_rules([{"when": "always"}, {"if": "$A)"}], {})


def test_rules_evaluation_errors_do_not_match() -> None:
    outcome = evaluate_rules([{"if": "/ab/i == 'ab'"}, {"if": "$A", "when": "manual"}], {"A": "x"})
    assert outcome is not None and (outcome.when, outcome.rule_index) == ("manual", 1)


def test_rules_variables_needs_and_attributes_are_the_matching_rules() -> None:
    rules = [{"if": "$A", "variables": {"X": "$A"}, "needs": [{"job": "b", "artifacts": False}], "interruptible": True}]
    outcome = evaluate_rules(rules, [Variable("A", "x")])
    assert outcome is not None
    assert dict(outcome.variables) == {"X": "$A"}  # unexpanded
    assert outcome.needs == ({"job": "b", "artifacts": False},)
    assert outcome.interruptible is True
    with pytest.raises(TypeError):
        outcome.variables["Y"] = "z"  # type: ignore[index]


def test_rules_allow_failure_must_be_a_boolean() -> None:
    with pytest.raises(PipelineError, match=r"^rules:rule allow failure should be a boolean value$"):
        evaluate_rules([{"allow_failure": "yes"}], {})


# --- properties ------------------------------------------------------------------------------

# A subset of RE2 syntax on which Python's re has the same semantics (leftmost-first, . without \n).
_ATOMS = st.sampled_from(["a", "b", ".", "[ab]", "[^a]", "\\d", "x"])
_REGEX = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map(lambda p: f"{p[0]}|{p[1]}"),
        inner.map(lambda r: f"({r})"),
        st.tuples(inner, st.sampled_from(["*", "+", "?", "*?", "+?", "??", "{1,2}", "{2}", "{0,}?"])).map(
            lambda p: f"(?:{p[0]}){p[1]}"
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(_REGEX, st.text(alphabet="ab1x\n", max_size=12))
def test_re2_agrees_with_python_on_the_common_subset(regex: str, text: str) -> None:
    pattern = parse_expression(f"/{regex}/" if len(regex) >= 2 else f"/(?:{regex})/").evaluate({})
    assert isinstance(pattern, Pattern)
    native = re.search(regex, text)
    assert pattern.span(text) == (native and native.span())


_EXPRESSIONISH = st.text(alphabet=list("$AB ()=~!&|'\"/ainultrefsx\\.*[]{}?+^"), max_size=40)


@settings(max_examples=1000, deadline=None)
@given(_EXPRESSIONISH, st.dictionaries(st.sampled_from(["A", "B"]), st.text(alphabet="/ai().*x\\", max_size=8)))
def test_well_formed_expressions_never_raise(expression: str, variables: dict[str, str]) -> None:
    try:
        parsed = parse_expression(expression)
    except RuleSyntaxError:
        return
    assert isinstance(parsed, Expression)
    assert evaluate_rule(expression, variables) in (True, False)
