"""GitLab's ``rules:if`` expression language and ``rules`` evaluation, ported exactly. Pure: no Airflow.

Spec §8 and §12 (items 14-17). Sources (R = gitlabhq): ``lib/gitlab/ci/pipeline/expression/``
``lexer.rb``, ``parser.rb``, ``statement.rb``, ``lexeme/*.rb``; ``lib/gitlab/untrusted_regexp.rb`` and
``untrusted_regexp/ruby_syntax.rb``; ``lib/gitlab/ci/build/rules.rb``, ``rules/rule.rb``,
``rules/rule/clause/*.rb``. Regular expressions are compiled by RE2, as GitLab compiles them
(``untrusted_regexp.py``): linear time whatever the pattern and the value.

Deliberate differences from GitLab: evaluation errors GitLab raises as Ruby exceptions
(``/re/ == "x"``, ``$A =~ ($B == $C)``) make the rule not match; an empty statement's message is
``Empty statement`` (GitLab: the bare class name ``StatementError``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Union

from airflow_ci_vars.errors import CIVarsError, PipelineError, RuleSyntaxError
from airflow_ci_vars.untrusted_regexp import RegexpError, UntrustedRegexp
from airflow_ci_vars.variables.expansion import expand_value
from airflow_ci_vars.variables.model import Variable
from airflow_ci_vars.variables.yaml_values import yaml_value_to_string

__all__ = [
    "Expression",
    "Pattern",
    "RuleEvaluationError",
    "RuleOutcome",
    "RulesResult",
    "Value",
    "evaluate_rule",
    "evaluate_rules",
    "parse_expression",
    "present",
    "rule_allow_failure",
    "rule_attributes",
    "rule_condition",
    "variables_hash",
]


class RuleEvaluationError(CIVarsError, ValueError):
    """Evaluating a well-formed expression failed (GitLab raises a Ruby error there).

    Only :meth:`Expression.evaluate` raises it; ``truthful``, ``evaluate_rule`` and
    ``evaluate_rules`` turn it into "the rule does not match".
    """


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


Pattern = UntrustedRegexp
"""A regular expression value: its ``source`` is what GitLab compiles, the text between the
slashes with ``\\/`` unescaped and the flags prepended as ``(?flags)`` (``/a/i`` -> ``(?i)a``)."""

Value = Union[str, bool, None, Pattern]

# Ruby's [[:space:]] on a UTF-8 string (the White_Space property), used by String#blank?.
_RUBY_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def present(value: Value) -> bool:
    """Rails ``present?``: nil, false, ``""`` and whitespace-only strings are blank; a regex is present."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return not all(ch in _RUBY_SPACE for ch in value)
    return True


def _ruby_to_s(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Pattern):
        return "#<Gitlab::UntrustedRegexp>"  # Ruby's Object#to_s; GitLab's also holds an address
    return value


_RUBY_SYNTAX = re.compile(r"^/(.*)/([ismU]*)$", re.MULTILINE)  # RubySyntax::PATTERN (Ruby ^ $ are per line)


@functools.lru_cache(maxsize=4096)
def _fabricate(text: str) -> Pattern | RegexpError:
    """``Lexeme::Pattern.new(text)``: unescape ``\\/``, then ``RubySyntax.fabricate!`` (cached)."""
    value = text.replace("\\/", "/")
    match = _RUBY_SYNTAX.search(value)
    if match is None:
        return RegexpError("not of the form /pattern/flags")
    source = (f"(?{match[2]})" if match[2] else "") + match[1]
    try:
        return Pattern.compile(source)
    except RegexpError as exc:
        return exc


def _matches(text: Value, right: Value, expression: str) -> bool:
    """``Lexeme::Matches`` after the nil check: build a regex from a String, else a substring test."""
    if right is True:
        raise RuleEvaluationError(f"`{expression}`: cannot match against a boolean")  # Ruby NoMethodError
    if isinstance(right, str):
        built = _fabricate(right)
        if isinstance(built, RegexpError):
            return _ruby_to_s(text) in right  # String#scan(text).present?
        right = built
    assert isinstance(right, Pattern)
    return right.search(_ruby_to_s(text))


