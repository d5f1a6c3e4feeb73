"""The parts without a server: backoff, errors, handler registration, the
JSON log lines, loading an application, command-line errors, shortening
failure texts to the protocol's limits."""

from __future__ import annotations

import json
import logging

import pytest

from tasker import ApiError, Backoff, PermanentError, RetryableError, Worker
from tasker.cli import load_app, main
from tasker.limits import DEFAULT_ERROR_TYPE, fit_error_type, fit_message, truncate_utf8
from tasker.log_format import JsonFormatter
from tasker.transport import Transport


def test_backoff_doubles_from_its_start_to_its_cap_and_jitter_only_shortens() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(1, 9)] == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert backoff.delay(0) == 0.2 and backoff.delay(10**6) == 10.0
    assert backoff.next_delay(3, unit=0.0) == pytest.approx(0.8)
    assert backoff.next_delay(3, unit=1.0) == pytest.approx(0.6)
    assert backoff.next_delay(1, retry_after=1.0, unit=0.5) == 1.0  # never sooner than Retry-After


def test_api_errors_say_whether_to_retry_or_stop() -> None:
    assert ApiError(503, "unavailable", "db down").temporary
    assert not ApiError(400, "invalid", "bad").temporary
    assert ApiError(409, "lease_expired", "late").lease_lost
    assert not ApiError(409, "idempotency_conflict", "other task").lease_lost
    assert RetryableError("x").retryable and not PermanentError("x").retryable
    assert PermanentError("x", error_type="invalid_order").error_type == "invalid_order"


def test_a_worker_declares_the_handlers_of_the_namespaces_it_polls() -> None:
    worker = Worker()

    @worker.handler("orders", "orders.charge")
    def charge(ctx):  # type: ignore[no-untyped-def]
        return None

    @worker.handler("billing", "billing.invoice")
    async def invoice(ctx):  # type: ignore[no-untyped-def]
        return None

    assert worker.active_namespaces == ["billing", "orders"]
    assert worker.handler_names == ["billing.invoice", "orders.charge"]
    assert worker._lookup("billing.invoice").is_async and not worker._lookup("orders.charge").is_async
    worker.namespaces = ["orders"]
    assert worker.handler_names == ["orders.charge"] and worker._lookup("billing.invoice") is None
    with pytest.raises(ValueError, match="registered twice"):
        worker.add_handler("orders", "orders.charge", charge)
    worker.namespaces = ["nowhere"]
    with pytest.raises(ValueError, match="no handlers"):
        worker.run("http://127.0.0.1:1")


def test_log_lines_are_json_with_the_records_fields() -> None:
    record = logging.LogRecord("tasker.worker", logging.WARNING, "f", 1, "stale report refused (%s)", ("lease_mismatch",), None)
    record.event = "stale_report"
    record.step_id = "0190"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "stale report refused (lease_mismatch)"
    assert (line["level"], line["event"], line["step_id"]) == ("warning", "stale_report", "0190")
    assert line["ts"].endswith("Z")


def test_the_server_url_must_be_http_or_https() -> None:
    with pytest.raises(ValueError, match="must look like"):
        Transport("127.0.0.1:8080")
    assert Transport("https://tasker.example/base/").base_url == "https://tasker.example/base"


def test_loading_an_application(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    app = load_app("examples.example_worker:app")
    assert "examples.linear.step_1" in app.handler_names and "orders.ship_order" in app.handler_names
    assert load_app("examples.example_worker") is app
    with pytest.raises(TypeError, match="not a tasker.Worker"):
        load_app("examples.example_worker:I64")
    assert main(["examples.example_worker:nothing"]) == 2
    assert "cannot load" in capsys.readouterr().err
    assert main(["examples.example_worker:app", "--concurrency", "0"]) == 2
    assert main(["examples.example_worker:app", "--server", "nonsense"]) == 2
    assert "must look like" in capsys.readouterr().err
    assert main(["examples.example_worker:app", "--namespace", "nowhere"]) == 2
    assert "no handlers in namespaces nowhere" in capsys.readouterr().err
    app.namespaces = None


def test_failure_texts_are_cut_on_whole_characters() -> None:
    assert truncate_utf8("abc", 10) == "abc"
    assert truncate_utf8("abc", 2) == "ab"
    assert truncate_utf8("aé", 2) == "a"  # "é" is two bytes: cut inside, it goes whole
    assert truncate_utf8("a€", 3) == "a" and truncate_utf8("a€", 4) == "a€"
    assert fit_message("m" * 5000) == "m" * 4096
    assert fit_error_type("   ") == DEFAULT_ERROR_TYPE
    assert fit_error_type(" " + "é" * 100 + " ") == "é" * 64
