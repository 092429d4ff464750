"""Tokens: compared as bytes in constant time, and the admin token a network-bound gateway creates."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from .files import write_private

ADMIN_TOKEN_FILE = "admin_token"
MAX_TOKEN_LENGTH = 512


def well_formed(token: str | None) -> bool:
    """True for a token that can be one: printable ASCII without spaces, not too long."""
    return bool(token) and len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isprintable() \
        and " " not in token


def token_matches(token: str | None, allowed) -> bool:
    """Constant-time comparison as bytes against each allowed token; malformed tokens never match."""
    if not well_formed(token):
        return False
    given = token.encode("ascii")
    found = False
    for candidate in allowed:
        if candidate and hmac.compare_digest(given, candidate.encode("utf-8")):
            found = True  # keep comparing: the time does not say which token matched
    return found


def load_or_create_admin_token(data_dir: Path) -> tuple[str, bool]:
    """(token, created): the token stored in the data folder, made (mode 0600) when there is none."""
    path = data_dir / ADMIN_TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
        if well_formed(token):
            return token, False
    except (OSError, UnicodeDecodeError):
        pass
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token, True
