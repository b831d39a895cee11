"""Grandfather-father-son retention as a pure function: which backups to keep.

Keep the newest good backup of each of the last ``daily`` days that have one, of the last
``weekly`` ISO weeks, and of the last ``monthly`` months; always keep the newest verified
backup and the newest good one, whatever their age. Failed backups go once they are older than
the oldest kept one (or at once when nothing is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class BackupRef:
    id: str
    created_at: datetime
    good: bool  # completed or verified
    verified: bool


@dataclass(frozen=True)
class Policy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 6


def _newest_per_period(good: Sequence[BackupRef], key: Callable[[datetime], object], count: int) -> set[str]:
    kept: set[str] = set()
    seen: set[object] = set()
    for ref in good:  # newest first
        period = key(ref.created_at)
        if period in seen:
            continue
        if len(seen) >= count:
            break
        seen.add(period)
        kept.add(ref.id)
    return kept


def to_keep(backups: Sequence[BackupRef], policy: Policy) -> set[str]:
    ordered = sorted(backups, key=lambda b: b.created_at, reverse=True)
    good = [b for b in ordered if b.good]
    keep = _newest_per_period(good, lambda t: t.date(), policy.daily)
    keep |= _newest_per_period(good, lambda t: t.isocalendar()[:2], policy.weekly)
    keep |= _newest_per_period(good, lambda t: (t.year, t.month), policy.monthly)
    newest_verified = next((b for b in good if b.verified), None)
    if newest_verified is not None:
        keep.add(newest_verified.id)
    if good:
        keep.add(good[0].id)
    oldest_kept = min((b.created_at for b in good if b.id in keep), default=None)
    for ref in ordered:
        if not ref.good and oldest_kept is not None and ref.created_at >= oldest_kept:
            keep.add(ref.id)
    return keep


def to_delete(backups: Sequence[BackupRef], policy: Policy) -> list[str]:
    keep = to_keep(backups, policy)
    return [b.id for b in backups if b.id not in keep]
