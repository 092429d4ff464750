"""The log filter masks every kind of secret the gateway may meet, in messages, arguments and tracebacks."""

from __future__ import annotations

import logging

from gateway.security.redaction import RedactingFilter, add_secrets, redact


def test_secrets_are_masked_wherever_they_appear():
    add_secrets("configured-key-77", "short")
    cases = {
        "GET /view?filename=a.png&api_key=abc123&type=output": "GET /view?filename=a.png&api_key=***&type=output",
        "/?token=T0ken-value": "/?token=***",
        "Authorization: Bearer abc.def-123": "Authorization: ***",
        "{'Authorization': 'Basic dXNlcjpwYXNz', 'Host': 'x'}": "{'Authorization': '***', 'Host': 'x'}",
        "Cookie: gateway_token_8000=xyz123": "Cookie: ***",
        "url http://render:pw-42@10.0.0.5:8188/": "url http://render:***@10.0.0.5:8188/",
        "sent Bearer k9-token-abcdef to it": "sent Bearer *** to it",
        "the key configured-key-77 was used": "the key *** was used",
        "uses basic authentication and a short word": "uses basic authentication and a short word",
    }
    for text, expected in cases.items():
        assert redact(text) == expected, text


def test_the_filter_rewrites_arguments_and_traceback_text():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("/api?api_key=leak-123456",), None)
    try:
        raise ValueError("while fetching http://u:leak-pw@h/x?token=leak-token-1")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "leak" not in text and text.count("***") >= 3 and "ValueError" in text
