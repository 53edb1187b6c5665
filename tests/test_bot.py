"""The Telegram bot: its database functions alone, then end to end through the fake Bot API.

End to end means what production does: python-telegram-bot's Application polls getUpdates
from ``tracker.demo.fakes.telegram_api``, the handlers run, replies come back as sendMessage
calls the fake records, and the database changed. Every test runs on SQLite and, when
CALLWATCH_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import telegram
from sqlalchemy.engine import Engine

from notifiers.telegram import TOKEN_ENV, Pacer, TelegramNotifier, bot
from tests.factories import make_call
from tracker.config import Settings, load_config
from tracker.delivery import operator_alerts
from tracker.delivery.outbox import sync_subscribers
from tracker.delivery.subscribers import Subscriber
from tracker.demo.fakes.telegram_api import FakeTelegram, SentMessage, parse_telegram_html
from tracker.i18n import LANGUAGES
from tracker.models import CallRecord, CallStatus, ScrapeResult
from tracker.ports import Notifier
from tracker.rules.matcher import Match
from tracker.rules.store import RulesStore
from tracker.store.calls import Store
from tracker.store.db import (
    channels_table,
    deliveries_table,
    digest_entries_table,
    subscribers_table,
    subscriptions_table,
)

REPO = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST-TOKEN"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ADMIN = 999
USER = 1001
H2 = "hydrogen-valley"
AGRI = "alentejo-agrifood"


# -- the world: calls, matches, profiles, settings -----------------------------------------

def cid(native_id: str) -> str:
    return f"ft_portal:{native_id}"


def calls() -> list[CallRecord]:
    """Calls with cut-offs in a known order; one closed, one matched only for AGRI."""
    made = [make_call(f"H2-{n:02d}", title=f"Hydrogen call {n:02d}",
                      deadlines=(datetime(2027, 1, 1, 15, tzinfo=UTC) + timedelta(days=n),))
            for n in range(12)]
    made.append(make_call("H2-TWO-STAGE", title="Two-stage <hydrogen> & friends",
                          deadlines=(datetime(2026, 12, 1, 15, tzinfo=UTC),
                                     datetime(2027, 6, 1, 15, tzinfo=UTC))))
    made.append(make_call("H2-PAST", title="Closed hydrogen call", status=CallStatus.CLOSED,
                          deadlines=(datetime(2026, 11, 30, 15, tzinfo=UTC),)))
    made.append(make_call("AGRI-01", title="Olive oil call",
                          deadlines=(datetime(2026, 11, 26, 15, tzinfo=UTC),)))
    return made


def seed(engine: Engine) -> None:
    records = calls()
    Store(engine).record_run("ft_portal", ScrapeResult(records=records), started_at=NOW, now=NOW)
    matches = [Match(AGRI if r.native_id.startswith("AGRI") else H2, r.id, 1,
                     ('keyword "hydrogen" in title',), r, None) for r in records]
    RulesStore(engine).record_matches(matches, NOW)


def rows(engine: Engine, table: sa.Table, **where: Any) -> list[Any]:
    query = sa.select(table)
    for key, value in where.items():
        query = query.where(table.c[key] == value)
    with engine.connect() as connection:
        return list(connection.execute(query.order_by(table.c[next(iter(table.c.keys()))])))


def subscriber(engine: Engine, name: str) -> Any:
    [row] = rows(engine, subscribers_table, name=name)
    return row


def follows(engine: Engine, name: str) -> dict[str, str]:
    return {r.profile: r.mode for r in rows(engine, subscriptions_table,
                                              subscriber_id=subscriber(engine, name).id)}


def file_subscriber(engine: Engine, chat: str = "1002") -> None:
    sync_subscribers(engine, [Subscriber.model_validate({
        "name": "ana", "timezone": "Europe/Madrid",
        "channels": {"telegram": chat, "email": "ana@example.org"},
        "subscriptions": [{"profile": H2, "mode": "instant"}]})], NOW)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    shutil.copytree(REPO / "config" / "profiles", tmp_path / "profiles")
    (tmp_path / "subscribers").mkdir()
    config = tmp_path / "callwatch.toml"
    config.write_text(f"""