def _equals(left: Value, right: Value, expression: str) -> bool:
    """``compare_with_coercion``: Ruby ``==`` plus ``true == "true"``."""
    if isinstance(left, Pattern):
        if not isinstance(right, Pattern):  # UntrustedRegexp#== calls other.source
            raise RuleEvaluationError(f"`{expression}`: a regular expression compared with a non-regex")
        return left.source == right.source
    if isinstance(left, bool) and isinstance(right, str):
        return ("true" if left else "false") == right
    if isinstance(left, str) and isinstance(right, bool):
        return left == ("true" if right else "false")
    if isinstance(right, Pattern):
        return False
    return type(left) is type(right) and left == right


# --------------------------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------------------------

_Kind = Literal[
    "parenthesis_open",
    "parenthesis_close",
    "input",
    "variable",
    "string",
    "pattern",
    "null",
    "boolean",
    "equals",
    "matches",
    "not_equals",
    "not_matches",
    "and",
    "or",
]

# Lexer::LEXEMES, in GitLab's order. StringScanner anchors each at the current position, where
# Ruby's ^ and \b see the start of the string. Ruby's \w and \s are ASCII; its . excludes \n.
_LEXEMES: tuple[tuple[_Kind, re.Pattern[str]], ...] = (
    ("parenthesis_open", re.compile(r"\(")),
    ("parenthesis_close", re.compile(r"\)")),
    ("input", re.compile(r"\$\[\[\s*inputs\.(\w+)\s*\]\]", re.ASCII)),
    ("variable", re.compile(r"\$(\w+)", re.ASCII)),
    ("string", re.compile(r"\"(.*?)\"|'(.*?)'")),
    ("pattern", re.compile(r"/(?:[^/]|\\/)+[^\\]/[ismU]*")),
    ("null", re.compile(r"null")),
    ("boolean", re.compile(r"(?:true|false)\b")),
    ("equals", re.compile(r"==")),
    ("matches", re.compile(r"=~")),
    ("not_equals", re.compile(r"!=")),
    ("not_matches", re.compile(r"!~")),
    ("and", re.compile(r"&&")),
    ("or", re.compile(r"\|\|")),
)
_WHITESPACE = re.compile(r"\s+", re.ASCII)
_MAX_TOKENS = 100
_PRECEDENCE: dict[_Kind, int] = {
    "equals": 10,
    "matches": 10,
    "not_equals": 10,
    "not_matches": 10,
    "and": 11,
    "or": 12,
    "parenthesis_close": 900,
    "parenthesis_open": 901,
}
_VALUES = frozenset({"input", "variable", "string", "pattern", "null", "boolean"})


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    position: int
    value: str = ""  # name of a variable or input, content of a string, else the text


def _tokenize(expression: str) -> list[_Token]:
    """``Lexer#tokenize``: at most 99 tokens (GitLab's loop raises once it has read 100)."""
    tokens: list[_Token] = []
    pos = 0
    for _ in range(_MAX_TOKENS):
        ws = _WHITESPACE.match(expression, pos)
        if ws:
            pos = ws.end()
        if pos >= len(expression):
            return tokens
        for kind, pattern in _LEXEMES:
            m = pattern.match(expression, pos)
            if m:
                value = next((g for g in m.groups() if g is not None), m[0])
                tokens.append(_Token(kind, m[0], pos, value))
                pos = m.end()
                break
        else:
            raise RuleSyntaxError("Unknown lexeme found!", expression, pos)
    raise RuleSyntaxError("Too many tokens!", expression, tokens[-1].position)


# --------------------------------------------------------------------------------------------
# Parser and tree
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    kind: _Kind
    value: str = ""
    pattern: Pattern | None = None
    left: _Node | None = None
    right: _Node | None = None


