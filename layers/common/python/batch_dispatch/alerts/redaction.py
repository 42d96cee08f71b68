"""Secrets taken out of text before it leaves AWS for Slack: log lines, reasons, parameter values.

Built in: AWS access key ids (AKIA, ASIA, ...) and secret access keys, bearer tokens and Authorization
headers, passwords in URLs and in `password=` assignments, Slack webhook URLs and tokens (xox*, xapp-),
and private key blocks (also when the log tail cut off their first or last line). Users add their own
regexes (LOG_REDACT_PATTERNS, separated by newlines or `;;`). Each match becomes `[REDACTED]`, or keeps a
harmless prefix (`Bearer [REDACTED]`, `https://user:[REDACTED]@host`) so the line still reads.
Redacting too much is the safe mistake here: a 40-character mixed-case string is taken for a secret key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import NamedTuple

REDACTED = "[REDACTED]"
_PATTERN_SEPARATOR = re.compile(r"\n|;;")
_PRIVATE_KEY = "PRIVATE KEY"

# (regex, replacement): the replacement may keep group 1 (a label) so the line stays readable. Compiled on
# first use, not at import: settings (imported by every function) validate user patterns with this module.
_BUILT_IN: tuple[tuple[str, str], ...] = (
    # Slack webhook URLs and tokens (bot, user, app, refresh, config).
    (r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+", REDACTED),
    (r"\bxox[abposre]-[A-Za-z0-9\-]+", REDACTED),
    (r"\bxapp-[0-9]+-[A-Za-z0-9\-]+", REDACTED),
    # AWS access key ids: long-term (AKIA), temporary (ASIA) and the other documented prefixes.
    (r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b", REDACTED),
    # Secret access keys named as such (any quoting); any other 40-character key-like string is below.
    (
        r"(?i)((?:aws_?)?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])",
        r"\1" + REDACTED,
    ),
    # Authorization headers and bearer tokens.
    (r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|token)?\s*)[^\s\"',;]+", r"\1" + REDACTED),
    (r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*", r"\1" + REDACTED),
    # user:password@ in any URL.
    (r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@]+:)[^\s/@]+(@)", r"\1" + REDACTED + r"\2"),
    # password=..., "password": "..."
    (r"(?i)\b((?:password|passwd|pwd)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+", r"\1" + REDACTED),
)


class _Compiled(NamedTuple):
    private_key_block: re.Pattern[str]
    private_key_end: re.Pattern[str]
    built_in: tuple[tuple[re.Pattern[str], str], ...]
    key_like: re.Pattern[str]


@cache
def _compiled() -> _Compiled:
    return _Compiled(
        private_key_block=re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?"
            r"(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
        # The tail may start inside a key: everything before a lone END line is key material.
        private_key_end=re.compile(r"\A.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----", re.DOTALL),
        built_in=tuple((re.compile(pattern), replacement) for pattern, replacement in _BUILT_IN),
        key_like=re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
    )


def compile_patterns(text: str) -> tuple[re.Pattern[str], ...]:
    """The user's patterns (LOG_REDACT_PATTERNS), compiled. Raises ValueError naming a bad one."""
    compiled = []
    for pattern in (p.strip() for p in _PATTERN_SEPARATOR.split(text or "")):
        if not pattern:
            continue
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {pattern!r} ({error})") from None
    return tuple(compiled)


def _looks_like_secret_key(match: re.Match[str]) -> str:
    text = match.group(0)
    mixed = (
        any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)
    )
    return REDACTED if mixed else text


class Redactor:
    """Redacts the built-in secret kinds, then the user's patterns."""

    def __init__(self, user_patterns: Iterable[re.Pattern[str]] = ()) -> None:
        self.user_patterns = tuple(user_patterns)

    def text(self, text: str) -> str:
        """`text` (one line or many) with every secret replaced."""
        if not text:
            return text
        compiled = _compiled()
        if _PRIVATE_KEY in text:
            text = compiled.private_key_block.sub(REDACTED, text)
            text = compiled.private_key_end.sub(REDACTED, text)
        for pattern, replacement in compiled.built_in:
            text = pattern.sub(replacement, text)
        text = compiled.key_like.sub(_looks_like_secret_key, text)
        for pattern in self.user_patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def lines(self, lines: Iterable[str]) -> list[str]:
        """Each line redacted, judged together so a private key spread over lines is found."""
        lines = list(lines)
        joined = self.text("\n".join(lines))
        return joined.split("\n") if lines else []


@lru_cache(maxsize=8)
def redactor_for(user_patterns: str) -> Redactor:
    """The Redactor for a LOG_REDACT_PATTERNS value (compiled once per execution environment)."""
    return Redactor(compile_patterns(user_patterns))
