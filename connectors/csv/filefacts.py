"""What a file is before we parse it: its hash, its encoding, or why it is not text.

One streaming pass hashes the whole file (the resume cursor names the file by content)
and validates UTF-8 on the way, so the choice between UTF-8 and Windows-1252 is made on
every byte, not on a sample that a late "é" would contradict.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path

from blippsync.errors import InputError

CHUNK_BYTES = 1 << 20
SAMPLE_BYTES = 64 * 1024
MAX_CONTROL_RATIO = 0.01  # C0 controls (other than tab/CR/LF) in a text sample
SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?); save it as CSV first"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls); save it as CSV first"),
    (b"%PDF", "a PDF document, not CSV"),
    (b"\x89PNG", "a PNG image, not CSV"),
    (b"\xff\xd8\xff", "a JPEG image, not CSV"),
)
CP1252_LENIENT = "blippsync-cp1252"


def _undefined_as_latin1(err: UnicodeError) -> tuple[str, int]:
    """cp1252 leaves five bytes undefined; Windows maps them to the same code point."""
    assert isinstance(err, UnicodeDecodeError)
    return chr(err.object[err.start]), err.start + 1


codecs.register_error(CP1252_LENIENT, _undefined_as_latin1)


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    encoding: str  # a Python codec name for open()
    errors: str  # the decode error handler for open()
    size_bytes: int


def inspect_file(path: Path) -> FileFacts:
    """Hash and classify `path`; raise InputError when it is missing, empty or not text."""
    name = path.name
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file ({path})") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror})") from None
    digest = hashlib.sha256()
    size = 0
    with handle:
        head = handle.read(SAMPLE_BYTES)
        _reject_binary(name, head)
        utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        decoder = codecs.getincrementaldecoder("utf-16" if utf16 else "utf-8")()
        valid = True
        chunk = head
        while chunk:
            digest.update(chunk)
            size += len(chunk)
            if not utf16 and b"\x00" in chunk:
                raise InputError(f"{name}: contains NUL bytes at offset about {size}: "
                                 "not a text file")
            if valid:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    valid = False
            chunk = handle.read(CHUNK_BYTES)
        if valid:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                valid = False
    if not head.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe\x00"):
        raise InputError(f"{name}: the file is empty")
    if utf16:
        if not valid:
            raise InputError(f"{name}: starts with a UTF-16 byte order mark but is not "
                             "valid UTF-16")
        return FileFacts(digest.hexdigest(), "utf-16", "strict", size)
    if valid:
        return FileFacts(digest.hexdigest(), "utf-8-sig", "strict", size)
    return FileFacts(digest.hexdigest(), "cp1252", CP1252_LENIENT, size)


def _reject_binary(name: str, head: bytes) -> None:
    for magic, what in SIGNATURES:
        if head.startswith(magic):
            raise InputError(f"{name}: is {what}")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return
    if b"\x00" in head:
        raise InputError(f"{name}: contains NUL bytes: not a text file")
    controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13))
    if head and controls / len(head) > MAX_CONTROL_RATIO:
        raise InputError(f"{name}: contains control characters: not a text file")
