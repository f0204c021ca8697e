"""GitLab's ``rules:if`` expression language and ``rules`` evaluation, ported exactly. Pure: no Airflow.

Spec §8 and §12 (items 14-17). Sources (R = gitlabhq): ``lib/gitlab/ci/pipeline/expression/``
``lexer.rb``, ``parser.rb``, ``statement.rb``, ``lexeme/*.rb``; ``lib/gitlab/untrusted_regexp.rb`` and
``untrusted_regexp/ruby_syntax.rb``; ``lib/gitlab/ci/build/rules.rb``, ``rules/rule.rb``,
``rules/rule/clause/*.rb``. GitLab compiles regular expressions with RE2; they are translated here
to equivalent Python patterns (RE2 syntax and semantics: ASCII ``\\w``/``\\d``/``\\s``/``\\b``,
``$`` = end of text without ``m``, flags ``i m s U``), and RE2-invalid syntax (look-arounds,
backreferences...) is refused as RE2 refuses it.

Deliberate differences from GitLab: evaluation errors GitLab raises as Ruby exceptions
(``/re/ == "x"``, ``$A =~ ($B == $C)``) make the rule not match; ``\\p{Script}`` and ``\\C`` are
valid RE2 but refused here; Python's engine backtracks, so a pathological pattern such as
``/(a*)*b/`` can be slow on long values where RE2 is linear; an empty statement's message is
``Empty statement`` (GitLab: the bare class name ``StatementError``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, Union

from airflow_ci_vars.errors import CIVarsError, RuleSyntaxError
from airflow_ci_vars.variables.expansion import expand_value
from airflow_ci_vars.variables.model import Variable

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
    "variables_hash",
]


class RuleEvaluationError(CIVarsError, ValueError):
    """Evaluating a well-formed expression failed (GitLab raises a Ruby error there).

    Only :meth:`Expression.evaluate` raises it; ``truthful``, ``evaluate_rule`` and
    ``evaluate_rules`` turn it into "the rule does not match".
    """


# --------------------------------------------------------------------------------------------
# RE2 -> Python translation
# --------------------------------------------------------------------------------------------

_MAX_RUNE = 0x10FFFF
_MAX_REPEAT = 1000  # RE2's maximum_repeat_count, also the bound of nested counted repetitions
_Ranges = tuple[tuple[int, int], ...]


class RegexSyntaxError(Exception):
    """RE2 refuses the pattern (``unsupported=False``) or RE2 accepts it but we cannot translate it."""

    def __init__(self, detail: str, *, unsupported: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.unsupported = unsupported


def _normalize(ranges: Iterable[tuple[int, int]]) -> _Ranges:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _negate(ranges: _Ranges) -> _Ranges:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_RUNE:
        out.append((nxt, _MAX_RUNE))
    return tuple(out)


_DIGIT: _Ranges = ((0x30, 0x39),)
_WORD: _Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
# RE2's Perl classes are ASCII: \s is [\t\n\f\r ] (no \v).
_PERL_CLASSES: dict[str, _Ranges] = {"d": _DIGIT, "s": ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)), "w": _WORD}
_POSIX_CLASSES: dict[str, _Ranges] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": _DIGIT,
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": _WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
_ASCII_WORD = "[0-9A-Za-z_]"
_WORD_BOUNDARY = f"(?:(?<={_ASCII_WORD})(?!{_ASCII_WORD})|(?<!{_ASCII_WORD})(?={_ASCII_WORD}))"
_NOT_WORD_BOUNDARY = f"(?:(?<={_ASCII_WORD})(?={_ASCII_WORD})|(?<!{_ASCII_WORD})(?!{_ASCII_WORD}))"
_SIMPLE_ESCAPES = {"n": 0x0A, "r": 0x0D, "t": 0x09, "a": 0x07, "f": 0x0C, "v": 0x0B}
_OCTAL = "01234567"
_COUNTED_REPETITION = re.compile(r"\{(0|[1-9][0-9]*)(?:(,)(0|[1-9][0-9]*)?)?\}", re.ASCII)  # no leading zeros
_HEX = "0123456789abcdefABCDEF"


@functools.cache
def _unicode_categories() -> dict[str, _Ranges]:
    """General-category ranges from ``unicodedata`` (built once, on the first ``\\p``)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category(chr(0))
    for code in range(1, _MAX_RUNE + 2):
        cat = unicodedata.category(chr(code)) if code <= _MAX_RUNE else ""
        if cat != current:
            spans.setdefault(current, []).append((start, code - 1))
            start, current = code, cat
    groups = {name: _normalize(r) for name, r in spans.items() if name != "Cn"}
    for major in "CLMNPSZ":
        groups[major] = _normalize(r for name, rs in groups.items() if name[0] == major for r in rs)
    groups["Any"] = ((0, _MAX_RUNE),)
    return groups