def _rpn(tokens: list[_Token], expression: str) -> list[_Token]:
    """``Parser#tokens_rpn`` (shunting-yard; operators are left-associative)."""
    output: list[_Token] = []
    operators: list[_Token] = []
    for token in tokens:
        if token.kind in _VALUES:
            output.append(token)
        elif token.kind == "parenthesis_open":
            operators.append(token)
        else:
            precedence = _PRECEDENCE[token.kind]
            while operators and precedence >= _PRECEDENCE[operators[-1].kind]:
                output.append(operators.pop())
            if token.kind == "parenthesis_close":
                if not operators:
                    raise RuleSyntaxError("Unmatched parenthesis", expression, token.position)
                operators.pop()  # the matching parenthesis_open
            else:
                operators.append(token)
    output.extend(reversed(operators))
    return output


def _build_value(token: _Token, expression: str) -> _Node:
    if token.kind != "pattern":
        return _Node(token.kind, token.value)
    built = _fabricate(token.text)
    if isinstance(built, RegexpError):
        raise RuleSyntaxError(f"Invalid regular expression! ({built.detail})", expression, token.position)
    return _Node("pattern", token.text, built)


def _tree(tokens: list[_Token], expression: str) -> _Node:
    """``Parser#tree``: build the RPN into one node, with GitLab's error messages."""
    results: list[_Node] = []
    for token in _rpn(tokens, expression):
        if token.kind in _VALUES:
            results.append(_build_value(token, expression))
        elif token.kind == "parenthesis_open":
            raise RuleSyntaxError(
                "Unprocessable token found in parse tree: parenthesis_open", expression, token.position
            )
        else:
            right = results.pop() if results else None
            left = results.pop() if results else None
            if left is None:
                raise RuleSyntaxError("Invalid left operand", expression, token.position)
            if right is None:  # pragma: no cover - unreachable, as in GitLab (left is popped second)
                raise RuleSyntaxError("Invalid right operand", expression, token.position)
            results.append(_Node(token.kind, left=left, right=right))
    if len(results) > 1:
        raise RuleSyntaxError("Unreachable nodes in parse tree", expression)
    if not results:
        raise RuleSyntaxError("Empty parse tree", expression)
    return results[0]


def _evaluate(node: _Node, variables: Mapping[str, str], inputs: Mapping[str, str | bool], expression: str) -> Value:
    kind = node.kind
    if kind == "variable":
        return variables.get(node.value)
    if kind == "string":
        return node.value
    if kind == "null":
        return None
    if kind == "boolean":
        return node.value == "true"
    if kind == "pattern":
        return node.pattern
    if kind == "input":
        return inputs.get(node.value)
    assert node.left is not None and node.right is not None
    if kind == "and":
        left = _evaluate(node.left, variables, inputs, expression)
        return _evaluate(node.right, variables, inputs, expression) if left is not None and left is not False else left
    if kind == "or":
        left = _evaluate(node.left, variables, inputs, expression)
        return left if left is not None and left is not False else _evaluate(node.right, variables, inputs, expression)
    left = _evaluate(node.left, variables, inputs, expression)
    right = _evaluate(node.right, variables, inputs, expression)
    if kind == "equals":
        return _equals(left, right, expression)
    if kind == "not_equals":
        return not _equals(left, right, expression)
    if right is None or right is False:
        return kind == "not_matches"  # `return false unless regexp` / `return true unless regexp`
    matched = _matches(left, right, expression)
    return matched if kind == "matches" else not matched


def _names(node: _Node, kind: _Kind) -> Iterable[str]:
    if node.kind == kind:
        yield node.value
    for child in (node.left, node.right):
        if child is not None:
            yield from _names(child, kind)


