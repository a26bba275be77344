"""One logging approach: structlog loggers whose events reach the standard library's handlers,
and one place (`turnout serve --log-format`) that renders them and other libraries' records."""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from turnout.logs import configure, get_logger


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure() owns the root logger and structlog's configuration: put both back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


def test_an_event_reaches_the_standard_librarys_handlers_as_before(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="turnout.test")
    get_logger("turnout.test").warning("reload refused: %s", "bad file", generation=3)
    (record,) = caplog.records
    assert (record.name, record.levelname, record.getMessage()) == (
        "turnout.test",
        "WARNING",
        "reload refused: bad file",
    )
    assert record.generation == 3  # keywords ride along as the record's extra


def test_a_level_that_is_off_formats_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="turnout.test")

    class Loud:
        def __repr__(self) -> str:
            raise AssertionError("formatted although debug is off")

    get_logger("turnout.test").debug("state %r", Loud())
    assert caplog.records == []


def test_json_lines_for_turnouts_events_and_other_libraries_records_alike(restore_logging: None) -> None:
    out = io.StringIO()
    configure("info", "json", out)
    log = get_logger("turnout.sidecar")
    log.info("worker %d of %d serving on %s:%d", 0, 2, "127.0.0.1", 8080, worker=0)
    log.debug("not shown")
    logging.getLogger("aiohttp.server").error("Error handling request")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("unhandled error serving %s", "POST /v1/chat/completions")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["logger"], x["level"], x["event"]) for x in lines] == [
        ("turnout.sidecar", "info", "worker 0 of 2 serving on 127.0.0.1:8080"),
        ("aiohttp.server", "error", "Error handling request"),
        ("turnout.sidecar", "error", "unhandled error serving POST /v1/chat/completions"),
    ]
    assert lines[0]["worker"] == 0 and lines[0]["timestamp"].endswith("Z")
    assert "RuntimeError: boom" in lines[2]["exception"]


def test_console_lines_keep_the_message_then_the_fields(restore_logging: None) -> None:
    out = io.StringIO()
    configure("warning", "console", out)
    get_logger("turnout.sidecar").info("hidden")
    get_logger("turnout.sidecar").warning("draining %d request(s), up to %.1fs", 1, 30.0, active=1)
    logging.getLogger("asyncio").warning("a foreign record")
    first, second = out.getvalue().splitlines()
    assert first.endswith(" WARNING turnout.sidecar: draining 1 request(s), up to 30.0s active=1")
    assert second.endswith(" WARNING asyncio: a foreign record")


def test_an_unknown_form_or_level_is_refused(restore_logging: None) -> None:
    with pytest.raises(ValueError, match="log format 'xml': choose one of console, json"):
        configure("info", "xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log level 'loud'"):
        configure("loud", "json")


def test_serve_takes_the_form_and_hands_it_to_its_workers() -> None:
    from router.sidecar.cli import configure as add_arguments
    from router.sidecar.workers import worker_argv

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", "c.yaml", "--log-format", "json"])
    assert args.log_format == "json"
    argv = worker_argv(args)
    assert argv[argv.index("--log-format") + 1] == "json"
