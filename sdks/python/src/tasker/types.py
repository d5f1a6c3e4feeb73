"""The shapes of the server's JSON, as ``TypedDict``s for type checkers.

Values are the decoded JSON itself (plain dicts); timestamps are RFC 3339
strings and ids UUID strings, exactly as the server sends them
(docs/api.md).
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict

__all__ = [
    "TaskState",
    "StepState",
    "Task",
    "Step",
    "StepError",
    "Transition",
    "Lease",
    "ClaimedStep",
    "TaskPage",
    "HistoryPage",
    "TERMINAL_TASK_STATES",
]

TaskState = Literal["running", "complete", "failed", "cancelled"]
StepState = Literal[
    "pending",
    "ready",
    "running",
    "retrying",
    "complete",
    "failed",
    "cancelled",
    "resolved",
    "skipped",
]

#: Task states in which nothing runs any more (``failed`` may be reopened by
#: a manual retry or resolve).
TERMINAL_TASK_STATES = frozenset({"complete", "failed", "cancelled"})


class _TaskRequired(TypedDict):
    id: str
    namespace: str
    template_id: str
    template_name: str
    template_version: str
    state: TaskState
    idempotency_key: Optional[str]
    tags: List[str]
    created_at: str
    updated_at: str
    finished_at: Optional[str]
    deadline_at: Optional[str]


class Task(_TaskRequired, total=False):
    #: Absent from a page of :meth:`Client.list_tasks` unless it was asked
    #: for with ``include="context"``.
    context: Dict[str, Any]


class StepError(TypedDict):
    error_type: str
    message: str
    details: Any
    retryable: bool


class Step(TypedDict):
    id: str
    task_id: str
    name: str
    handler: str
    state: StepState
    attempt: int
    max_attempts: int
    depends_on: List[str]
    worker_id: Optional[str]
    lease_expires_at: Optional[str]
    retry_at: Optional[str]
    result: Any
    error: Optional[StepError]
    started_at: Optional[str]
    finished_at: Optional[str]


class Transition(TypedDict):
    id: int
    task_id: str
    step_id: Optional[str]
    step_name: Optional[str]
    from_state: Optional[str]
    to_state: str
    attempt: Optional[int]
    worker_id: Optional[str]
    node_id: Optional[str]
    reason: Optional[str]
    at: str


class TaskPage(TypedDict):
    tasks: List[Task]
    next_cursor: Optional[str]


class HistoryPage(TypedDict):
    transitions: List[Transition]
    next_cursor: Optional[str]


class Lease(TypedDict):
    step_id: str
    attempt: int
    token: str


class _ClaimedStepRequired(TypedDict):
    lease: Lease
    lease_expires_at: str
    task_id: str
    namespace: str
    template_name: str
    template_version: str
    step_name: str
    handler: str
    config: Any
    max_attempts: int
    timeout_ms: int
    context: Dict[str, Any]
    parent_results: Dict[str, Any]


class ClaimedStep(_ClaimedStepRequired, total=False):
    #: Parent name -> step id of parent results left out of the claim for
    #: their size; the worker runtime fetches them before the handler runs.
    parent_result_refs: Dict[str, str]
