"""Progress bars: drawn on a terminal, silent in a log."""

from __future__ import annotations

import io

from vitzoo.progress import is_terminal, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_drawn_on_a_terminal():
    stream = _Terminal()
    with progress_bar(total=3, desc="epoch", file=stream) as bar:
        for _ in range(3):
            bar.update(1)
    assert is_terminal(stream)
    assert "epoch" in stream.getvalue() and "\r" in stream.getvalue()


def test_bar_silent_in_a_log_file_and_when_disabled():
    log = io.StringIO()
    with progress_bar(total=3, desc="epoch", file=log) as bar:
        bar.update(3)
        bar.set_postfix(loss="0.1")
    assert not is_terminal(log)
    assert log.getvalue() == ""
    stream = _Terminal()
    assert list(progress_bar(range(2), enabled=False, file=stream)) == [0, 1]
    assert stream.getvalue() == ""
