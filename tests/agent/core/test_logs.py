"""Log lines: one record per line, whatever a client or a file name puts in a field."""

from __future__ import annotations

import io
import logging

from agent.core.logs import setup_logging


def _line(**extra: object) -> str:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    logging.getLogger("t").info("msg with\nnewline", extra={"event": "e", **extra})
    return stream.getvalue()


def test_control_characters_are_escaped_and_records_stay_one_line() -> None:
    text = _line(key="a\x00b\rc\x1b[31md\x85e\tf", plain="simple", path="C:\\x")
    assert text.count("\n") == 1 and text.endswith("\n")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text[:-1])
    assert 'key="a\\x00b\\rc\\x1b[31md\\x85e\\tf"' in text
    assert "plain=simple" in text
    assert 'msg="msg with\\nnewline"' in text
    assert 'path="C:\\\\x"' in text
