"""Schedules through the client: create, read, list, update, pause and
resume, trigger, backfill and the fires, delete; a bad spec is refused
naming its field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conftest import register_examples
from tasker import ApiError, Client

SPEC = {
    "name": "py-hourly",
    "namespace": "examples",
    "template": "linear",
    "context": {"even_number": 2},
    "cron": "0 * * * *",
    "overlap": "allow",
}


@pytest.fixture(scope="module", autouse=True)
def templates(client: Client) -> None:
    register_examples(client)


def test_a_schedules_life(client: Client) -> None:
    made = client.create_schedule(SPEC)
    sid = made["id"]
    assert made["name"] == "py-hourly" and not made["paused"] and len(made["upcoming"]) == 5
    assert client.get_schedule(sid)["id"] == sid
    assert [s["name"] for s in client.list_schedules()] == ["py-hourly"]

    paused = client.pause_schedule(sid)
    assert paused["paused"] and paused["upcoming"] == []
    assert not client.resume_schedule(sid)["paused"]

    updated = client.update_schedule(sid, dict(SPEC, context={"even_number": 4}))
    assert updated["context"] == {"even_number": 4}

    triggered = client.trigger_schedule(sid)
    task = triggered["task"]
    assert task is not None and f"schedule:{SPEC['name']}" in task["tags"]
    assert client.get_task(task["id"])["context"] == {"even_number": 4}

    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start, end = hour - timedelta(hours=3), hour - timedelta(hours=1) + timedelta(seconds=1)
    backfilled = client.backfill_schedule(sid, start, end)
    assert len(backfilled["fires"]) == 3 and backfilled["already_fired"] == []
    again = client.backfill_schedule(sid, start.isoformat(), end.isoformat())
    assert again["fires"] == [] and len(again["already_fired"]) == 3

    fires = client.schedule_fires(sid)
    assert len(fires) == 4
    assert len(client.schedule_fires(sid, limit=2)) == 2

    client.delete_schedule(sid)
    with pytest.raises(ApiError) as missing:
        client.get_schedule(sid)
    assert missing.value.status == 404
    assert client.get_task(task["id"])["id"] == task["id"]  # its tasks stay


def test_a_bad_spec_is_refused_naming_its_field(client: Client) -> None:
    with pytest.raises(ApiError) as refused:
        client.create_schedule(dict(SPEC, name="py-bad", cron="not a cron"))
    assert (refused.value.status, refused.value.code) == (422, "schedule_invalid")
    assert refused.value.details["field"] == "cron"
    with pytest.raises(ValueError):
        client.backfill_schedule("00000000-0000-7000-8000-000000000000", datetime(2026, 1, 1), datetime(2026, 1, 2))
