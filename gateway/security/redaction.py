"""Secrets never reach a log line: a filter on every record removes tokens, passwords and auth headers.

The filter sits on the handlers (not on loggers), so it sees every record, whichever logger made it
and whatever library formatted it, including the text of a traceback: a failed request whose URL
carried ``?api_key=`` must not leave the key in the log.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"

# key=value pairs in query strings, form bodies and log text whose value is a secret.
_QUERY = re.compile(r"(?i)((?:api_key|token|access_token|admin_token|password|passwd|secret|auth)=)[^&\s'\"]+")
# Authorization / Cookie header values, as Tornado, curl or a repr of a headers dict prints them.
_HEADER = re.compile(r"(?i)((?:authorization|proxy-authorization|cookie|set-cookie|x-api-key)['\"]?\s*[:=]\s*['\"]?)"
                     r"[^'\"\r\n,}]+")
# "Bearer <token>" / "Basic <base64>" in text; a token looks like one (a digit or =+/_- in it), so that
# words such as "basic authentication" stay readable. Configured secrets are masked whatever they look like.
_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+(?=[A-Za-z]*[0-9=+/_-])[A-Za-z0-9._~+/=-]{6,}")
# user:password@ in URLs.
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@/\s]+@")

_known: set[str] = set()
_known_lock = threading.Lock()


def add_secrets(*values: str | None) -> None:
    """Remember secret values (tokens, passwords) so any text that contains them is masked."""
    with _known_lock:
        _known.update(v for v in values if isinstance(v, str) and len(v) >= 6)  # shorter: too many false hits


def redact(text: str) -> str:
    """The text with every secret it contains replaced by ***."""
    if not text:
        return text
    text = _QUERY.sub(r"\1" + MASK, text)
    text = _HEADER.sub(r"\1" + MASK, text)
    text = _SCHEME.sub(r"\1 " + MASK, text)
    text = _USERINFO.sub(r"\1" + MASK + "@", text)
    for secret in _known:  # a copy is not needed: the set only grows, and iteration is under the GIL
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record into one redacted message (arguments and traceback text included)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be shown
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        if record.exc_info:
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.redacted = True
        return True
