"""Telegram pacing kept in the database, shared by every worker (``notifiers.telegram.pacing``)."""

from __future__ import annotations

import itertools

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifiers.telegram import Pacer, TelegramSettings
from notifiers.telegram.pacing import GLOBAL, SharedPacer, pacer_for
from tracker.store.db import pacing_table


def _slots(engine: Engine, spacing: float = 1.0) -> dict[str, float]:
    """When each chat's last message was due: its next free time less its spacing."""
    with engine.connect() as connection:
        return {row.key: row.next_at - spacing for row in connection.execute(
            sa.select(pacing_table).where(pacing_table.c.key != GLOBAL))}


def test_two_workers_share_the_overall_budget(engine: Engine) -> None:
    workers = [SharedPacer(engine), SharedPacer(engine)]
    for n, worker in zip(range(60), itertools.cycle(workers)):
        reserved, _seconds = worker.reserve_shared(str(1000 + n))
        assert reserved
    slots = sorted(_slots(engine).values())
    assert len(slots) == 60
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= 1 / 30 - 1e-4  # 30 a second overall, whichever worker sent
    assert slots[-1] - slots[0] >= 59 / 30 - 1e-4  # seconds since the epoch: float rounding


def test_a_chat_waits_a_second_and_a_group_three(engine: Engine) -> None:
    first, second = SharedPacer(engine), SharedPacer(engine)
    assert first.reserve_shared("42")[0]
    reserved, wait = second.reserve_shared("42")  # another worker, the same chat
    assert not reserved and 0.9 < wait <= 1.0
    assert first.reserve_shared("-7")[0]
    reserved, wait = second.reserve_shared("-7")
    assert not reserved and 2.9 < wait <= 3.0 + 1 / 30  # 20 a minute, spread evenly (its slot
    # came one overall slot after chat 42's)


def test_retry_after_holds_the_chat_for_every_worker(engine: Engine) -> None:
    SharedPacer(engine).hold("99", 30.0)
    reserved, wait = SharedPacer(engine).reserve_shared("99")
    assert not reserved and 29.0 < wait <= 30.0


def test_the_setting_picks_the_pacer(engine: Engine) -> None:
    auto = pacer_for(TelegramSettings(), engine)
    assert isinstance(auto, SharedPacer) == (engine.dialect.name == "postgresql")
    assert isinstance(pacer_for(TelegramSettings(pacing="database"), engine), SharedPacer)
    process = pacer_for(TelegramSettings(pacing="process"), engine)
    assert type(process) is Pacer and process.enabled
    assert not pacer_for(TelegramSettings(pacing="off"), engine).enabled
