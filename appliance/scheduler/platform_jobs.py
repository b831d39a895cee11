"""Platform jobs: an allowlist of internal actions a cron job may name. Never a shell.

Actions are coroutines registered by name. The scheduler registers ``cleanup_runs`` itself;
other roles register theirs from their ``setup`` (for example the backups role:
``register_action("backup_project", backup_project, needs_project=True)``). A job naming an
action that is not registered is refused at creation time (400, field ``action``); a job whose
action disappeared later (its role is disabled on this node) fails each run with a clear error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.control.store import ControlPlane
from appliance.errors import BadRequest

MAX_ARGS_BYTES = 4096
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class ActionContext:
    """What an action gets to work with: the control plane, the job and its arguments."""

    store: ControlPlane
    job_id: str
    project_id: str | None
    args: Mapping[str, Any]
    now: datetime
    run_history_days: int


# An action returns a short human-readable summary for the run's log excerpt (or None) and
# raises to fail the run; the exception's text becomes the run's error_text.
ActionFn = Callable[[ActionContext], Awaitable[str | None]]


@dataclass(frozen=True)
class Action:
    name: str
    fn: ActionFn
    needs_project: bool = False
    description: str = ""


_ACTIONS: dict[str, Action] = {}


def register_action(
    name: str, fn: ActionFn, *, needs_project: bool = False, description: str = "", replace: bool = False
) -> None:
    """Add an action to the allowlist. Registering the same name twice is an error unless ``replace``."""
    if not _NAME.match(name):
        raise ValueError(f"action name {name!r} must be lowercase letters, digits and underscores")
    if name in _ACTIONS and not replace and _ACTIONS[name].fn is not fn:
        raise ValueError(f"platform action {name!r} is already registered")
    _ACTIONS[name] = Action(name, fn, needs_project, description)


def unregister_action(name: str) -> None:
    """Remove an action (a role shutting down, or a test). Idempotent."""
    _ACTIONS.pop(name, None)


def available_actions() -> list[Action]:
    return sorted(_ACTIONS.values(), key=lambda a: a.name)


def get_action(name: str) -> Action | None:
    return _ACTIONS.get(name)


def validate_action(name: Any, args: Any, project_id: str | None) -> tuple[str, dict[str, Any]]:
    """Check a platform job's ``action`` and ``action_args``; BadRequest names the field."""
    if not isinstance(name, str) or not name:
        raise BadRequest("action is required for a platform job", code="invalid_value", details={"field": "action"})
    action = _ACTIONS.get(name)
    if action is None:
        known = ", ".join(a.name for a in available_actions()) or "none"
        raise BadRequest(
            f"unknown platform action {name!r}; available on this node: {known}",
            code="unknown_action",
            details={"field": "action"},
        )
    if action.needs_project and project_id is None:
        raise BadRequest(
            f"platform action {name!r} needs a project_id", code="invalid_value", details={"field": "project_id"}
        )
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise BadRequest("action_args must be an object", code="invalid_value", details={"field": "action_args"})
    if len(json.dumps(args)) > MAX_ARGS_BYTES:
        raise BadRequest(
            f"action_args is larger than {MAX_ARGS_BYTES} bytes", code="invalid_value", details={"field": "action_args"}
        )
    return name, args


# -- built-in actions -------------------------------------------------------------------------


async def prune_runs(store: ControlPlane, older_than: datetime) -> int:
    """Delete finished runs that started before ``older_than``; return how many went."""
    cutoff = older_than.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return await store.execute(
        "DELETE FROM cron_job_runs WHERE started_at < ? AND status != 'running'",
        (cutoff,),
    )


async def cleanup_runs(ctx: ActionContext) -> str:
    """Prune run history older than ``args.days`` (default: scheduler.run_history_days)."""
    days = ctx.args.get("days", ctx.run_history_days)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError("action_args.days must be a positive integer")
    removed = await prune_runs(ctx.store, ctx.now - timedelta(days=days))
    return f"removed {removed} run(s) older than {days} day(s)"


register_action("cleanup_runs", cleanup_runs, description="Delete cron run history older than N days.")
