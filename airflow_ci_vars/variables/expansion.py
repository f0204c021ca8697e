"""The three variable expanders of GitLab CI, ported exactly.

1. ``sort_and_expand`` -- Rails ``Collection#sort_and_expand_all``: nested references, ordered by
   dependency (Tarjan SCCs, children first), cycles refused, ``$$``/``%%`` kept for the runner.
2. ``expand_value`` -- Rails ``ExpandVariables.expand``/``expand_existing``: one pass, used for
   keywords (``environment:name``, ``trigger``...); ``$$`` is *not* an escape there.
3. ``runner_expand`` -- gitlab-runner's single Go ``os.Expand`` pass over the unexpanded list; it
   turns ``$$`` into ``$`` and a reference to a file variable into that file's path.

Every expanded value is bounded (``variables/limits.py``, ours: GitLab has no bound): a value is
refused with an ``ExpansionError`` naming its key as soon as its pieces would pass the limit,
before it is joined.

Sources: R ``lib/gitlab/ci/variables/collection.rb``, ``collection/sort.rb``, ``collection/item.rb``,
``lib/expand_variables.rb``; GR ``common/spec/variables.go``; Go ``os/env.go``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Union

from airflow_ci_vars.errors import ExpansionError
from airflow_ci_vars.variables.limits import ExpansionBudget
from airflow_ci_vars.variables.model import Variable

__all__ = [
    "VariablesInput",
    "expand_value",
    "go_os_expand",
    "runner_expand",
    "sort_and_expand",
    "to_variable_list",
]

VariablesInput = Union[Mapping[str, str], Iterable[Variable]]

# Collection::Item::VARIABLES_REGEXP = /\$\$|%%|\$(?<key>[a-zA-Z_][a-zA-Z0-9_]*)|\${\g<key>?}|%\g<key>%/
_COLLECTION_RE = re.compile(
    r"\$\$|%%|\$(?P<a>[A-Za-z_][A-Za-z0-9_]*)|\$\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)?\}|%(?P<c>[A-Za-z_][A-Za-z0-9_]*)%",
    re.ASCII,
)
# ExpandVariables::VARIABLES_REGEXP = /\$([a-zA-Z_][a-zA-Z0-9_]*)|\${\g<1>}|%\g<1>%/  (no $$ escape)
_KEYWORD_RE = re.compile(
    r"\$(?P<a>[A-Za-z_][A-Za-z0-9_]*)|\$\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)\}|%(?P<c>[A-Za-z_][A-Za-z0-9_]*)%",
    re.ASCII,
)


def to_variable_list(variables: VariablesInput) -> list[Variable]:
    """Accept a mapping of strings or an iterable of ``Variable``; return an ordered list."""
    if isinstance(variables, Mapping):
        return [Variable(str(k), "" if v is None else str(v)) for k, v in variables.items()]
    return list(variables)


def _ref_key(m: re.Match[str]) -> str | None:
    return m.group("a") or m.group("b") or m.group("c")


def _bounded_sub(
    pattern: re.Pattern[str],
    replace: Callable[[re.Match[str]], str],
    value: str,
    *,
    key: str | None,
    budget: ExpansionBudget,
) -> str:
    """``pattern.sub(replace, value)``, refused by ``budget`` before a value past its limits is built."""
    pieces: list[str] = []
    size = 0
    start = 0
    for m in pattern.finditer(value):
        text = replace(m)
        size += m.start() - start + len(text)
        budget.check(key, size)
        pieces.append(value[start : m.start()])
        pieces.append(text)
        start = m.end()
    pieces.append(value[start:])
    budget.spend(key, size + len(value) - start)
    return "".join(pieces)


def _depends_on(item: Variable) -> list[str] | None:
    """Keys an item references, or None when GitLab does not expand it at all."""
    value = item.value
    if item.raw or ("$" not in value and "%" not in value):
        return None
    return [k for k in (_ref_key(m) for m in _COLLECTION_RE.finditer(value)) if k]


def _tarjan(children: Sequence[Sequence[int]]) -> list[list[int]]:
    """Strongly connected components, children first, like Ruby ``TSort``.

    Start nodes and children are visited in list order; each component lists its nodes in
    discovery order. Iterative, so long reference chains do not hit Python's recursion limit.
    """
    n = len(children)
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    result: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        if not children[root]:  # fast path: a node without references is its own component
            index[root] = counter
            counter += 1
            result.append([root])
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work: list[tuple[int, int]] = [(root, 0)]
        while work:
            node, i = work[-1]
            kids = children[node]
            if i < len(kids):
                work[-1] = (node, i + 1)
                child = kids[i]
                if index[child] == -1:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack[child] = True
                    work.append((child, 0))
                elif on_stack[child] and index[child] < low[node]:
                    low[node] = index[child]
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                if low[node] < low[parent]:
                    low[parent] = low[node]
            if low[node] == index[node]:
                start = len(stack) - 1
                while stack[start] != node:
                    start -= 1
                component = stack[start:]
                del stack[start:]
                for member in component:
                    on_stack[member] = False
                result.append(component)
    return result


def _ruby_inspect(keys: Sequence[str]) -> str:
    return "[" + ", ".join('"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys) + "]"


def sort_and_expand(
    variables: VariablesInput,
    *,
    keep_undefined: bool = False,
    expand_file_refs: bool = True,
    expand_raw_refs: bool = True,
) -> list[Variable]:
    """Expand nested references as GitLab's ``Collection#sort_and_expand_all`` does.

    Returns the variables in GitLab's dependency order (a variable after everything it
    references), duplicates kept. A reference resolves to the last already-emitted item with
    that key, i.e. the final-precedence value. ``$$`` and ``%%`` are kept for the runner.
    Raises ``ExpansionError('circular variable reference detected: ["A", "B"]')`` on a cycle;
    a self-reference (``PATH: $PATH:/x``) is not a cycle. An expanded value past
    ``MAX_EXPANDED_VALUE`` characters, or all of them past ``MAX_EXPANDED_TOTAL``, raises an
    ``ExpansionError`` naming the variable, before the value is built.
    """
    items = to_variable_list(variables)
    deps = [_depends_on(it) for it in items]
    by_key: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_key.setdefault(it.key, []).append(i)
    children = [[j for k in (d or ()) for j in by_key.get(k, ())] for d in deps]
    components = _tarjan(children)
    cycles = [[items[i].key for i in c] for c in components if len(c) > 1]
    if cycles:
        raise ExpansionError(
            "circular variable reference detected: " + ", ".join(_ruby_inspect(c) for c in cycles),
            cycles=cycles,
        )

    emitted: dict[str, Variable] = {}
    out: list[Variable] = []
    budget = ExpansionBudget()

    def replace(m: re.Match[str]) -> str:
        key = _ref_key(m)
        if not key:
            return m.group(0)  # $$ or %% stay for the runner
        ref = emitted.get(key)
        if ref is None:
            return m.group(0) if keep_undefined else ""
        if ref.is_file:
            return ref.value if expand_file_refs else m.group(0)
        if ref.raw:
            return ref.value if expand_raw_refs else m.group(0)
        return ref.value

    for (i,) in components:  # all components have one node once cycles are excluded
        item = items[i]
        if deps[i] is not None:
            item = item.with_value(_bounded_sub(_COLLECTION_RE, replace, item.value, key=item.key, budget=budget))
        out.append(item)
        emitted[item.key] = item
    return out


def _last_by_key(variables: VariablesInput) -> dict[str, Variable]:
    last: dict[str, Variable] = {}
    for v in to_variable_list(variables):
        last[v.key] = v
    return last


def expand_value(
    value: str,
    variables: VariablesInput,
    *,
    keep_undefined: bool = False,
    expand_file_refs: bool = True,
    key: str | None = None,
) -> str:
    """Expand ``$VAR``, ``${VAR}`` and ``%VAR%`` once, as GitLab's ``ExpandVariables`` does.

    Used for keywords (``environment:name``, ``trigger`` variables...). Not recursive and no
    ``$$`` escape (``$$A`` is ``$`` followed by the value of ``A``). An undefined reference
    becomes ``""`` (``expand``) or stays as written with ``keep_undefined=True``
    (``expand_existing``). A file variable gives its content unless ``expand_file_refs=False``.
    A result past ``MAX_EXPANDED_VALUE`` characters raises an ``ExpansionError`` naming ``key``.
    """
    if "$" not in value and "%" not in value:
        return value
    lookup = _last_by_key(variables)

    def replace(m: re.Match[str]) -> str:
        key = _ref_key(m)
        ref = lookup.get(key) if key else None
        if ref is None:
            return m.group(0) if keep_undefined else ""
        if ref.is_file and not expand_file_refs:
            return m.group(0)
        return ref.value

    return _bounded_sub(_KEYWORD_RE, replace, value, key=key, budget=ExpansionBudget())


_SHELL_SPECIAL = frozenset("*#$@!?-0123456789")


def _is_alnum(c: str) -> bool:
    return c == "_" or ("0" <= c <= "9") or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _shell_name(s: str, start: int) -> tuple[str, int]:
    """Go ``os.getShellName`` on ``s[start:]``: the name and how many characters it used."""
    c = s[start]
    if c == "{":
        if len(s) - start > 2 and s[start + 1] in _SHELL_SPECIAL and s[start + 2] == "}":
            return s[start + 1], 3
        close = s.find("}", start + 1)
        if close == -1:
            return "", 1  # bad syntax: eat "${"
        if close == start + 1:
            return "", 2  # bad syntax: eat "${}"
        return s[start + 1 : close], close - start + 1
    if c in _SHELL_SPECIAL:
        return c, 1
    end = start
    while end < len(s) and _is_alnum(s[end]):
        end += 1
    return s[start:end], end - start


def go_os_expand(
    value: str, mapping: Callable[[str], str], *, key: str | None = None, budget: ExpansionBudget | None = None
) -> str:
    """Port of Go's ``os.Expand``: replace ``$name`` and ``${name}`` using ``mapping``.

    ``budget`` (default: a fresh one) refuses a result past its limits, naming ``key``.
    """
    if "$" not in value:
        return value
    budget = budget if budget is not None else ExpansionBudget()
    buf: list[str] = []
    size = 0
    i = 0
    j = 0
    n = len(value)
    while j < n:
        if value[j] == "$" and j + 1 < n:
            buf.append(value[i:j])
            size += j - i
            name, width = _shell_name(value, j + 1)
            if not name and width > 0:
                pass  # invalid syntax: the characters are eaten
            elif not name:
                buf.append("$")  # "$" not followed by a name stays
                size += 1
            else:
                text = mapping(name)
                buf.append(text)
                size += len(text)
            budget.check(key, size)
            j += width
            i = j + 1
        j += 1
    buf.append(value[i:])
    budget.spend(key, size + len(buf[-1]))
    return "".join(buf)


_RUNNER_BLANK = frozenset("*#@!?0123456789")


def runner_expand(variables: VariablesInput, *, temp_dir: str | None = None) -> list[Variable]:
    """gitlab-runner's final pass: expand every non-raw value once with Go ``os.Expand``.

    References are looked up in the *unexpanded* list (last definition wins); ``$$`` becomes
    ``$``; a file variable expands to ``<RUNNER_TEMP_PROJECT_DIR>/<KEY>`` where the directory is
    ``temp_dir`` or the list's ``RUNNER_TEMP_PROJECT_DIR``. Not recursive. Raw variables are left
    untouched. Expanded values are bounded as in :func:`sort_and_expand`.
    """
    source = to_variable_list(variables)
    last = _last_by_key(source)
    if temp_dir is None:
        temp_var = last.get("RUNNER_TEMP_PROJECT_DIR")
        temp_dir = temp_var.value if temp_var is not None else ""

    def get(name: str) -> str:
        if name == "$":
            return "$"
        if len(name) == 1 and name in _RUNNER_BLANK:
            return ""
        ref = last.get(name)
        if ref is None:
            return ""
        if ref.is_file:
            return file_variable_path(temp_dir or "", name)
        return ref.value

    budget = ExpansionBudget()
    return [
        v if v.raw or "$" not in v.value else v.with_value(go_os_expand(v.value, get, key=v.key, budget=budget))
        for v in source
    ]


def file_variable_path(temp_dir: str, key: str) -> str:
    """Where the runner writes a file variable: ``<temp_dir>/<KEY>``."""
    return f"{temp_dir.rstrip('/')}/{key}" if temp_dir else key
