"""An upload's multipart/form-data body, parsed as it arrives: the file goes to a temporary file and is
hashed on the way, so no upload is ever held in memory whole.

``write`` and ``close`` block (file writes, hashing): the handler runs them on a thread, one piece
after another, and Tornado reads the next piece of the body only when the previous one is done.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

MAX_FIELD = 64 * 1024  # a form field other than the file (type, subfolder, overwrite, original_ref)
MAX_PARTS = 16


class BadForm(ValueError):
    """The body is not the multipart form it claims to be (or a field is too long)."""


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a Content-Type header; BadForm when it is not multipart/form-data."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise BadForm("the body must be multipart/form-data with a boundary")
    return boundary


class IncomingUpload:
    """Receives one form: small fields in memory, the file field on disk with its sha256 and size."""

    def __init__(self, content_type: str | None, folder: Path, file_field: str = "image"):
        self.folder = folder
        self.file_field = file_field
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.path: Path | None = None
        self.size = 0
        self._hash = hashlib.sha256()
        self._handle = None
        self._parts = 0
        self._ended = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._target: str | None = None  # "file", a field name, or None (ignored part)
        self._value = bytearray()
        self._parser = MultipartParser(boundary_of(content_type), {
            "on_part_begin": self._part_begin, "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end})

    @property
    def sha256(self) -> str:
        """Hex digest of the file's bytes."""
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        """Parse the next piece of the body (blocking: run it on a thread)."""
        try:
            self._parser.write(data)
        except BadForm:
            raise
        except Exception as exc:  # python-multipart's own parse errors
            raise BadForm(f"the multipart body is malformed: {exc}") from None

    def close(self) -> None:
        """The body has ended: BadForm unless the form was complete."""
        self._close_file()
        if not self._ended:
            raise BadForm("the multipart body ended early")

    def discard(self) -> None:
        """Remove the temporary file (the upload was refused, failed, or was moved already)."""
        self._close_file()
        if self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self.path = None

    # ----- parser callbacks ---------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise BadForm(f"the form has more than {MAX_PARTS} parts")
        self._headers, self._target = {}, None
        self._value = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field, self._header_value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if name == self.file_field and filename is not None and self.filename is None:
            self.filename = filename.decode("utf-8", "replace")
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / f"incoming-{uuid.uuid4().hex}.part"
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            self._handle = os.fdopen(fd, "wb")
            self._target = "file"
        elif name and name not in self.fields and filename is None:
            self._target = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._target == "file":
            piece = data[start:end]
            self._handle.write(piece)
            self._hash.update(piece)
            self.size += len(piece)
        elif self._target is not None:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD:
                raise BadForm(f"form field {self._target!r} is longer than {MAX_FIELD} bytes")

    def _part_end(self) -> None:
        if self._target not in (None, "file"):
            self.fields[self._target] = bytes(self._value).decode("utf-8", "replace")
        self._target = None

    def _end(self) -> None:
        self._ended = True

    def _close_file(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
