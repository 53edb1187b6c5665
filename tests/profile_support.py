"""What the profile editor's tests share: a configuration with profile and subscriber
directories, a member who follows a profile, and the alerts a notify step enqueued."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracker.config import Settings, load_config
from tracker.pipeline import notify_step
from tracker.store.db import deliveries_table, subscribers_table


def settings_in(directory: Path) -> Settings:
    """Settings whose profiles and subscribers are YAML directories under ``directory``."""
    for name in ("profiles", "subscribers"):
        (directory / name).mkdir(parents=True, exist_ok=True)
    config = directory / "callwatch.toml"
    config.write_text('[profiles]\ndirectory = "profiles"\n[subscribers]\ndirectory = "subscribers"\n',
                      encoding="utf-8")
    return load_config(config, environ={})


def follow(settings: Settings, member: str, profile: str, tenant: str) -> None:
    """A member of ``tenant`` who follows ``profile`` by email, instantly (a subscriber file)."""
    path = Path(settings.subscribers.directory) / f"{member}.yaml"
    path.write_text(f"name: {member}\ntenant: {tenant}\nchannels:\n  email: {member}@example.org\n"
                    f"subscriptions:\n  - profile: {profile}\n    mode: instant\n", encoding="utf-8")


def cycle_alerts(settings: Settings, engine: Engine, now: datetime, member: str) -> set[str]:
    """Run the notify step (as a cycle does); the ids of the calls alerted to ``member``."""
    notify_step(settings, engine, now, ["email"])
    with engine.connect() as connection:
        return set(connection.execute(
            sa.select(deliveries_table.c.call_id)
            .join(subscribers_table, subscribers_table.c.id == deliveries_table.c.subscriber_id)
            .where(subscribers_table.c.name == member, deliveries_table.c.kind == "alert")
        ).scalars())