@dataclass(frozen=True)
class Expression:
    """A parsed ``rules:if`` expression (``Gitlab::Ci::Pipeline::Expression::Statement``)."""

    source: str
    _tree: _Node = field(repr=False, compare=False)

    @property
    def variable_names(self) -> frozenset[str]:
        """Names of the variables the expression reads (``$NAME``)."""
        return frozenset(_names(self._tree, "variable"))

    def evaluate(self, variables: Mapping[str, str], *, inputs: Mapping[str, str | bool] | None = None) -> Value:
        """The raw Ruby-like value; raises :class:`RuleEvaluationError` where GitLab raises.

        ``variables`` are unexpanded values, last definition of a key winning; ``inputs`` answer
        ``$[[ inputs.NAME ]]`` left uninterpolated (nil otherwise).
        """
        return _evaluate(self._tree, variables, inputs or {}, self.source)

    def truthful(self, variables: Mapping[str, str], *, inputs: Mapping[str, str | bool] | None = None) -> bool:
        """``Statement#truthful?``: ``evaluate.present?``; any evaluation error gives False."""
        try:
            return present(self.evaluate(variables, inputs=inputs))
        except Exception:  # GitLab: ExpressionError -> false; Ruby type errors too (documented deviation)
            return False


@functools.lru_cache(maxsize=4096)
def parse_expression(expression: str) -> Expression:
    """Lex and parse ``expression`` once (cached); :class:`RuleSyntaxError` with GitLab's message."""
    tokens = _tokenize(expression)
    if not tokens:
        raise RuleSyntaxError("Empty statement", expression)  # GitLab: StatementError
    return Expression(expression, _tree(tokens, expression))


def variables_hash(variables: Mapping[str, str] | Iterable[Variable]) -> Mapping[str, str]:
    """GitLab's ``to_hash``: a mapping as given, or ``Variable``s with the last definition of a key winning."""
    if isinstance(variables, Mapping):
        return variables
    return {v.key: v.value for v in variables}


def evaluate_rule(expression: str, variables: Mapping[str, str] | Iterable[Variable]) -> bool:
    """Whether a ``rules:if`` expression holds. Malformed: :class:`RuleSyntaxError`; otherwise never raises.

    ``variables`` must be the unexpanded set GitLab gives ``rules:if`` (spec §8.3); file variables
    give their content.
    """
    return parse_expression(expression).truthful(variables_hash(variables))


# --------------------------------------------------------------------------------------------
# rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleOutcome:
    """The result of a job's ``rules`` (GitLab's ``Build::Rules::Result``).

    ``when == "never"`` means the job is not created. ``rule_index`` is the matching rule (None if
    none matched). ``variables`` and ``needs`` are the matching rule's, unexpanded; scalar
    variable values are already strings, as GitLab stringifies them.
    """

    when: str
    allow_failure: bool
    start_in: str | None = None
    variables: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    needs: tuple[object, ...] | None = None
    interruptible: bool | None = None
    auto_cancel: Mapping[str, object] | None = None
    rule_index: int | None = None

    @property
    def created(self) -> bool:
        """Whether the job is created (``Result#pass?``)."""
        return self.when != "never"


RulesResult = RuleOutcome  # GitLab's name


def _exists_globs(clause: object, variables: Mapping[str, str]) -> list[str]:
    paths = clause.get("paths") if isinstance(clause, Mapping) else clause
    if paths is None:
        globs: list[object] = []
    elif isinstance(paths, str):
        globs = [paths]
    elif isinstance(paths, Iterable):
        globs = list(paths)
    else:
        globs = [paths]
    # ExpandVariables.expand_existing: undefined references stay as written.
    return [expand_value(str(glob), variables, keep_undefined=True) for glob in globs]


def _rule_variables(raw: object) -> dict[str, object]:
    """A rule's ``variables``, each scalar stringified as GitLab does (``true`` -> ``"true"``)."""
    if not isinstance(raw, Mapping):
        return {}
    return {k: v if isinstance(v, (Mapping, list)) else yaml_value_to_string(v, key=str(k)) for k, v in raw.items()}


def rule_condition(rule: Mapping[str, object]) -> Expression | None:
    """A rule's ``if``, parsed (None: the rule has none); :class:`RuleSyntaxError` when it is not a
    string or does not parse (GitLab: ``validates :if, expression: true``, before any rule runs).
    The one check of ``rules:if``: the loader's (``rule_syntax``) and ``evaluate_rules``."""
    if "if" not in rule:
        return None
    condition = rule["if"]
    if not isinstance(condition, str):
        raise RuleSyntaxError(f"must be a string, but got {type(condition).__name__}", repr(condition))
    return parse_expression(condition)


