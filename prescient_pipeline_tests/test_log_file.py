"""The log file every process appends to is moved aside, once large, when a process starts."""

import logging

import pytest

from prescient_pipeline import logs


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESCIENT_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    for logger in (logging.getLogger(), logging.getLogger("prescient_pipeline.failures")):
        for handler in [h for h in logger.handlers if getattr(h, "_prescient", False)]:
            logger.removeHandler(handler)
            handler.close()


def emit(message: str) -> None:
    logging.getLogger("prescient_pipeline.test_log_file").info(message)
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_a_full_log_becomes_log_1_and_a_small_one_is_kept(home):
    log = home / "logs" / "prescient.log"
    log.parent.mkdir(parents=True)
    with open(log, "wb") as f:
        f.truncate(logs.ROTATE_AT)  # exactly the limit (sparse: no disk used)

    assert logs.setup() == log
    emit("first line of the new file")
    old = home / "logs" / "prescient.log.1"
    assert old.stat().st_size == logs.ROTATE_AT
    assert log.read_text().count("\n") == 1 and "first line of the new file" in log.read_text()

    # The next process finds a small file: it appends, and .1 stays the old log.
    logs.setup()
    emit("second line")
    assert log.read_text().count("\n") == 2
    assert old.stat().st_size == logs.ROTATE_AT


def test_a_process_already_writing_follows_the_log_once_it_is_moved_aside(home):
    log = home / "logs" / "prescient.log"
    logs.setup()
    emit("before")  # this process now holds the file open, as a running daemon does
    with open(log, "ab") as f:
        f.truncate(logs.ROTATE_AT + 100)
    logs.rotate_if_large(log)  # what a process starting now does
    emit("after")
    assert log.read_text().count("\n") == 1 and "after" in log.read_text()