def _unicode_class(name: str, seq: str) -> _Ranges:
    if name.startswith("^"):
        return _negate(_unicode_class(name[1:], seq))
    groups = _unicode_categories()
    if name in groups:
        return groups[name]
    raise RegexSyntaxError(
        f"Unicode class {seq}: only general categories (\\pL, \\p{{Lu}}...) and \\p{{Any}} are supported, not scripts",
        unsupported=True,
    )


def _render_char(code: int) -> str:
    if code < 0x80 and chr(code).isalnum():
        return chr(code)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _render_class(ranges: _Ranges, *, negated: bool = False, fold: bool = False) -> str:
    if not ranges:
        return "[\\x00-\\U0010ffff]" if negated else "(?!)"
    body = "".join(_render_char(lo) if lo == hi else f"{_render_char(lo)}-{_render_char(hi)}" for lo, hi in ranges)
    cls = f"[^{body}]" if negated else f"[{body}]"
    return f"(?i:{cls})" if fold else cls


def _render_literal(char: str, *, fold: bool) -> str:
    text = _render_char(ord(char))
    if fold and (char.lower() != char or char.upper() != char):
        return f"(?i:{text})"
    return text


@dataclass(frozen=True)
class _Flags:
    i: bool = False  # case-insensitive
    m: bool = False  # multi-line ^ and $
    s: bool = False  # . matches \n
    U: bool = False  # ungreedy: swaps x* and x*?


@dataclass
class _Item:
    py: str
    rep: int = 1  # product of counted-repetition bounds inside (RE2 caps it at 1000)


@dataclass
class _Group:
    opener: str  # Python text opening the group ("" for the whole pattern)
    flags: _Flags
    alternatives: list[list[_Item]] = field(default_factory=lambda: [[]])