def rule_allow_failure(rule: Mapping[str, object]) -> bool | None:
    """A rule's ``allow_failure`` (None: the rule has none); ``PipelineError`` with GitLab's
    message (``validates :allow_failure, boolean: true``: no ``exit_codes`` in a rule)."""
    given = rule.get("allow_failure")
    if given is not None and not isinstance(given, bool):
        raise PipelineError("rules:rule allow failure should be a boolean value", key="rules")
    return given


def rule_attributes(
    rule: Mapping[str, object], *, job_when: str | None = "on_success", job_allow_failure: bool | None = None
) -> tuple[str, bool]:
    """The ``when`` and ``allow_failure`` a matching ``rule`` gives its job: the rule's, else
    ``job_when`` (else ``on_success``) and ``job_allow_failure`` (else true only for a job-level
    ``when: manual``) (``Build::Rules::Result``)."""
    when = str(rule.get("when") or job_when or "on_success")
    allow_failure = rule_allow_failure(rule)
    if allow_failure is None:
        allow_failure = job_allow_failure if job_allow_failure is not None else job_when == "manual"
    return when, allow_failure


def evaluate_rules(
    rules: Sequence[Mapping[str, object]] | None,
    variables: Mapping[str, str] | Iterable[Variable],
    *,
    job_when: str | None = "on_success",
    job_allow_failure: bool | None = None,
    exists: Callable[[Sequence[str]], bool] | None = None,
) -> RuleOutcome | None:
    """Evaluate a job's ``rules`` (spec §8.4): the first rule whose clauses all match wins.

    Returns None when the job has no ``rules`` (``rules`` is None). Clauses: ``if`` (every ``if``
    is parsed first, so a malformed one raises :class:`RuleSyntaxError` like GitLab's config
    validation), ``exists`` (its globs, variables expanded, are passed to ``exists``; without it no
    file exists) and ``changes`` (always true: there is no push diff, as for GitLab pipelines
    without one). ``when`` = rule's, else ``job_when``, else ``on_success``; ``allow_failure`` =
    rule's, else ``job_allow_failure``, else true only for a job-level ``when: manual``.
    """
    if rules is None:
        return None
    values = variables_hash(variables)
    compiled = [rule_condition(rule) for rule in rules]

    def clause_holds(kind: str, value: object, expression: Expression | None) -> bool:
        if kind == "if":
            return expression is not None and expression.truthful(values)
        if kind == "exists":
            globs = _exists_globs(value, values)
            return bool(globs) and exists is not None and exists(globs)
        return True  # changes

    for index, (rule, expression) in enumerate(zip(rules, compiled, strict=True)):
        if all(clause_holds(k, v, expression) for k, v in rule.items() if k in ("if", "changes", "exists")):
            when, allow_failure = rule_attributes(rule, job_when=job_when, job_allow_failure=job_allow_failure)
            rule_variables = rule.get("variables")
            needs = rule.get("needs")
            auto_cancel = rule.get("auto_cancel")
            interruptible = rule.get("interruptible")
            start_in = rule.get("start_in")
            return RuleOutcome(
                when=when,
                allow_failure=allow_failure,
                start_in=None if start_in is None else str(start_in),
                variables=MappingProxyType(_rule_variables(rule_variables)),
                needs=tuple(needs) if isinstance(needs, Iterable) and not isinstance(needs, str) else None,
                interruptible=interruptible if isinstance(interruptible, bool) else None,
                auto_cancel=MappingProxyType(dict(auto_cancel)) if isinstance(auto_cancel, Mapping) else None,
                rule_index=index,
            )
    default_allow_failure = job_allow_failure if job_allow_failure is not None else job_when == "manual"
    return RuleOutcome(when="never", allow_failure=default_allow_failure)
