"""Masking of secret values in job logs, with GitLab's rules.

Two halves:

* **Maskability** (GitLab Rails, ``app/models/concerns/ci/maskable.rb``): whether a value may be
  saved as ``masked``. :func:`maskability_problem`, :func:`is_maskable`, :func:`validate_maskable`.
* **Log masking** (gitlab-runner's writer chain ``masker -> urlsanitizer -> tokensanitizer``):
  :class:`Masker` replaces every occurrence of a secret by ``[MASKED]``, one-shot (:meth:`Masker.mask`)
  or over a stream of chunks (:meth:`Masker.stream`), then masks sensitive URL parameters and
  GitLab token prefixes.

Phrase replacement covers the *union of all occurrences*: every occurrence of every secret is
found (overlapping ones included) and each run of overlapping occurrences is replaced by one
``[MASKED]``; occurrences that merely touch (``secretssecrets``) give one ``[MASKED]`` each. This
is leftmost-longest where secrets do not overlap (all of gitlab-runner's test vectors), never
leaves the tail of a longer secret visible when a shorter one is its prefix, and also never
leaves part of a secret visible when two *different* secrets overlap (``abc`` and ``bcdef`` in
``abcdef``). Streaming output is identical to one-shot output for every way of chunking the
input; unlike gitlab-runner, self-overlapping secrets split across writes never leak.

Beyond GitLab (``encoded_forms=True``), the URL-encoded and base64 forms of each secret are masked
too. Base64 forms are only found where the secret was encoded on its own (aligned), not when it is
part of a larger encoded blob.

This module is pure: it never imports Airflow. Messages never contain a value.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, quote_plus

from ahocorasick_rs import AhoCorasick, BytesAhoCorasick, Implementation, MatchKind

from airflow_ci_vars.errors import MaskabilityError

__all__ = [
    "DEFAULT_TOKEN_PREFIXES",
    "MASK",
    "MIN_MASKED_LENGTH",
    "URL_SENSITIVE_PARAMS",
    "Masker",
    "MaskingStream",
    "is_maskable",
    "maskability_problem",
    "validate_maskable",
]

MASK = "[MASKED]"
"""gitlab-runner's replacement text."""

MIN_MASKED_LENGTH = 8
"""Minimum length of a masked value (GitLab Rails validation; the runner has no minimum)."""

# --------------------------------------------------------------------------------------------
# Maskability (Rails)
# --------------------------------------------------------------------------------------------

_MASKABLE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=/@:.~-")
# Ruby's \s is ASCII-only: [ \t\r\n\f\v].
_RUBY_SPACE = frozenset(" \t\r\n\f\v")

_SHORT_REASON = f"must be at least {MIN_MASKED_LENGTH} characters"
_SPACE_REASON = "must be a single line with no spaces"
_CHARSET_REASON = (
    "can contain only letters, digits and '_', '+', '=', '/', '@', ':', '.', '~', '-'"
    " (disable expansion to allow other characters)"
)


def maskability_problem(value: str, *, raw: bool = False) -> str | None:
    """Return why ``value`` cannot be masked, or None if it can.

    Rules of GitLab's ``Ci::Maskable``: a masked expanded value matches
    ``\\A[a-zA-Z0-9_+=/@:.~-]{8,}\\z``; a masked *raw* value matches ``\\A\\S{8,}\\z`` (Ruby's
    ``\\s`` is ASCII whitespace only). The reason says which rule failed but names no
    character of the value (that would tell a log reader something about the secret).
    """
    reasons: list[str] = []
    if len(value) < MIN_MASKED_LENGTH:
        reasons.append(_SHORT_REASON)
    if any(c in _RUBY_SPACE for c in value):
        reasons.append(_SPACE_REASON)
    # Which characters offend is not said: that would tell a log reader about the secret.
    if not raw and any(c not in _MASKABLE_CHARS and c not in _RUBY_SPACE for c in value):
        reasons.append(_CHARSET_REASON)
    return "; ".join(reasons) if reasons else None


def is_maskable(value: str, *, raw: bool = False) -> bool:
    """True if GitLab would accept ``value`` for a masked variable (``raw`` = expansion disabled)."""
    return maskability_problem(value, raw=raw) is None


def validate_maskable(value: str, *, raw: bool = False, key: str | None = None) -> None:
    """Raise :class:`MaskabilityError` if ``value`` cannot be masked; the message names ``key`` only."""
    reason = maskability_problem(value, raw=raw)
    if reason is None:
        return
    subject = f"Value of variable '{key}'" if key is not None else "Value"
    raise MaskabilityError(f"Validation failed: {subject} cannot be masked: {reason}", key=key, reason=reason)


