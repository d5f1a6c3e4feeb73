"""Operator calls on dead letters and schedules, mixed into :class:`Client`.

Dead letters (``/v1/dead-letters``) are steps that exhausted their retries,
listed with their last errors and retried or resolved many at once, by ids
or by a filter. Schedules (``/v1/schedules``) create tasks of a template on
a cron or an interval (docs/schedules.md). Each method maps to one endpoint
of docs/api.md and returns the server's JSON. Reads are retried like the
client's other reads; calls that change something are sent once, since a
lost reply could otherwise act twice. This module never holds state of its
own: everything goes through the client's ``_call``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union, cast

from .transport import quote_path

__all__ = ["Operations"]

Time = Union[str, datetime]


def _time(value: Optional[Time]) -> Optional[str]:
    """An RFC 3339 string of ``value`` (a string is passed on as it is)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: RFC 3339 times need one")
    return value.isoformat()


def _selection(
    ids: Optional[Sequence[str]], filter: Optional[Mapping[str, Any]], limit: Optional[int]
) -> Dict[str, Any]:
    if (ids is None) == (filter is None):
        raise ValueError("name either ids or filter (not both, not neither)")
    body: Dict[str, Any] = {}
    if ids is not None:
        body["ids"] = list(ids)
    if filter is not None:
        body["filter"] = {k: _time(v) if isinstance(v, datetime) else v for k, v in filter.items() if v is not None}
    if limit is not None:
        body["limit"] = limit
    return body


class Operations:
    """Dead-letter and schedule calls; :class:`Client` provides ``_call``."""

    def _call(self, method: str, path: str, body: Any = None, *, retry: bool = False, **kw: Any) -> Any:
        raise NotImplementedError  # pragma: no cover

    # ---- dead letters ---------------------------------------------------

    def list_dead_letters(
        self,
        *,
        namespace: Optional[str] = None,
        template: Optional[str] = None,
        handler: Optional[str] = None,
        error_type: Optional[str] = None,
        failed_since: Optional[Time] = None,
        failed_until: Optional[Time] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Dict[str, Any]:
        """One page of dead letters, oldest first:
        ``{"dead_letters": [...], "next_cursor": ...}``; pass ``next_cursor``
        back as ``cursor`` for the next."""
        query = {
            "namespace": namespace,
            "template": template,
            "handler": handler,
            "error_type": error_type,
            "failed_since": _time(failed_since),
            "failed_until": _time(failed_until),
            "cursor": cursor,
            "limit": limit,
        }
        return cast(Dict[str, Any], self._call("GET", "/v1/dead-letters", query=query, retry=True))

    def iter_dead_letters(self, **filters: Any) -> Iterator[Dict[str, Any]]:
        """Every dead letter matching the filters of :meth:`list_dead_letters`."""
        cursor: Optional[str] = None
        while True:
            page = self.list_dead_letters(cursor=cursor, **filters)
            yield from page["dead_letters"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def retry_dead_letters(
        self,
        ids: Optional[Sequence[str]] = None,
        *,
        filter: Optional[Mapping[str, Any]] = None,
        limit: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Runs the dead letters named by ``ids``, or every one ``filter``
        selects (up to ``limit``), again with a fresh budget of attempts.
        Returns ``{"matched", "applied", "refused": [...], "more"}``."""
        body = _selection(ids, filter, limit)
        return cast(Dict[str, Any], self._call("POST", "/v1/dead-letters/retry", body))

    def resolve_dead_letters(
        self,
        ids: Optional[Sequence[str]] = None,
        *,
        filter: Optional[Mapping[str, Any]] = None,
        limit: Optional[int] = None,
        result: Any = None,
    ) -> Dict[str, Any]:
        """Marks the selected dead letters resolved, handing ``result`` to
        their dependents; answers as :meth:`retry_dead_letters`."""
        body = _selection(ids, filter, limit)
        if result is not None:
            body["result"] = result
        return cast(Dict[str, Any], self._call("POST", "/v1/dead-letters/resolve", body))

    # ---- schedules ------------------------------------------------------

    def create_schedule(self, spec: Mapping[str, Any]) -> Dict[str, Any]:
        """Creates a schedule from a ``ScheduleSpec`` (``name``, ``template``
        and one of ``cron``/``interval`` required; docs/schedules.md)."""
        return cast(Dict[str, Any], self._call("POST", "/v1/schedules", dict(spec)))

    def list_schedules(self) -> List[Dict[str, Any]]:
        """Every schedule, by name."""
        return cast(List[Dict[str, Any]], self._call("GET", "/v1/schedules", retry=True)["schedules"])

    def get_schedule(self, schedule_id: str) -> Dict[str, Any]:
        return cast(Dict[str, Any], self._call("GET", f"/v1/schedules/{quote_path(schedule_id)}", retry=True))

    def update_schedule(self, schedule_id: str, spec: Mapping[str, Any]) -> Dict[str, Any]:
        """Replaces a schedule's whole spec; its next fire is computed anew."""
        path = f"/v1/schedules/{quote_path(schedule_id)}"
        return cast(Dict[str, Any], self._call("PUT", path, dict(spec)))

    def delete_schedule(self, schedule_id: str) -> None:
        """Deletes a schedule and its fires; the tasks it created stay."""
        self._call("DELETE", f"/v1/schedules/{quote_path(schedule_id)}")

    def pause_schedule(self, schedule_id: str) -> Dict[str, Any]:
        return cast(Dict[str, Any], self._call("POST", f"/v1/schedules/{quote_path(schedule_id)}/pause"))

    def resume_schedule(self, schedule_id: str) -> Dict[str, Any]:
        """Resumes a paused schedule: it fires next at its first time after now."""
        return cast(Dict[str, Any], self._call("POST", f"/v1/schedules/{quote_path(schedule_id)}/resume"))

    def trigger_schedule(self, schedule_id: str) -> Dict[str, Any]:
        """Fires a schedule now, whatever its overlap policy:
        ``{"fire": ScheduleFire, "task": Task | None}``."""
        return cast(Dict[str, Any], self._call("POST", f"/v1/schedules/{quote_path(schedule_id)}/trigger"))

    def backfill_schedule(self, schedule_id: str, start: Time, end: Time) -> Dict[str, Any]:
        """Fires every time of ``[start, end)`` that has no fire yet:
        ``{"fires": [...], "already_fired": [...]}``."""
        body = {"start": _time(start), "end": _time(end)}
        path = f"/v1/schedules/{quote_path(schedule_id)}/backfill"
        return cast(Dict[str, Any], self._call("POST", path, body))

    def schedule_fires(self, schedule_id: str, limit: Optional[int] = None) -> List[Dict[str, Any]]:
        """A schedule's fires, newest fire time first (``limit``: the
        server's default, 50, when None)."""
        path = f"/v1/schedules/{quote_path(schedule_id)}/fires"
        return cast(List[Dict[str, Any]], self._call("GET", path, query={"limit": limit}, retry=True)["fires"])
