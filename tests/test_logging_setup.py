"""Logging goes through a writer thread, in order, and nothing logged at shutdown is lost."""

from __future__ import annotations

import logging

from gateway import logging_setup


def test_records_reach_the_file_in_order_and_after_stop_too(tmp_path):
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        path = logging_setup.setup_logging("INFO", tmp_path)
        log = logging.getLogger("gateway.test")
        for i in range(200):
            log.info("line %d", i)
        log.debug("not at INFO")
        logging_setup.stop_logging()  # what the gateway does at exit
        log.warning("after the writer thread stopped")
        for handler in root.handlers:
            handler.flush()
        lines = path.read_text().splitlines()
        assert [line.rsplit(" ", 1)[1] for line in lines[:200]] == [str(i) for i in range(200)]
        assert "not at INFO" not in path.read_text()
        assert lines[-1].endswith("after the writer thread stopped")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
