"""Retention (LogStorage days, a scheduler that drops expired partitions) and the disk guard."""

from __future__ import annotations

from .disk import DiskGuard, free_bytes
from .policy import RetentionPolicy
from .scheduler import RetentionScheduler

__all__ = ["DiskGuard", "RetentionPolicy", "RetentionScheduler", "free_bytes"]
