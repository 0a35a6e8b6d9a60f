"""CSV records with the physical line each one starts on, surviving malformed quoting.

`csv.reader` keeps a quoted cell open across newlines, so a record may span lines; its
`line_num` counts physical lines read, which gives the start line of the next record.
Quoting errors (a quote never closed, text after a closing quote) are reported at the
record's first line and reading resumes on the line after it, so one broken row does
not swallow the rest of the file.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from connectors.csv.filefacts import FileFacts

DELIMITERS = (",", ";", "\t")
# csv's default cell limit (128 KiB) turns a long pasted note into a "never closed quote";
# a cell is read whole up to this size, and a mapped one that long is set aside later
MAX_CELL_BYTES = 64 << 20
csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL_BYTES))
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


@dataclass(frozen=True)
class Malformed:
    reason: str


def read_records(path: Path, facts: FileFacts, delimiter: str,
                 after_line: int = 0
                 ) -> Generator[tuple[int, list[str] | Malformed, int], None, None]:
    """Yield (start line, cells or Malformed, last line consumed) for each record after
    physical line `after_line` (1-based lines; 0 reads from the top)."""
    while True:
        with path.open(encoding=facts.encoding, errors=facts.errors, newline="") as text:
            deque(islice(text, after_line), maxlen=0)
            reader = csv.reader(text, delimiter=delimiter, strict=True)
            done = after_line
            try:
                for cells in reader:
                    end = after_line + reader.line_num
                    yield done + 1, cells, end
                    done = end
            except csv.Error as exc:
                spans_lines = after_line + reader.line_num > done + 1
                yield done + 1, Malformed(_explain(str(exc), spans_lines)), done + 1
                after_line = done + 1
                continue
            return


def _explain(message: str, spans_lines: bool) -> str:
    """A quote opened and never closed shows up wherever the next quote lands (often a
    stray error lines later), so an error past the record's first line is blamed on it."""
    if spans_lines or "unexpected end of data" in message or "field larger" in message:
        return "a quoted cell starting on this line is never closed; the line was skipped"
    if "expected after" in message:
        return "text after a closing quote (write a quote inside a quoted cell as \"\"); " \
               "the line was skipped"
    return f"malformed CSV ({message}); the line was skipped"


def sniff_delimiters(path: Path, facts: FileFacts, lines: int = 10) -> tuple[str, ...]:
    """Candidate delimiters, most likely first, by their count outside quotes on the
    first non-empty line (a title line with none of them defers to the next lines)."""
    with path.open(encoding=facts.encoding, errors=facts.errors, newline="") as text:
        for line in islice(text, lines):
            counts = _count_outside_quotes(line)
            if any(counts.values()):
                return tuple(sorted(DELIMITERS, key=lambda d: -counts[d]))
    return DELIMITERS


def _count_outside_quotes(line: str) -> dict[str, int]:
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    return counts


def excel_sep_line(path: Path, facts: FileFacts) -> str | None:
    """Excel's `sep=;` first line names the delimiter (and is not the header)."""
    with path.open(encoding=facts.encoding, errors=facts.errors, newline="") as text:
        first = text.readline().strip()
    if len(first) == 5 and first.lower().startswith("sep=") and first[4] in DELIMITERS:
        return first[4]
    return None