# --------------------------------------------------------------------------------------------
# Sanitizers (gitlab-runner urlsanitizer / tokensanitizer)
# --------------------------------------------------------------------------------------------

URL_SENSITIVE_PARAMS: tuple[str, ...] = (
    "private_token",
    "authenticity_token",
    "rss_token",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
)
"""URL query keys whose values gitlab-runner masks (matched case-insensitively)."""

DEFAULT_TOKEN_PREFIXES: tuple[str, ...] = (
    "glpat-",
    "gloas-",
    "gldt-",
    "glrt-",
    "glcbt-",
    "glrtr-",
    "glptt-",
    "glft-",
    "glimt-",
    "glagent-",
    "glsoat-",
    "glffct-",
    "_gitlab_session=",
    "gltok-",
)
"""GitLab token prefixes masked by gitlab-runner (``FF_MASK_ALL_DEFAULT_TOKENS`` on, its default)."""

# URL parameter values end at '?', '&', whitespace or a control character (Go unicode.IsControl = Cc).
_CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
_URL_RE = re.compile(
    "([?&](?:" + "|".join(re.escape(k) for k in URL_SENSITIVE_PARAMS) + ")=)[^?&\\s" + _CONTROL + "]*",
    re.IGNORECASE,
)
_AFTER_PREFIX_RUN = "[A-Za-z0-9._=-]+"
# Characters no sanitizer match can contain except a match's leading '?'/'&': text may be cut
# after a whitespace/control character or before a '?'/'&' without changing the result.
_CUT_RE = re.compile("[\\s" + _CONTROL + "?&]")


