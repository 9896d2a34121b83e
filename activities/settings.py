"""Deployment settings, from the environment (twelve-factor): endpoints, folders, timeouts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    rules_dir: Path = Path("rules")
    data_dir: Path = Path("data")
    notify_url: str | None = None  # POST customer and staff notices here; unset: write to the outbox
    payment_url: str | None = None  # POST remedy orders here; unset: write to the outbox
    http_timeout_seconds: float = 10.0
    rules_check_seconds: float = 2.0  # how often the rules folder is checked for edits (hot reload)

    @property
    def rule_versions_dir(self) -> Path:
        return self.data_dir / "rule-versions"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.jsonl"

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            rules_dir=Path(os.environ.get("REDRESS_RULES", "rules")),
            data_dir=Path(os.environ.get("REDRESS_DATA", "data")),
            notify_url=os.environ.get("REDRESS_NOTIFY_URL") or None,
            payment_url=os.environ.get("REDRESS_PAYMENT_URL") or None,
            http_timeout_seconds=float(os.environ.get("REDRESS_HTTP_TIMEOUT", "10")),
            rules_check_seconds=float(os.environ.get("REDRESS_RULES_CHECK_SECONDS", "2")),
        )
