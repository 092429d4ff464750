"""A worker's HTTP/1.1 answer read with httptools (llhttp, the parser under uvicorn and Node.js).

The parser checks the framing (status line, Content-Length digits, chunk sizes, trailers) the way a
well-kept server library does; this module only adds bounds, because a worker may answer anything:
a head of at most MAX_HEAD bytes and MAX_HEADERS lines, no more than MAX_HEAD bytes in a row that
move the answer on by nothing (an endless header, trailer or chunk extension), and whole bodies of
at most the caller's limit. Body bytes are collected as they are parsed; a caller that only wants
the head (a download about to be spliced) takes what came with it and leaves the rest on the socket.
"""

from __future__ import annotations

import httptools
from tornado.httputil import HTTPHeaders

MAX_HEAD = 64 * 1024
MAX_HEADERS = 100  # header lines plus trailer lines


class BadAnswer(ValueError):
    """The bytes are not an acceptable HTTP/1.1 answer (malformed, or over a bound)."""


class AnswerParser:
    """Feed it the bytes of one answer; it knows the status, the headers and when the answer ends."""

    def __init__(self, max_body: int):
        self.max_body = max_body
        self.status = 0
        self.version = ""
        self.keep_alive = False
        self.headers = HTTPHeaders()
        self.head_done = False
        self.complete = False
        self.extra = False  # bytes came after the end of the answer (the connection cannot be reused)
        self.body = bytearray()
        self._lines = 0
        self._head_bytes = 0
        self._idle_bytes = 0  # bytes fed since the parser last reported anything
        self._moved = False
        self._parser = httptools.HttpResponseParser(self)

    # ----- feeding ---------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Parse more bytes; BadAnswer when they are malformed or cross a bound."""
        if self.complete:
            self.extra = self.extra or bool(data)
            return
        self._moved = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise BadAnswer("the worker switched protocols") from None
        except httptools.HttpParserError as exc:
            if self.complete:  # the answer ended well; what follows it is not ours to judge
                self.extra = True
                return
            if isinstance(exc.__context__, BadAnswer):  # one of the bounds below, raised in a callback
                raise exc.__context__ from None
            raise BadAnswer(f"malformed answer: {exc}") from None
        if not self.head_done:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                raise BadAnswer(f"the answer head is longer than {MAX_HEAD} bytes")
        self._idle_bytes = 0 if self._moved else self._idle_bytes + len(data)
        if self._idle_bytes > MAX_HEAD:
            raise BadAnswer(f"more than {MAX_HEAD} bytes of the answer carried nothing (an endless header, "
                            "trailer or chunk extension)")

    def take_body(self) -> bytes:
        """The body bytes parsed so far (they are forgotten here)."""
        data, self.body = bytes(self.body), bytearray()
        return data

    # ----- httptools callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._moved = True
        self._lines += 1
        if self._lines > MAX_HEADERS:
            raise BadAnswer(f"the answer has more than {MAX_HEADERS} header lines")
        if not self.head_done:
            self.headers.add(name.decode("latin-1"), value.decode("latin-1").strip())

    def on_headers_complete(self) -> None:
        self._moved = True
        self.head_done = True
        self.status = self._parser.get_status_code()
        self.version = self._parser.get_http_version()
        self.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._moved = True
        self.body += body
        if len(self.body) > self.max_body:
            raise BadAnswer("the worker's answer is too long to be read whole")

    def on_chunk_header(self) -> None:
        self._moved = True

    def on_chunk_complete(self) -> None:
        self._moved = True

    def on_message_complete(self) -> None:
        self._moved = True
        if 100 <= self.status < 200 and self.status != 101:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self.head_done, self.headers, self.status, self._head_bytes = False, HTTPHeaders(), 0, 0
            return
        self.complete = True