def _is_control(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or 0x7F <= o <= 0x9F


_SURROGATE_RE = re.compile("[\\ud800-\\udfff]")


_DFA_MAX_CHARS = 1024
"""Up to this total pattern length the automaton is a DFA; past it, a contiguous NFA.

``ahocorasick_rs``'s own heuristic picks a DFA for few patterns, and the aho-corasick crate builds
a DFA by resolving every failure transition of every state in advance (``src/dfa.rs``): for a
periodic pattern that is quadratic in its length (``"_" * 16000`` with its encoded forms: 4.8 s;
``"ab" * 8000``: 3.5 s). A contiguous NFA is built in time linear in the total pattern length
(``src/nfa/contiguous.rs``; 2 ms for the same patterns) but searches a few secrets 2-4x slower,
so small pattern sets, whose DFA costs at most about 2 ms whatever their shape, keep the DFA.
"""


def _implementation(patterns: Sequence[str]) -> Implementation:
    """The automaton kind for ``patterns``: see :data:`_DFA_MAX_CHARS`."""
    total = sum(len(p) for p in patterns)
    return Implementation.DFA if total <= _DFA_MAX_CHARS else Implementation.ContiguousNFA


class _Automaton:
    """An Aho-Corasick automaton over non-empty ``patterns`` that accepts any ``str`` haystack.

    ``ahocorasick_rs`` works on UTF-8 and reports *character* indexes. Lone surrogates (text
    decoded with ``surrogateescape``, say) cannot be encoded that way; such text, or such patterns,
    go through a byte automaton over the ``surrogatepass`` encoding, whose byte offsets are mapped
    back to character indexes. Built in time linear in the total length of the patterns, whatever
    their shape (see :data:`_DFA_MAX_CHARS`).
    """

    __slots__ = ("_ac", "_bytes_ac", "_matchkind", "_patterns")

    def __init__(self, patterns: Sequence[str], matchkind: MatchKind) -> None:
        self._patterns = tuple(patterns)
        self._matchkind = matchkind
        self._bytes_ac: BytesAhoCorasick | None = None
        self._ac: AhoCorasick | None = None
        if _SURROGATE_RE.search("\0".join(self._patterns)) is None:
            self._ac = AhoCorasick(self._patterns, matchkind=matchkind, implementation=_implementation(self._patterns))
        else:
            self._bytes_ac = self._build_bytes()

    def _build_bytes(self) -> BytesAhoCorasick:
        encoded = [p.encode("utf-8", "surrogatepass") for p in self._patterns]
        return BytesAhoCorasick(encoded, matchkind=self._matchkind, implementation=_implementation(self._patterns))

    def find(self, text: str, *, overlapping: bool = False) -> list[tuple[int, int, int]]:
        """Matches as (pattern index, start, end) with *character* indexes into ``text``.

        Ordered by end (the order in which the automaton reaches them), also when overlapping.
        """
        if self._ac is not None:
            try:
                return self._ac.find_matches_as_indexes(text, overlapping)
            except UnicodeEncodeError:
                pass  # lone surrogates in the text
        if self._bytes_ac is None:
            self._bytes_ac = self._build_bytes()  # benign race: both threads build the same thing
        data = text.encode("utf-8", "surrogatepass")
        matches = self._bytes_ac.find_matches_as_indexes(data, overlapping)
        # Patterns are whole UTF-8 sequences, so every offset is on a character boundary.
        chars: dict[int, int] = {}
        prev_byte = prev_char = 0
        for offset in sorted({o for _, s, e in matches for o in (s, e)}):
            prev_char += len(data[prev_byte:offset].decode("utf-8", "surrogatepass"))
            prev_byte = offset
            chars[offset] = prev_char
        return [(i, chars[s], chars[e]) for i, s, e in matches]


class _Sanitizer:
    """The URL-parameter then token-prefix sanitizers, applied to phrase-masked text."""

    __slots__ = ("_prefixes", "_replacement", "_token_re")

    def __init__(self, token_prefixes: Iterable[str], replacement: str) -> None:
        prefixes = sorted(set(token_prefixes), key=lambda p: (len(p), p))
        for p in prefixes:
            if not p or any(c.isspace() or _is_control(c) or c in "?&" for c in p):
                raise ValueError(
                    "token prefixes must be non-empty and contain no whitespace, control characters, '?' or '&'"
                )
        self._replacement = replacement
        # Shortest prefix first: where two prefixes fit, the shorter one masks more.
        self._token_re = re.compile("(" + "|".join(re.escape(p) for p in prefixes) + ")" + _AFTER_PREFIX_RUN)
        # Candidate positions come from an automaton (much faster than letting ``re`` try the
        # alternation at every position); the regex then decides at each candidate, in order,
        # exactly as ``re.sub`` would.
        self._prefixes = _Automaton(prefixes, MatchKind.Standard)

    def _url_params(self, text: str) -> str:
        """``_URL_RE.sub`` tried only where a '?' or '&' is (``str.find`` beats ``re``'s scan)."""
        next_q, next_a = text.find("?"), text.find("&")
        if next_q < 0 and next_a < 0:
            return text
        parts: list[str] = []
        pos = 0
        match = _URL_RE.match
        while next_q >= 0 or next_a >= 0:
            at = next_a if next_q < 0 or 0 <= next_a < next_q else next_q
            m = match(text, at) if at >= pos else None
            if m is not None:
                parts.append(text[pos:at])
                parts.append(m.group(1) + self._replacement)
                pos = m.end()
            if at == next_q:
                next_q = text.find("?", max(at + 1, pos))
            else:
                next_a = text.find("&", max(at + 1, pos))
        if not parts:
            return text
        parts.append(text[pos:])
        return "".join(parts)

    def __call__(self, text: str) -> str:
        text = self._url_params(text)
        starts = sorted({start for _, start, _ in self._prefixes.find(text, overlapping=True)})
        if not starts:
            return text
        parts: list[str] = []
        pos = 0
        match = self._token_re.match
        for start in starts:
            if start < pos:
                continue
            m = match(text, start)
            if m is not None:
                parts.append(text[pos:start])
                parts.append(m.group(1) + self._replacement)
                pos = m.end()
        if not parts:
            return text
        parts.append(text[pos:])
        return "".join(parts)


# --------------------------------------------------------------------------------------------
# Phrase masker
# --------------------------------------------------------------------------------------------


def _encoded_forms(secret: str) -> list[str]:
    """URL-encoded and base64 forms of ``secret`` (may repeat it or each other)."""
    try:
        raw = secret.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no well-defined byte form
        return []
    forms = [quote(raw, safe=""), quote_plus(raw)]
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms.append(text)
        forms.append(text.rstrip("="))
    return forms


class Masker:
    """Replace secrets in log text by ``[MASKED]``, like gitlab-runner, without its leaks.

    ``secrets`` are stripped of surrounding whitespace (as gitlab-runner does), empty ones are
    dropped and duplicates removed. ``encoded_forms`` also masks URL-encoded and base64 forms;
    ``sanitize`` applies gitlab-runner's URL-parameter and token-prefix sanitizers after phrase
    masking (``token_prefixes`` extends :data:`DEFAULT_TOKEN_PREFIXES`). The automaton is built
    once; a masker is immutable and may be shared between threads (streams may not).
    """

    __slots__ = ("_automaton", "_max_len", "_phrases", "_replacement", "_sanitizer", "_secrets")

    def __init__(
        self,
        secrets: Iterable[str],
        *,
        replacement: str = MASK,
        encoded_forms: bool = True,
        sanitize: bool = True,
        token_prefixes: Iterable[str] = (),
    ) -> None:
        if not isinstance(replacement, str) or not replacement:
            raise ValueError("replacement must be a non-empty string")
        unique: set[str] = set()
        for secret in secrets:
            if not isinstance(secret, str):
                raise TypeError(f"secrets must be strings, got {type(secret).__name__}")
            stripped = secret.strip()
            if stripped:
                unique.add(stripped)
        phrases = set(unique)
        if encoded_forms:
            for secret in unique:
                phrases.update(f for f in _encoded_forms(secret) if f)
        order = lambda s: (-len(s), s)  # noqa: E731 - longest first, then lexicographic
        self._secrets: tuple[str, ...] = tuple(sorted(unique, key=order))
        self._phrases: tuple[str, ...] = tuple(sorted(phrases, key=order))
        self._replacement = replacement
        self._max_len = len(self._phrases[0]) if self._phrases else 0
        self._automaton = _Automaton(self._phrases, MatchKind.Standard) if self._phrases else None
        self._sanitizer: _Sanitizer | None = (
            _Sanitizer((*DEFAULT_TOKEN_PREFIXES, *token_prefixes), replacement) if sanitize else None
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets in use (stripped, non-empty, unique), longest first."""
        return self._secrets

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every string searched for: the secrets plus their encoded forms, longest first."""
        return self._phrases

    @property
    def replacement(self) -> str:
        """Text that replaces each masked occurrence."""
        return self._replacement

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        return f"Masker(<{len(self._secrets)} secrets, {len(self._phrases)} phrases>)"

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret (and sanitizer match) replaced."""
        masked, _, _, _ = self._mask_phrases(text, final=True)
        return self._sanitizer(masked) if self._sanitizer is not None else masked

    def stream(self) -> MaskingStream:
        """Return a new :class:`MaskingStream` for masking text that arrives in chunks."""
        return MaskingStream(self)

    def _mask_phrases(self, buf: str, *, final: bool, skip: int = 0) -> tuple[str, int, int, bool]:
        """Mask the settled part of ``buf``; return (masked text, length consumed, next skip, held).

        The first ``skip`` characters of ``buf`` were already emitted inside a ``[MASKED]``: they
        are only context, so that occurrences starting there are still found; a run of them that
        continues past ``skip`` continues that ``[MASKED]`` (nothing more is emitted for it).

        Unless ``final``, only positions before ``cut = len(buf) - (max_len - 1)`` are settled:
        every occurrence starting there lies wholly inside ``buf``. A run of overlapping
        occurrences is settled once it ends at or before the cut (a later occurrence can only
        start at the cut or after it); an unsettled run is kept for the next call (``held``),
        unless more than ``_MAX_HELD`` characters are held: then its ``[MASKED]`` is emitted now
        and the last ``max_len - 1`` characters before the cut are kept as context (``skip``), so
        memory stays bounded and no part of a secret is ever emitted. Time is linear in
        ``len(buf)`` plus the number of occurrences.
        """
        cut = len(buf) if final or self._automaton is None else len(buf) - self._max_len + 1
        if cut <= skip:
            return "", 0, skip, False
        if self._automaton is None:
            return buf[skip:cut], cut, 0, False
        parts: list[str] = []
        pos = skip
        for start, end in _runs(self._automaton.find(buf, overlapping=True), skip):
            if start >= cut:
                break
            if end > cut:  # may still grow
                if len(buf) - max(start, skip) <= _MAX_HELD:  # keep it
                    if start < skip:  # it continues an emitted [MASKED]: keep the context too
                        return "", 0, skip, True
                    parts.append(buf[pos:start])
                    return "".join(parts), start, 0, True
                # held too long: emit its [MASKED] now, keep context before the cut
                self._close_run(parts, buf, pos, start, skip)
                keep = min(self._max_len - 1, cut)
                return "".join(parts), cut - keep, keep, False
            self._close_run(parts, buf, pos, start, skip)
            pos = end
        if pos < cut:
            parts.append(buf[pos:cut])
            pos = cut
        return "".join(parts), pos, 0, False

    def _close_run(self, parts: list[str], buf: str, pos: int, run_start: int, skip: int) -> None:
        """Emit the text before a run, then its replacement (unless it continues an emitted one)."""
        if run_start < skip:
            return  # continues the [MASKED] emitted before the context
        parts.append(buf[pos:run_start])
        parts.append(self._replacement)


def _runs(matches: list[tuple[int, int, int]], skip: int) -> list[tuple[int, int]]:
    """Runs of overlapping occurrences as (start, end), in text order; ``matches`` ordered by end.

    Swept from the last end backwards, so no sort is needed: an occurrence joins the run after
    it when it ends inside that run (occurrences that merely touch stay apart). Occurrences
    ending at or before ``skip`` are ignored. Linear in the number of matches.
    """
    runs: list[tuple[int, int]] = []
    run_start = run_end = -1
    for _, start, end in reversed(matches):
        if end <= skip:
            break
        if end > run_start >= 0:  # overlaps the run after it
            run_start = min(run_start, start)
            continue
        if run_end >= 0:
            runs.append((run_start, run_end))
        run_start, run_end = start, end
    if run_end >= 0:
        runs.append((run_start, run_end))
    runs.reverse()
    return runs


_MAX_HELD = 1 << 16
"""Characters a stream may hold back for one growing run of overlapping occurrences."""


class MaskingStream:
    """Incremental masking: ``write`` returns what is safe to emit, ``flush`` the rest.

    The concatenation of all returned text equals :meth:`Masker.mask` of the concatenated input,
    whatever the chunking (a run of overlapping secret occurrences longer than 64 KiB is the one
    exception: it may be reported as several ``[MASKED]``, never in clear). Text that could still
    be part of a secret (at most the longest phrase minus one character) or of a sanitizer match
    (up to the last whitespace, control character, ``?`` or ``&``) is held back until more input
    or :meth:`flush`. After ``flush`` the stream is empty and may be reused for a new input.
    """

    __slots__ = ("_buf", "_incoming", "_incoming_len", "_masker", "_next_scan", "_pending", "_skip")

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._buf = ""  # held back by the last scan
        self._skip = 0  # leading characters of _buf already emitted inside a [MASKED]
        self._incoming: list[str] = []  # written since the last scan
        self._incoming_len = 0
        self._next_scan = masker._max_len  # scan once _buf + incoming is this long
        self._pending: list[str] = []

    def write(self, chunk: str) -> str:
        """Add ``chunk``; return the masked text that can be emitted now (possibly empty).

        Each scan covers what is held back plus what arrived since, so a scan waits until at
        least as much has arrived as is held back (or until a held run reaches the hold limit):
        every character is scanned a bounded number of times, whatever the chunking.
        """
        if not chunk:
            return ""
        self._incoming.append(chunk)
        self._incoming_len += len(chunk)
        if len(self._buf) + self._incoming_len < self._next_scan:
            return ""
        m = self._masker
        buf = self._take()
        masked, used, self._skip, held = m._mask_phrases(buf, final=False, skip=self._skip)
        self._buf = buf[used:]
        kept = len(self._buf)
        next_scan = max(m._max_len, 2 * kept)
        if held:  # look again when the held run would pass the hold limit
            next_scan = max(kept + 1, min(next_scan, self._skip + _MAX_HELD + 1))
        self._next_scan = next_scan
        return self._sanitize(masked, final=False)

    def flush(self) -> str:
        """End of input: return everything still held back, masked."""
        masked, _, _, _ = self._masker._mask_phrases(self._take(), final=True, skip=self._skip)
        self._buf = ""
        self._skip = 0
        self._next_scan = self._masker._max_len
        return self._sanitize(masked, final=True)

    def _take(self) -> str:
        """What is held back followed by everything written since (joined once per scan)."""
        buf = "".join((self._buf, *self._incoming))
        self._incoming.clear()
        self._incoming_len = 0
        return buf

    def _sanitize(self, text: str, *, final: bool) -> str:
        sanitizer = self._masker._sanitizer
        if sanitizer is None:
            return text
        if final:
            self._pending.append(text)
            segment = "".join(self._pending)
            self._pending.clear()
            return sanitizer(segment)
        if not text:
            return ""
        hit = _CUT_RE.search(text[::-1])
        if hit is None:
            self._pending.append(text)
            return ""
        idx = len(text) - 1 - hit.start()
        cut = idx if text[idx] in "?&" else idx + 1
        self._pending.append(text[:cut])
        segment = "".join(self._pending)
        self._pending.clear()
        if cut < len(text):
            self._pending.append(text[cut:])
        return sanitizer(segment)
