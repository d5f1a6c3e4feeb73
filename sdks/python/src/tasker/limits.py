"""The protocol's limits on free text a request may carry (docs/api.md).

The server refuses a longer cancel reason, failure message or error type
with 400; the worker runtime shortens what it reports to fit, so that a
failure is still recorded. Lengths are bytes of UTF-8, and shortening never
cuts a character in two. This module only measures and cuts text: it never
sends anything.
"""

from __future__ import annotations

__all__ = [
    "MAX_ERROR_TYPE_LEN",
    "MAX_ERROR_MESSAGE_LEN",
    "MAX_CANCEL_REASON_LEN",
    "DEFAULT_ERROR_TYPE",
    "truncate_utf8",
    "fit_error_type",
    "fit_message",
]

#: Longest ``error_type`` of a failure, in bytes of UTF-8 (at least 1).
MAX_ERROR_TYPE_LEN = 128
#: Longest ``message`` of a failure, in bytes of UTF-8.
MAX_ERROR_MESSAGE_LEN = 4096
#: Longest ``reason`` of a cancellation, in bytes of UTF-8.
MAX_CANCEL_REASON_LEN = 1024
#: The error type reported when a handler names none (or only blanks).
DEFAULT_ERROR_TYPE = "handler_error"


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` bytes of UTF-8 on a character
    boundary."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    # Dropping the bytes of a character cut in two leaves whole characters.
    return raw[:max_bytes].decode("utf-8", "ignore")


def fit_error_type(error_type: str) -> str:
    """An error type the server accepts: trimmed, never empty, shortened."""
    trimmed = error_type.strip()
    if not trimmed:
        return DEFAULT_ERROR_TYPE
    return truncate_utf8(trimmed, MAX_ERROR_TYPE_LEN)


def fit_message(message: str) -> str:
    """A failure message the server accepts: shortened to the limit."""
    return truncate_utf8(message, MAX_ERROR_MESSAGE_LEN)