class _Re2Translator:
    """One pass over an RE2 pattern (``re2/parse.cc``), emitting an equivalent Python pattern."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.names: set[str] = set()

    def error(self, detail: str) -> RegexSyntaxError:
        return RegexSyntaxError(detail)

    def translate(self) -> str:
        src = self.src
        stack = [_Group("", _Flags())]
        last_was_repeat = False
        while self.pos < len(src):
            group = stack[-1]
            items = group.alternatives[-1]
            flags = group.flags
            c = src[self.pos]
            repeat = False
            if c == "(":
                if src.startswith("(?", self.pos):
                    opened = self.perl_flags(group)
                    if opened is not None:
                        stack.append(opened)
                else:
                    self.pos += 1
                    stack.append(_Group("(", flags))
            elif c == "|":
                self.pos += 1
                group.alternatives.append([])
            elif c == ")":
                if len(stack) == 1:
                    raise self.error("unexpected ): unmatched parenthesis")
                self.pos += 1
                stack.pop()
                body = "|".join("".join(it.py for it in alt) for alt in group.alternatives)
                rep = max((it.rep for alt in group.alternatives for it in alt), default=1)
                stack[-1].alternatives[-1].append(_Item(f"{group.opener}{body})", rep))
            elif c == "^":
                self.pos += 1
                items.append(_Item("(?m:^)" if flags.m else "\\A"))
            elif c == "$":
                self.pos += 1
                items.append(_Item("(?m:$)" if flags.m else "\\Z"))
            elif c == ".":
                self.pos += 1
                items.append(_Item("(?s:.)" if flags.s else "."))
            elif c == "[":
                items.append(_Item(self.char_class(flags)))
            elif c in "*+?":
                self.pos += 1
                self.repeat(items, flags, c, last_was_repeat, counted=None)
                repeat = True
            elif c == "{" and (counted := self.counted_repetition()) is not None:
                op, lo, hi = counted
                self.repeat(items, flags, op, last_was_repeat, counted=(lo, hi))
                repeat = True
            elif c == "\\":
                self.escape(items, flags)
            else:
                self.pos += 1
                items.append(_Item(_render_literal(c, fold=flags.i)))
            last_was_repeat = repeat
        if len(stack) > 1:
            raise self.error("missing ): unmatched parenthesis")
        return "|".join("".join(it.py for it in alt) for alt in stack[0].alternatives)

    def perl_flags(self, group: _Group) -> _Group | None:
        """``(?flags)``, ``(?flags:``, ``(?P<name>``, ``(?<name>``; anything else is refused, as RE2 does."""
        src, start = self.src, self.pos
        rest = src[start + 2 :]
        named = rest.startswith("P<") or (rest.startswith("<") and not rest.startswith(("<=", "<!")))
        if named:
            begin = start + (4 if rest.startswith("P<") else 3)
            end = src.find(">", begin)
            if end < 0:
                raise self.error(f"invalid named capture group: {src[start:]}")
            name = src[begin:end]
            if not name or not all(ch == "_" or ch.isalnum() for ch in name):
                raise self.error(f"invalid named capture group: {src[start : end + 1]}")
            if name in self.names:
                raise self.error(f"duplicate capture group name: {src[start : end + 1]}")
            self.names.add(name)
            self.pos = end + 1
            return _Group("(", group.flags)  # names are irrelevant to matching
        if rest.startswith(("=", "!", "<=", "<!")):
            raise self.error(f"invalid or unsupported Perl syntax: {src[start : start + 4]} (RE2 has no look-around)")
        if rest.startswith(("P=", "P>")):
            raise self.error(f"invalid or unsupported Perl syntax: {src[start : start + 4]} (RE2 has no backreference)")
        flags = group.flags
        negated = saw_flag = False
        i = start + 2
        while True:
            if i >= len(src):
                raise self.error(f"missing closing ): {src[start:]}")
            ch = src[i]
            i += 1
            if ch in "imsU":
                saw_flag = True
                flags = replace(flags, **{ch: not negated})
            elif ch == "-":
                if negated:
                    raise self.error(f"invalid or unsupported Perl syntax: {src[start:i]}")
                negated, saw_flag = True, False
            elif ch in ":)":
                break
            else:
                raise self.error(f"invalid or unsupported Perl syntax: {src[start:i]}")
        if negated and not saw_flag:
            raise self.error(f"invalid or unsupported Perl syntax: {src[start:i]}")
        self.pos = i
        if ch == ":":
            return _Group("(?:", flags)
        group.flags = flags  # (?flags) applies up to the end of the enclosing group
        return None

    def counted_repetition(self) -> tuple[str, int, int] | None:
        """RE2's ``MaybeParseRepetition``: ``{n}``, ``{n,}``, ``{n,m}``; anything else is a literal ``{``."""
        m = _COUNTED_REPETITION.match(self.src, self.pos)
        if m is None or len(m[1]) > 9 or (m[3] is not None and len(m[3]) > 9):
            return None
        lo = int(m[1])
        hi = lo if m[2] is None else (-1 if m[3] is None else int(m[3]))
        self.pos = m.end()
        return m[0], lo, hi

    def repeat(
        self,
        items: list[_Item],
        flags: _Flags,
        op: str,
        last_was_repeat: bool,
        *,
        counted: tuple[int, int] | None,
    ) -> None:
        lazy = False
        shown = op
        if self.src.startswith("?", self.pos):
            lazy = True
            self.pos += 1
            shown += "?"
        if last_was_repeat:
            raise self.error(f"bad repetition operator: {shown}")
        rep = items[-1].rep if items else 1
        if counted is not None:
            lo, hi = counted
            if (hi != -1 and hi < lo) or lo > _MAX_REPEAT or hi > _MAX_REPEAT:
                raise self.error(f"bad repetition operator: {shown}")
            bound = hi if hi >= 0 else lo
            if bound > 0:
                rep *= bound
            if rep > _MAX_REPEAT:
                raise self.error(f"bad repetition operator: {shown}")
        if not items:
            raise self.error(f"missing argument to repetition operator: {shown}")
        greedy_swap = "?" if lazy != flags.U else ""
        items[-1] = _Item(f"(?:{items[-1].py}){op}{greedy_swap}", rep)

    def escape_code(self) -> int:
        """RE2's ``ParseEscape``: a single character (``self.pos`` at the backslash)."""
        src, start = self.src, self.pos
        if start + 1 >= len(src):
            raise self.error("trailing \\")
        c = src[start + 1]
        i = start + 2
        if c in "1234567" and (i >= len(src) or src[i] not in _OCTAL):
            raise self.error(f"invalid escape sequence: \\{c} (RE2 has no backreference)")
        if c in _OCTAL:
            code = int(c)
            for _ in range(2):
                if i < len(src) and src[i] in _OCTAL:
                    code = code * 8 + int(src[i])
                    i += 1
            self.pos = i
            return code
        if c == "x":
            if src.startswith("{", i):
                end = src.find("}", i)
                digits = src[i + 1 : end] if end >= 0 else ""
                if not digits or any(d not in _HEX for d in digits) or int(digits, 16) > _MAX_RUNE:
                    raise self.error(f"invalid escape sequence: {src[start : (end + 1) if end >= 0 else None]}")
                self.pos = end + 1
                return int(digits, 16)
            digits = src[i : i + 2]
            if len(digits) < 2 or any(d not in _HEX for d in digits):
                raise self.error(f"invalid escape sequence: {src[start : i + 2]}")
            self.pos = i + 2
            return int(digits, 16)
        if c in _SIMPLE_ESCAPES:
            self.pos = i
            return _SIMPLE_ESCAPES[c]
        if ord(c) < 0x80 and not c.isalnum():
            self.pos = i
            return ord(c)
        hint = " (RE2 has no backreference)" if c in "kg89" else ""
        raise self.error(f"invalid escape sequence: \\{c}{hint}")

    def class_escape(self) -> _Ranges | None:
        """``\\d \\s \\w \\D \\S \\W`` and ``\\p``/``\\P`` classes at ``self.pos``, or None."""
        src, start = self.src, self.pos
        c = src[start + 1] if start + 1 < len(src) else ""
        if c.lower() in _PERL_CLASSES:
            self.pos = start + 2
            ranges = _PERL_CLASSES[c.lower()]
            return _negate(ranges) if c.isupper() else ranges
        if c in "pP" and start + 2 < len(src):
            if src[start + 2] == "{":
                end = src.find("}", start + 3)
                if end < 0:
                    raise self.error(f"invalid character class range: {src[start:]}")
                name, self.pos = src[start + 3 : end], end + 1
            else:
                name, self.pos = src[start + 2], start + 3
            ranges = _unicode_class(name, src[start : self.pos])
            return _negate(ranges) if c == "P" else ranges
        return None

    def escape(self, items: list[_Item], flags: _Flags) -> None:
        src, start = self.src, self.pos
        c = src[start + 1] if start + 1 < len(src) else ""
        if c in ("b", "B"):
            self.pos += 2
            items.append(_Item(_WORD_BOUNDARY if c == "b" else _NOT_WORD_BOUNDARY))
        elif c == "A":
            self.pos += 2
            items.append(_Item("\\A"))
        elif c == "z":
            self.pos += 2
            items.append(_Item("\\Z"))
        elif c == "C":
            raise RegexSyntaxError("\\C (any byte) is not supported", unsupported=True)
        elif c == "Q":
            end = src.find("\\E", start + 2)
            literal = src[start + 2 :] if end < 0 else src[start + 2 : end]
            self.pos = len(src) if end < 0 else end + 2
            items.extend(_Item(_render_literal(ch, fold=flags.i)) for ch in literal)
        elif (ranges := self.class_escape()) is not None:
            items.append(_Item(_render_class(ranges, fold=flags.i)))
        else:
            items.append(_Item(_render_literal(chr(self.escape_code()), fold=flags.i)))

    def char_class(self, flags: _Flags) -> str:
        """RE2's ``ParseCharClass``: ``[...]`` with ranges, ``[:alpha:]``, Perl and Unicode classes."""
        src, start = self.src, self.pos
        self.pos += 1
        negated = src.startswith("^", self.pos)
        if negated:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while self.pos < len(src) and (src[self.pos] != "]" or first):
            first = False
            if src.startswith("[:", self.pos) and len(src) - self.pos > 2:
                end = src.find(":]", self.pos + 2)
                if end >= 0:
                    name = src[self.pos + 2 : end]
                    posix = _POSIX_CLASSES.get(name.removeprefix("^"))
                    if posix is None:
                        raise self.error(f"invalid character class range: {src[self.pos : end + 2]}")
                    ranges.extend(_negate(posix) if name.startswith("^") else posix)
                    self.pos = end + 2
                    continue
            if src[self.pos] == "\\" and (found := self.class_escape()) is not None:
                ranges.extend(found)
                continue
            lo = self.class_char(start)
            hi = lo
            if len(src) - self.pos >= 2 and src[self.pos] == "-" and src[self.pos + 1] != "]":
                range_start = self.pos
                self.pos += 1
                hi = self.class_char(start)
                if hi < lo:
                    raise self.error(f"invalid character class range: {chr(lo)}{src[range_start : self.pos]}")
            ranges.append((lo, hi))
        if self.pos >= len(src):
            raise self.error(f"missing closing ]: {src[start:]}")
        self.pos += 1
        return _render_class(_normalize(ranges), negated=negated, fold=flags.i)

    def class_char(self, class_start: int) -> int:
        if self.pos >= len(self.src):
            raise self.error(f"missing closing ]: {self.src[class_start:]}")
        if self.src[self.pos] == "\\":
            return self.escape_code()
        self.pos += 1
        return ord(self.src[self.pos - 1])


def re2_to_python(source: str) -> re.Pattern[str]:
    """Compile an RE2 pattern as an equivalent Python pattern; :class:`RegexSyntaxError` if impossible."""
    python = _Re2Translator(source).translate()
    try:
        return re.compile(python)
    except (re.error, RecursionError, OverflowError) as exc:  # pragma: no cover - translation is total
        raise RegexSyntaxError(f"cannot be compiled in Python ({exc})", unsupported=True) from exc


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A compiled regular expression value (GitLab's ``Gitlab::UntrustedRegexp``).

    ``source`` is the RE2 source GitLab compiles: the text between the slashes with ``\\/``
    unescaped and the flags prepended as ``(?flags)`` (``/a/i`` -> ``(?i)a``). Patterns are equal
    when their sources are (``UntrustedRegexp#==``). ``regex`` is the equivalent Python pattern.
    """

    source: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def search(self, text: str) -> bool:
        """Unanchored search, as ``regexp.scan(text).present?``."""
        return self.regex.search(text) is not None


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
def _fabricate(text: str) -> Pattern | RegexSyntaxError:
    """``Lexeme::Pattern.new(text)``: unescape ``\\/``, then ``RubySyntax.fabricate!`` (cached)."""
    value = text.replace("\\/", "/")
    match = _RUBY_SYNTAX.search(value)
    if match is None:
        return RegexSyntaxError("not of the form /pattern/flags")
    source = (f"(?{match[2]})" if match[2] else "") + match[1]
    try:
        return Pattern(source, re2_to_python(source))
    except RegexSyntaxError as exc:
        return exc


def _matches(text: Value, right: Value, expression: str) -> bool:
    """``Lexeme::Matches`` after the nil check: build a regex from a String, else a substring test."""
    if right is True:
        raise RuleEvaluationError(f"`{expression}`: cannot match against a boolean")  # Ruby NoMethodError
    if isinstance(right, str):
        built = _fabricate(right)
        if isinstance(built, RegexSyntaxError):
            if built.unsupported:
                raise RuleEvaluationError(f"`{expression}`: regular expression not supported: {built.detail}")
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
    if isinstance(built, RegexSyntaxError):
        detail = built.detail + (" (valid RE2, not supported by airflow-ci-vars)" if built.unsupported else "")
        raise RuleSyntaxError(f"Invalid regular expression! ({detail})", expression, token.position)
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
    none matched). ``variables`` and ``needs`` are the matching rule's, unexpanded.
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
    compiled: list[Expression | None] = []
    for rule in rules:
        condition = rule.get("if")
        if "if" in rule and not isinstance(condition, str):
            raise RuleSyntaxError(
                f"invalid expression syntax: must be a string, but got {type(condition).__name__}", repr(condition)
            )
        compiled.append(parse_expression(condition) if isinstance(condition, str) else None)
    default_when = job_when or "on_success"
    default_allow_failure = job_allow_failure if job_allow_failure is not None else job_when == "manual"

    def clause_holds(kind: str, value: object, expression: Expression | None) -> bool:
        if kind == "if":
            return expression is not None and expression.truthful(values)
        if kind == "exists":
            globs = _exists_globs(value, values)
            return bool(globs) and exists is not None and exists(globs)
        return True  # changes

    for index, (rule, expression) in enumerate(zip(rules, compiled, strict=True)):
        if all(clause_holds(k, v, expression) for k, v in rule.items() if k in ("if", "changes", "exists")):
            allow_failure = rule.get("allow_failure")
            if allow_failure is not None and not isinstance(allow_failure, bool):
                raise ValueError(f"rules:allow_failure must be a boolean, got {type(allow_failure).__name__}")
            rule_variables = rule.get("variables")
            needs = rule.get("needs")
            auto_cancel = rule.get("auto_cancel")
            interruptible = rule.get("interruptible")
            start_in = rule.get("start_in")
            return RuleOutcome(
                when=str(rule.get("when") or default_when),
                allow_failure=default_allow_failure if allow_failure is None else allow_failure,
                start_in=None if start_in is None else str(start_in),
                variables=MappingProxyType(dict(rule_variables) if isinstance(rule_variables, Mapping) else {}),
                needs=tuple(needs) if isinstance(needs, Iterable) and not isinstance(needs, str) else None,
                interruptible=interruptible if isinstance(interruptible, bool) else None,
                auto_cancel=MappingProxyType(dict(auto_cancel)) if isinstance(auto_cancel, Mapping) else None,
                rule_index=index,
            )
    return RuleOutcome(when="never", allow_failure=default_allow_failure)