[profiles]
directory = "{tmp_path / 'profiles'}"
[subscribers]
directory = "{tmp_path / 'subscribers'}"
[notifiers.console]
enabled = false
[notifiers.telegram]
base_url = "http://127.0.0.1:9/bot"
admin_chats = ["{ADMIN}"]
""", encoding="utf-8")
    return load_config(config, environ={})


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    seed(engine)
    return engine


PROFILES = {H2: "Hydrogen cluster", AGRI: "Agri-food cluster", "nordic-vision-ai": "Vision SME"}


# -- pure: the database functions without Telegram ------------------------------------------

def test_resolve_profile_exact_case_and_suggestions() -> None:
    assert bot.resolve_profile(H2, PROFILES) == (H2, [])
    assert bot.resolve_profile("Hydrogen-Valley", PROFILES) == (H2, [])
    assert bot.resolve_profile("hydrogen-valey", PROFILES) == (None, [H2])
    assert bot.resolve_profile("zzz", PROFILES) == (None, [])


def test_start_registers_a_bot_subscriber_once(engine: Engine) -> None:
    assert "Welcome to callwatch" in bot.start(engine, "1001", [], NOW)
    row = subscriber(engine, "tg-1001")
    assert (row.origin, row.timezone, row.language, row.reminders) == (
        "bot", "Europe/Brussels", "en", [30, 7, 1])
    [channel] = rows(engine, channels_table, subscriber_id=row.id)
    assert (channel.channel, channel.address, channel.active) == ("telegram", "1001", True)
    assert "Welcome back" in bot.start(engine, "1001", [], NOW)
    assert len(rows(engine, subscribers_table)) == 1


def test_subscribe_mode_unsubscribe(engine: Engine) -> None:
    reply = bot.subscribe(engine, "1001", ["hydrogen-valey"], NOW, profiles=PROFILES)
    assert "Did you mean <code>hydrogen-valley</code>" in reply
    assert rows(engine, subscriptions_table) == []
    assert "You now follow" in bot.subscribe(engine, "1001", [H2], NOW, profiles=PROFILES)
    assert follows(engine, "tg-1001") == {H2: "instant"}  # registered on the way
    bot.subscribe(engine, "1001", [AGRI, "weekly"], NOW, profiles=PROFILES)
    assert "already follow" in bot.subscribe(engine, "1001", [H2], NOW, profiles=PROFILES)
    assert "Usage" in bot.subscribe(engine, "1001", [H2, "hourly"], NOW, profiles=PROFILES)
    bot.set_mode(engine, "1001", [H2, "daily"], NOW)
    assert follows(engine, "tg-1001") == {H2: "daily", AGRI: "weekly"}
    assert "do not follow" in bot.set_mode(engine, "1001", ["nordic-vision-ai", "daily"], NOW)
    bot.unsubscribe(engine, "1001", [AGRI], NOW)
    assert follows(engine, "tg-1001") == {H2: "daily"}
    tokens = [r.token for r in rows(engine, subscriptions_table)]
    assert all(len(t) >= 24 for t in tokens)


def test_deadlines_are_the_next_ten_matched_not_dismissed_not_closed(seeded: Engine) -> None:
    bot.subscribe(seeded, "1001", [H2], NOW, profiles=PROFILES)
    RulesStore(seeded).dismiss(H2, cid("H2-00"), NOW)
    cutoffs = bot.upcoming_cutoffs(seeded, [H2], NOW)
    assert [c.call_id for c in cutoffs] == [cid("H2-TWO-STAGE")] + [cid(f"H2-{n:02d}")
                                                                    for n in range(1, 10)]
    text = bot.deadlines(seeded, "1001", [], NOW)
    assert parse_telegram_html(text)  # the hostile title is escaped
    assert "Two-stage &lt;hydrogen&gt; &amp; friends" in text
    assert "<b>1 Dec 2026, 16:00 CET</b> (in 6 days)" in text
    assert "Olive oil" not in text and "Closed hydrogen" not in text


def test_dismiss_for_every_followed_profile(seeded: Engine) -> None:
    assert "not registered" in bot.dismiss(seeded, "1001", [cid("H2-01")], NOW)
    bot.subscribe(seeded, "1001", [H2], NOW, profiles=PROFILES)
    bot.subscribe(seeded, "1001", [AGRI], NOW, profiles=PROFILES)
    assert "There is no call" in bot.dismiss(seeded, "1001", ["ft_portal:NOPE"], NOW)
    assert "Dismissed" in bot.dismiss(seeded, "1001", ["H2-01"], NOW)  # a topic identifier works
    assert RulesStore(seeded).dismissed() == {(H2, cid("H2-01")), (AGRI, cid("H2-01"))}


def test_mute_and_stop(engine: Engine) -> None:
    assert "not registered" in bot.mute(engine, "1001", ["3"], NOW)
    bot.subscribe(engine, "1001", [H2], NOW, profiles=PROFILES)
    assert "Usage" in bot.mute(engine, "1001", ["soon"], NOW)
    assert "Muted until" in bot.mute(engine, "1001", ["5"], NOW)
    assert subscriber(engine, "tg-1001").muted_until == NOW + timedelta(hours=5)
    bot.mute(engine, "1001", ["0"], NOW)
    assert subscriber(engine, "tg-1001").muted_until is None
    assert "Stopped" in bot.stop(engine, "1001", [], NOW)
    assert follows(engine, "tg-1001") == {}
    assert [c.active for c in rows(engine, channels_table)] == [False]
    bot.start(engine, "1001", [], NOW)
    assert [c.active for c in rows(engine, channels_table)] == [True]


def test_a_file_subscribers_chat_reads_and_mutes_but_leaves_subscriptions_to_the_file(
        seeded: Engine) -> None:
    file_subscriber(seeded)
    assert "subscriber file" in bot.start(seeded, "1002", [], NOW)
    assert [r.name for r in rows(seeded, subscribers_table)] == ["ana"]  # no bot subscriber
    assert "Hydrogen call 01" in bot.deadlines(seeded, "1002", [], NOW)
    assert "subscriber file" in bot.subscribe(seeded, "1002", [AGRI], NOW, profiles=PROFILES)
    assert "subscriber file" in bot.set_mode(seeded, "1002", [H2, "daily"], NOW)
    answer, done = bot.press_button(seeded, "1002", f"mode:{H2}:daily", NOW)
    assert "subscriber file" in answer and not done
    assert follows(seeded, "ana") == {H2: "instant"}
    bot.mute(seeded, "1002", ["2"], NOW)
    assert subscriber(seeded, "ana").muted_until == NOW + timedelta(hours=2)
    bot.stop(seeded, "1002", [], NOW)
    assert follows(seeded, "ana") == {H2: "instant"}  # the file's subscriptions stay
    telegram_row = [c for c in rows(seeded, channels_table) if c.channel == "telegram"]
    assert [c.active for c in telegram_row] == [False]
    assert [c.active for c in rows(seeded, channels_table) if c.channel == "email"] == [True]


def test_buttons(seeded: Engine) -> None:
    bot.subscribe(seeded, "1001", [H2], NOW, profiles=PROFILES)
    answer, done = bot.press_button(seeded, "1001", f"dismiss:{cid('H2-03')}", NOW)
    assert done and answer.startswith("Dismissed ft_portal:H2-03")
    assert RulesStore(seeded).dismissed() == {(H2, cid("H2-03"))}
    answer, done = bot.press_button(seeded, "1001", f"mode:{H2}:daily", NOW)
    assert not done and "daily digest" in answer
    assert follows(seeded, "tg-1001") == {H2: "daily"}
    assert bot.press_button(seeded, "1001", "nonsense", NOW) == ("This button no longer works.", False)


def test_admin_lists(seeded: Engine, settings: Settings) -> None:
    bot.subscribe(seeded, "1001", [H2], NOW, profiles=PROFILES)
    bot.mute(seeded, "1001", ["1"], NOW)
    text = bot.list_subscribers(seeded, NOW)
    assert "<b>tg-1001</b> [bot · muted] telegram — hydrogen-valley (instant)" in text
    Store(seeded).record_run("eit", ScrapeResult(complete=False, error="HTTP 503 <gateway>"),
                             started_at=NOW, now=NOW)
    health = bot.source_health(seeded, {"ft_portal": True, "eit": True, "eccp": False})
    parse_telegram_html(health)
    assert "🔴 <b>eit</b>: failed (1 run in a row), never succeeded: HTTP 503 &lt;gateway&gt;" in health
    assert "🟢 <b>ft_portal</b>: ok at 2026-11-25 12:00 UTC" in health
    assert "⚪ <b>eccp</b>: disabled" in health


def test_split_reply_keeps_lines_whole_and_within_the_limit() -> None:
    lines = [f"<b>line {n}</b> " + "x" * 90 for n in range(200)]
    parts = bot.split_reply("\n".join(lines))
    assert len(parts) > 1
    assert "\n".join(parts) == "\n".join(lines)
    for part in parts:
        assert len(part) <= 4096
        parse_telegram_html(part)
    [huge] = bot.split_reply("<b>" + "y" * 10_000 + "</b>")
    assert len(huge) <= 4096
    parse_telegram_html(huge)


def test_help_shows_admin_commands_only_to_admins() -> None:
    assert "/subscribe" in bot.help_text() and "/subscribers" not in bot.help_text()
    assert "/subscribers" in bot.help_text(admin=True)
    parse_telegram_html(bot.help_text(admin=True))


def test_help_says_how_to_stop() -> None:
    text = bot.help_text()
    assert "<b>How to stop</b>" in text
    assert "/unsubscribe NAME stops one profile" in text
    assert "/stop ends every message to this chat" in text
    parse_telegram_html(text)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_how_to_stop_names_the_arguments_as_the_command_list_does(lang: str) -> None:
    """"/unsubscribe NAZWA", not "/unsubscribe NAME", under "/unsubscribe — NAZWA: …"."""
    commands, _sep, how_to_stop = bot.help_text(lang=lang).rpartition("\n\n")
    argument = {line.split(" — ")[0]: line.split(" — ")[1].split(":")[0].strip()
                for line in commands.splitlines() if line.startswith(("/unsubscribe ", "/mute "))}
    assert argument.keys() == {"/unsubscribe", "/mute"}
    for command, word in argument.items():
        assert f"{command} {word} " in how_to_stop


# -- end to end through the fake Bot API ----------------------------------------------------

@dataclass
class Chat:
    """One bot session: the running Application talking to the fake over loopback."""

    fake: FakeTelegram
    engine: Engine

    async def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 15.0  # a bound against hanging, not a timing assertion
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot never got to: {what}; sent {self.fake.sent!r}")
            await asyncio.sleep(0.01)

    async def say(self, chat: int, text: str, replies: int = 1,
                  language: str | None = None) -> list[SentMessage]:
        """Send a command (from a user whose Telegram is in ``language``) and wait for
        ``replies`` messages to come back."""
        before = len(self.fake.sent)
        self.fake.queue_command(chat, text, language_code=language)
        await self.until(lambda: len(self.fake.sent) >= before + replies, text)
        return self.fake.sent[before:]

    async def press(self, chat: int, data: str, language: str | None = None) -> dict[str, Any]:
        before = len(self.fake.callback_answers)
        self.fake.queue_callback(chat, data, message_id=77, language_code=language)
        await self.until(lambda: len(self.fake.callback_answers) > before, data)
        return self.fake.callback_answers[-1]


Scenario = Callable[[Chat], Awaitable[None]]


@pytest.fixture
def converse(engine: Engine, settings: Settings) -> Iterator[Callable[[Scenario], None]]:
    with FakeTelegram(TOKEN) as fake:
        live = settings.model_copy(update={"notifiers": settings.notifiers.model_copy(update={
            "telegram": settings.notifiers.telegram.model_copy(update={"base_url": fake.base_url})})})

        def run(scenario: Scenario) -> None:
            async def main() -> None:
                notifier = TelegramNotifier(telegram.Bot(TOKEN, base_url=fake.base_url),
                                            pacer=Pacer(enabled=False))
                notifiers: dict[str, Notifier] = {"telegram": notifier}
                running = await bot.start_bot(live, engine, notifiers, lambda: NOW,
                                              {TOKEN_ENV: TOKEN})
                assert running is not None
                try:
                    await scenario(Chat(fake, engine))
                finally:
                    await running.stop()
                    await notifier.aclose()
            asyncio.run(main())

        run.fake = fake  # type: ignore[attr-defined]  # tests look at what the fake recorded
        yield run


def test_bot_registers_commands_and_answers_start_help_profiles(
        converse: Callable[[Scenario], None], engine: Engine) -> None:
    async def scenario(chat: Chat) -> None:
        [welcome] = await chat.say(USER, "/start")
        assert welcome.chat_id == str(USER) and "Welcome to callwatch" in welcome.text
        assert welcome.parse_mode == "HTML"
        [help_reply] = await chat.say(USER, "/help")
        assert "/deadlines" in help_reply.text and "/subscribers" not in help_reply.text
        [admin_help] = await chat.say(ADMIN, "/help")
        assert "/subscribers" in admin_help.text
        [profiles] = await chat.say(USER, "/profiles")
        for name in (H2, AGRI, "nordic-vision-ai"):
            assert f"<code>{name}</code>" in profiles.text
        assert "Hydrogen and fuel-cell cluster" in profiles.text

    converse(scenario)
    fake: FakeTelegram = converse.fake  # type: ignore[attr-defined]
    assert [c["command"] for c in fake.commands] == [name for name, _ in bot.PUBLIC_COMMANDS]
    assert subscriber(engine, "tg-1001").origin == "bot"
    assert fake.rejected == []


def test_bot_subscriptions_end_to_end(converse: Callable[[Scenario], None], engine: Engine) -> None:
    async def scenario(chat: Chat) -> None:
        [typo] = await chat.say(USER, "/subscribe hydrogen-valey")
        assert "Did you mean <code>hydrogen-valley</code>?" in typo.text
        await chat.say(USER, f"/subscribe {H2}")
        assert follows(engine, "tg-1001") == {H2: "instant"}
        [moved] = await chat.say(USER, f"/mode {H2} weekly")
        assert "weekly digest" in moved.text
        assert follows(engine, "tg-1001") == {H2: "weekly"}
        await chat.say(USER, f"/subscribe {AGRI}")
        await chat.say(USER, f"/unsubscribe {H2}")
        assert follows(engine, "tg-1001") == {AGRI: "instant"}
        [muted] = await chat.say(USER, "/mute 12")
        assert "Muted until 26 Nov 2026, 01:00 CET" in muted.text
        assert subscriber(engine, "tg-1001").muted_until == NOW + timedelta(hours=12)
        [stopped] = await chat.say(USER, "/stop")
        assert "Stopped" in stopped.text
        assert follows(engine, "tg-1001") == {}
        assert [c.active for c in rows(engine, channels_table)] == [False]

    converse(scenario)


def test_bot_deadlines_dismiss_and_buttons(converse: Callable[[Scenario], None],
                                           seeded: Engine) -> None:
    async def scenario(chat: Chat) -> None:
        await chat.say(USER, f"/subscribe {H2}")
        [listing] = await chat.say(USER, "/deadlines")
        assert listing.text.index("Two-stage") < listing.text.index("Hydrogen call 00")
        assert "Hydrogen call 08" in listing.text and "Hydrogen call 09" not in listing.text
        assert "Olive oil" not in listing.text
        [dismissed] = await chat.say(USER, f"/dismiss {cid('H2-00')}")
        assert "Dismissed" in dismissed.text
        assert RulesStore(seeded).dismissed() == {(H2, cid("H2-00"))}
        [listing] = await chat.say(USER, "/deadlines")
        assert "Hydrogen call 00" not in listing.text and "Hydrogen call 09" in listing.text

        answer = await chat.press(USER, f"dismiss:{cid('H2-05')}")
        assert answer["text"].startswith("Dismissed ft_portal:H2-05")
        assert (H2, cid("H2-05")) in RulesStore(seeded).dismissed()
        await chat.until(lambda: len(chat.fake.markup_edits) == 1, "the buttons removed")
        edit = chat.fake.markup_edits[0]
        assert (str(edit["chat_id"]), str(edit["message_id"]), edit["reply_markup"]) == (
            str(USER), "77", None)
        answer = await chat.press(USER, f"mode:{H2}:daily")
        assert "daily digest" in answer["text"]
        assert follows(seeded, "tg-1001") == {H2: "daily"}

    converse(scenario)


def test_bot_digest_now_sends_the_digest(converse: Callable[[Scenario], None],
                                         seeded: Engine) -> None:
    async def scenario(chat: Chat) -> None:
        await chat.say(USER, f"/subscribe {H2}")
        [nothing] = await chat.say(USER, "/digest")
        assert "instant" in nothing.text
        await chat.say(USER, f"/mode {H2} daily")
        with seeded.begin() as connection:
            connection.execute(digest_entries_table.insert().values(
                key="test|item", profile=H2, call_id=cid("H2-07"), change_id=None,
                reasons=["hydrogen"], created_at=NOW))
        reply, digest = await chat.say(USER, "/digest", replies=2)
        assert "on its way" in reply.text
        assert digest.chat_id == str(USER) and "Hydrogen call 07" in digest.text
        await chat.until(lambda: [r.status for r in rows(seeded, deliveries_table)] == ["sent"],
                         "the digest marked sent")
        [again] = await chat.say(USER, "/digest")
        assert "Nothing new" in again.text

    converse(scenario)


def test_bot_admin_commands_and_refusal(converse: Callable[[Scenario], None],
                                        seeded: Engine) -> None:
    Store(seeded).record_run("eit", ScrapeResult(complete=False, error="HTTP 503"),
                             started_at=NOW, now=NOW)

    async def scenario(chat: Chat) -> None:
        await chat.say(USER, f"/subscribe {H2}")
        for command in ("/subscribers", "/sources"):
            [refused] = await chat.say(USER, command)
            assert refused.text == bot.ADMIN_REFUSAL
        [listing] = await chat.say(ADMIN, "/subscribers")
        assert "tg-1001" in listing.text and "hydrogen-valley (instant)" in listing.text
        [health] = await chat.say(ADMIN, "/sources")
        assert "🔴 <b>eit</b>" in health.text and "🟢 <b>ft_portal</b>" in health.text

    converse(scenario)


def test_bot_works_for_a_file_subscribers_chat(converse: Callable[[Scenario], None],
                                               seeded: Engine) -> None:
    file_subscriber(seeded, "1002")

    async def scenario(chat: Chat) -> None:
        [listing] = await chat.say(1002, "/deadlines")
        assert "Hydrogen call 00" in listing.text
        [refused] = await chat.say(1002, f"/subscribe {AGRI}")
        assert "subscriber file" in refused.text
        await chat.say(1002, "/dismiss H2-02")
        answer = await chat.press(1002, f"dismiss:{cid('H2-04')}")
        assert "Dismissed" in answer["text"]

    converse(scenario)
    assert RulesStore(seeded).dismissed() == {(H2, cid("H2-02")), (H2, cid("H2-04"))}
    assert follows(seeded, "ana") == {H2: "instant"}


# -- the member's language ------------------------------------------------------------------

def test_help_in_every_language_lists_every_command() -> None:
    english = bot.help_text(admin=True)
    for lang in LANGUAGES:
        text = bot.help_text(admin=True, lang=lang)
        parse_telegram_html(text)
        assert all(f"/{name} — " in text for name, _ in bot.PUBLIC_COMMANDS + bot.ADMIN_COMMANDS)
        assert (text == english) == (lang == "en")
    assert "/language — CODE: the language callwatch writes to you in" in english
    german = bot.help_text(lang="de")
    assert "informiert Sie über EU-Förderaufrufe" in german
    assert "/subscribe — NAME [instant|daily|weekly]: einem Profil folgen" in german


def test_the_reply_language_is_the_chats_then_the_users_then_the_files(engine: Engine) -> None:
    def language(chat: str, code: str | None) -> str:
        with engine.connect() as connection:
            return bot.reply_language(connection, chat, code)

    assert [language("1001", code) for code in ("de", "pt-br", "uk", None)] == ["de", "pt", "en", "en"]
    bot.start(engine, "1001", [], NOW, lang="de")  # registered by a German user
    assert subscriber(engine, "tg-1001").language == "de"
    assert language("1001", "fr") == "de"  # the chat's language, whoever writes
    file_subscriber(engine, "1002")  # ana: language en (the file's default)
    assert [language("1002", code) for code in ("fr", None, "uk")] == ["fr", "en", "en"]


def test_language_shows_sets_refuses_and_lists_the_supported_ones(engine: Engine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert "I write to you in English" in bot.set_language(engine, "1001", [], NOW)
    reply = bot.set_language(engine, "1001", ["pl"], NOW)  # registers the chat, in Polish
    # alerts and digests are written in Polish too (i18n.MESSAGE_LANGUAGES), and it says so
    assert reply == ("Gotowe: język wiadomości to teraz polski. "
                     "W tym języku otrzymasz też powiadomienia i podsumowania.")
    assert subscriber(engine, "tg-1001").language == "pl"
    assert "Piszę do Ciebie w języku: polski" in bot.set_language(engine, "1001", [], NOW, lang="pl")
    # every language's messages are translated in full now (French too), and it says so
    assert bot.set_language(engine, "1001", ["fr"], NOW).endswith(
        "Les alertes et les récapitulatifs sont aussi rédigés dans cette langue.")
    # a language whose messages are partly English still (a new one): the reply does not
    # promise more
    monkeypatch.setattr(bot, "MESSAGE_LANGUAGES", ("en", "de", "pl"))
    assert bot.set_language(engine, "1001", ["fr"], NOW).endswith(
        "Les alertes et les récapitulatifs restent en partie en anglais tant que leur traduction "
        "n’est pas terminée.")
    monkeypatch.undo()
    assert bot.set_language(engine, "1001", [], NOW).endswith(
        "Alerts and digests are written in it too.")
    bot.set_language(engine, "1001", ["pl"], NOW)
    for wrong in (["xx"], ["pl", "de"], ["klingon"]):
        refused = bot.set_language(engine, "1001", wrong, NOW)
        parse_telegram_html(refused)
        assert refused.startswith("There is no language <code>")
        assert all(f"<code>{code}</code>" in refused for code in LANGUAGES)
        assert "<code>cs</code> (čeština)" in refused
    assert subscriber(engine, "tg-1001").language == "pl"
    bot.stop(engine, "1001", [], NOW)
    bot.set_language(engine, "1001", ["de"], NOW)  # a stopped chat stays stopped
    assert [c.active for c in rows(engine, channels_table)] == [False]


def test_a_subscriber_files_language_is_not_changed_from_the_chat(engine: Engine) -> None:
    file_subscriber(engine, "1002")
    refused = bot.set_language(engine, "1002", ["de"], NOW, lang="fr")
    assert refused.startswith("La langue de ce chat est définie pour <b>ana</b> dans un fichier")
    assert subscriber(engine, "ana").language == "en"
    assert [r.name for r in rows(engine, subscribers_table)] == ["ana"]


def test_replies_in_german_with_german_dates_and_plurals(seeded: Engine) -> None:
    reply = bot.subscribe(seeded, "1001", [H2], NOW, profiles=PROFILES, lang="de")
    assert reply == ("Sie folgen jetzt <code>hydrogen-valley</code> "
                     "(eine Benachrichtigung zu jedem neuen oder geänderten Aufruf).")
    text = bot.deadlines(seeded, "1001", [], NOW, lang="de")
    assert text.startswith("<b>Ihre nächsten 10 Fristen</b>")
    assert "<b>1. Dez. 2026, 16:00 CET</b> (in 6 Tagen)" in text
    assert "Stumm bis 26. Nov. 2026, 01:00 CET." in bot.mute(seeded, "1001", ["12"], NOW, lang="de")
    typo = bot.subscribe(seeded, "1001", ["hydrogen"], NOW, profiles=[H2, "hydrogen-eu"], lang="de")
    assert "Meinten Sie <code>hydrogen-eu</code> oder <code>hydrogen-valley</code>?" in typo
    answer, done = bot.press_button(seeded, "1001", f"dismiss:{cid('H2-03')}", NOW, lang="pl")
    assert done and answer == "Ukryto ft_portal:H2-03 dla hydrogen-valley: już się nie pojawi."


def test_the_bot_answers_a_german_user_in_german_until_they_choose_polish(
        converse: Callable[[Scenario], None], engine: Engine) -> None:
    async def scenario(chat: Chat) -> None:
        [help_reply] = await chat.say(USER, "/help", language="de")
        assert help_reply.text == bot.help_text(lang="de")
        assert "Was der Bot kann" not in help_reply.text and "was der Bot kann" in help_reply.text
        [welcome] = await chat.say(USER, "/start", language="de")
        assert welcome.text.startswith("Willkommen bei callwatch.")
        assert subscriber(engine, "tg-1001").language == "de"
        [switched] = await chat.say(USER, "/language pl", language="de")
        assert switched.text.startswith("Gotowe: język wiadomości to teraz polski.")
        [help_reply] = await chat.say(USER, "/help", language="de")
        assert help_reply.text == bot.help_text(lang="pl")
        [unknown] = await chat.say(USER, "/language xx", language="de")
        assert unknown.text.startswith("Język <code>xx</code> nie jest dostępny. Wybierz jeden z:")
        assert all(f"<code>{code}</code>" in unknown.text for code in LANGUAGES)
        [refused] = await chat.say(USER, "/sources", language="de")
        assert refused.text == "Niestety, to polecenie jest tylko dla osób prowadzących ten callwatch."
        answer = await chat.press(USER, "nonsense", language="de")
        assert answer["text"] == "Ten przycisk już nie działa."
        [english] = await chat.say(1003, "/help")  # no language_code: English
        assert english.text == bot.help_text()

    converse(scenario)
    assert subscriber(engine, "tg-1001").language == "pl"
    fake: FakeTelegram = converse.fake  # type: ignore[attr-defined]
    assert sorted(fake.commands_by_language) == sorted(set(LANGUAGES) - {"en"})
    german = {c["command"]: c["description"] for c in fake.commands_by_language["de"]}
    assert german["stop"] == "alle Nachrichten an diesen Chat beenden"
    assert [c["command"] for c in fake.commands_by_language["cs"]] == [n for n, _ in bot.PUBLIC_COMMANDS]


# -- operator alerts ------------------------------------------------------------------------

def test_notify_admins_through_the_notifier_and_a_bare_bot_skipping_a_blocked_chat() -> None:
    with FakeTelegram(TOKEN) as fake:
        fake.block("998")
        text = operator_alerts.dead_letters_text([f"alert|1|telegram|<call {n}>" for n in range(12)])

        async def main() -> tuple[int, int]:
            notifier = TelegramNotifier(telegram.Bot(TOKEN, base_url=fake.base_url),
                                        pacer=Pacer(enabled=False))
            bare = telegram.Bot(TOKEN, base_url=fake.base_url)
            try:
                through_notifier = await bot.notify_admins(notifier, ["999", "998"], text)
                async with bare:
                    through_bot = await bot.notify_admins(bare, ["997"], operator_alerts.red_source_text(
                        "eit", 3, "HTTP 503 <b>"))
            finally:
                await notifier.aclose()
            return through_notifier, through_bot

        assert asyncio.run(main()) == (1, 1)
        assert [m.chat_id for m in fake.sent] == ["999", "997"]
        assert "12 message(s) could not be delivered" in fake.sent[0].text
        assert "&lt;call 9&gt;" in fake.sent[0].text and "and 2 more" in fake.sent[0].text
        assert "failed 3 time(s) in a row: HTTP 503 &lt;b&gt;" in fake.sent[1].text
        for sent in fake.sent:
            parse_telegram_html(sent.text)


def test_alert_admins_is_quiet_without_a_telegram_channel_or_admins(settings: Settings) -> None:
    assert asyncio.run(operator_alerts.alert_admins(settings, {}, "x")) == 0


def test_start_bot_needs_the_token_and_the_channel(settings: Settings, engine: Engine) -> None:
    assert asyncio.run(bot.start_bot(settings, engine, {}, lambda: NOW, {})) is None
    disabled = settings.model_copy(update={"notifiers": settings.notifiers.model_copy(update={
        "telegram": settings.notifiers.telegram.model_copy(update={"enabled": False})})})
    assert asyncio.run(bot.start_bot(disabled, engine, {}, lambda: NOW, {TOKEN_ENV: TOKEN})) is None


# -- the daemon runs the bot ----------------------------------------------------------------

def test_the_daemon_runs_the_bot_alerts_admins_of_dead_letters_and_stops(
        engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker.service.daemon import Daemon

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    past = datetime(2020, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:  # a message to a chat that is gone: a dead letter
        gone = connection.execute(subscribers_table.insert().values(
            name="gone", timezone="UTC", language="en", reminders=[], origin="bot",
            created_at=past, updated_at=past)).inserted_primary_key[0]  # type: ignore[index]
        connection.execute(channels_table.insert().values(
            subscriber_id=gone, channel="telegram", address="5", configured_address="5",
            active=False))
        connection.execute(deliveries_table.insert().values(
            key="alert|gone|telegram|x", subscriber_id=gone, channel="telegram", kind="alert",
            message=operator_alerts.notice("hello").model_dump(mode="json"), status="pending",
            next_attempt_at=past, created_at=past))
    with FakeTelegram(TOKEN) as fake:
        notifiers = settings.notifiers.model_copy(update={
            "telegram": settings.notifiers.telegram.model_copy(update={"base_url": fake.base_url}),
            "email": settings.notifiers.email.model_copy(update={"enabled": False}),
            "webhook": settings.notifiers.webhook.model_copy(update={"enabled": False})})
        sources = {name: source.model_copy(update={"enabled": False})
                   for name, source in settings.sources.items()}
        live = settings.model_copy(update={"notifiers": notifiers, "sources": sources})

        async def main() -> int:
            daemon = Daemon(live, engine)
            running = asyncio.create_task(daemon.run())
            chat = Chat(fake, engine)
            try:
                [welcome] = await chat.say(USER, "/start")
                assert "Welcome to callwatch" in welcome.text
                await daemon.deliver()
                [alert] = [m for m in fake.sent if m.chat_id == str(ADMIN)]
                assert "1 message(s) could not be delivered" in alert.text
                assert "alert|gone|telegram|x" in alert.text
            finally:
                daemon.stop.set()
            return await running

        assert asyncio.run(main()) == 0
    assert subscriber(engine, "tg-1001").origin == "bot"
