"""The member pages in every page language (``i18n.PAGE_LANGUAGES``: de, fr, es, it, pl, pt,
nl, cs): no English left on them (issue 17, "the member-facing pages use the same catalogs
as the messages").

Each page is rendered in English first; the literal pieces of the member pages' msgids
(babel.cfg's extraction of tracker/web, ``i18n.PAGE_SOURCES``) found in that render are
the English the page shows. Rendered again in a page language (``i18n.PAGE_LANGUAGES``),
none of them may be left, but a piece the translation itself has. So the test follows the
templates: a string newly marked on these pages is checked as soon as a page shows it, and an
entry left empty in any of those catalogs fails it. The pages: the sign-up form and the page
after it, the confirmation email and the confirmation link's page, the preferences page and
the unsubscribe confirm page, in the browser's language (sign-up) and the member's (the
rest), and the notices (an unknown link, an expired form).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from sqlalchemy.engine import Engine

from tests.members_support import (
    PROFILE,
    PUBLIC_URL,
    TENANT,
    mails_to,
    member_settings,
    plain,
    sync_files,
)
from tests.test_web_members import (
    NEW,
    NOW,
    SECRET,
    SITE,
    Client,
    Clock,
    confirm,
    confirmation_link,
    csrf,
    sign_up,
)
from tracker import i18n
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.web import language
from tracker.web.app import create_app

REPO = Path(__file__).resolve().parent.parent
PAGE_LANGUAGES = [lang for lang in i18n.PAGE_LANGUAGES if lang != i18n.SOURCE_LANGUAGE]
_FIELD = re.compile(r"\{\w+\}|%\(\w+\)[sd]")


@cache
def page_msgids() -> frozenset[str]:
    """Every msgid babel.cfg extracts from the member pages (templates and Python)."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    return frozenset(message if isinstance(message, str) else message[0]
                     for filename, _line, message, _comments, _context
                     in extract_from_dir(REPO, method_map, options_map)
                     if filename.replace("\\", "/").startswith(i18n.PAGE_SOURCES))


def pieces(msgid: str) -> list[str]:
    """The literal parts of a msgid between its fields, each with a letter in it."""
    return [part.strip() for part in _FIELD.split(msgid.replace("%%", "%"))
            if re.search(r"[A-Za-z]{2}", part)]


def shown(text: str, piece: str) -> bool:
    """Whether ``piece`` stands in ``text`` as words ("To" is not in "Tokyo")."""
    before = r"(?<!\w)" if piece[0].isalnum() else ""
    after = r"(?!\w)" if piece[-1].isalnum() else ""
    return re.search(before + re.escape(piece) + after, text) is not None


def visible(markup: str) -> str:
    """A page's text as read: tags dropped (the title kept), entities read."""
    return html.unescape(re.sub(r"<script.*?</script>|<[^>]+>", " ", markup, flags=re.DOTALL))


def english_on(english: str) -> dict[str, str]:
    """piece → msgid, for every piece of a member page msgid the English render shows."""
    return {piece: msgid for msgid in page_msgids() for piece in pieces(msgid)
            if shown(english, piece)}


def english_left(english: str, translated: str, lang: str) -> list[str]:
    """The English pieces of ``english`` still in ``translated``, but a piece the language's
    own translation of that msgid also has."""
    catalog = i18n.read_catalog(lang)
    left = []
    for piece, msgid in english_on(english).items():
        entry = catalog.get(msgid)
        own = "" if entry is None or entry.fuzzy else str(entry.string or "")
        if shown(translated, piece) and piece not in own:
            left.append(piece)
    return sorted(left)


@dataclass
class Renders:
    """One language's member pages, as text a reader sees, and the raw HTML of each."""

    pages: dict[str, str]
    raw: dict[str, str]


def render_all(lang: str, tmp_path: Path, engine: Engine, smtp: SmtpSink) -> Renders:
    """Sign up with the browser in ``lang`` (choosing ``lang`` on the form), confirm, and
    open the preferences and the unsubscribe page as that member (the member's language)."""
    settings = member_settings(tmp_path / lang, smtp)
    sync_files(settings, engine, NOW)
    client = Client(create_app(settings, engine, Clock(), secret=SECRET))
    browser = {} if lang == "en" else {"accept-language": f"{lang}-{lang.upper()},{lang};q=0.9"}
    email = f"{lang}-{NEW}"
    raw = {"join": client.get(f"/t/{TENANT}/join", headers=browser).text}
    status, raw["join_sent"] = sign_up(client, email, language=lang)
    assert status == 200, raw["join_sent"]
    raw["email"] = plain(mails_to(smtp, email)[-1])
    link = confirmation_link(smtp, email)
    raw["join_confirm"] = client.get(link, headers=browser).text
    manage = confirm(client, link)
    raw["welcome"] = client.get(f"{manage}?welcome=1", headers=browser).text
    # saved with a mute: the page then says "Saved." and until when, in the member's zone
    raw["preferences"] = client.post(manage, headers={**browser, "origin": SITE}, data={
        "csrf_token": csrf(client, manage), "profile": PROFILE, "mode_email": "daily",
        "language": lang, "timezone": "Europe/Warsaw", "mute": "24"}).text
    found = re.search(r'href="(/unsubscribe/[^"]+)"', raw["preferences"])
    assert found, raw["preferences"]
    raw["unsubscribe"] = client.get(found.group(1), headers=browser).text
    # the notices: an unknown link, and a form that failed its CSRF check
    raw["not_found"] = client.get("/manage/not-a-token", headers=browser).text
    raw["expired"] = client.post(f"/t/{TENANT}/join", headers={**browser, "origin": SITE},
                                 data={"csrf_token": "forged", "language": lang}).text
    # a new address: the answer, its email, its confirm page, the old address's notice
    moved = f"moved-{email}"
    raw["email_asked"] = client.post(f"{manage}/email", headers={**browser, "origin": SITE}, data={
        "csrf_token": csrf(client, manage), "new_email": moved}).text
    raw["email_change"] = plain(mails_to(smtp, moved)[-1])
    change = re.search(rf"{re.escape(PUBLIC_URL)}(/email-change/\S+)", raw["email_change"])
    assert change, raw["email_change"]
    raw["email_confirm"] = client.get(change.group(1), headers=browser).text
    changed = client.post(change.group(1), headers={**browser, "origin": SITE},
                          data={"csrf_token": csrf(client, change.group(1))})
    raw["email_changed"] = client.get(changed.headers["location"], headers=browser).text
    raw["email_notice"] = plain(mails_to(smtp, email)[-1])
    # erasure: the confirm step, then the answer (last: the member is gone after it)
    raw["erase"] = client.get(f"{manage}/erase", headers=browser).text
    raw["erased"] = client.post(f"{manage}/erase", headers={**browser, "origin": SITE},
                                data={"csrf_token": csrf(client, f"{manage}/erase")}).text
    return Renders({name: visible(page) for name, page in raw.items()}, raw)


@pytest.fixture
def english(tmp_path: Path, engine: Engine, smtp: SmtpSink) -> Renders:
    return render_all("en", tmp_path, engine, smtp)


def test_the_english_pages_show_the_marked_strings(english: Renders) -> None:
    """What the check below compares with: each page shows a good part of the catalog's
    strings (the sign-up form its labels, the preferences page its settings)."""
    counts = {name: len(english_on(page)) for name, page in english.pages.items()}
    assert counts["join"] >= 15 and counts["preferences"] >= 20 and counts["unsubscribe"] >= 5, counts
    assert all(count >= 3 for count in counts.values()), counts
    assert '<html lang="en">' in english.raw["join"]
    assert "Muted until 26 Nov 2026, 13:00 CET." in english.pages["preferences"]
    # every language is translated in full: the list names each by its own name alone
    assert "(partly in English)" not in english.pages["join"]
    assert all(i18n.language_name(code) in english.pages["join"] for code in i18n.LANGUAGES)


@pytest.mark.parametrize("lang", PAGE_LANGUAGES)
def test_no_english_is_left_on_the_member_pages(lang: str, english: Renders, tmp_path: Path,
                                               engine: Engine, smtp: SmtpSink) -> None:
    translated = render_all(lang, tmp_path, engine, smtp)
    left = {name: english_left(english.pages[name], page, lang)
            for name, page in translated.pages.items()}
    assert left == {name: [] for name in translated.pages}, (
        f"English left on the {lang} member pages: translate these in "
        f"tracker/locale/{lang}/LC_MESSAGES/callwatch.po")
    for name in ("join", "join_sent", "join_confirm", "welcome", "preferences", "unsubscribe",
                 "not_found", "expired", "email_asked", "email_confirm", "email_changed", "erase",
                 "erased"):
        assert f'<html lang="{lang}">' in translated.raw[name], name
    # the email's footer (the messages' catalog, added at send time) is the member's too
    footer = i18n.translations(lang).gettext("Sent by callwatch.")
    assert footer in translated.pages["email"] and footer != "Sent by callwatch."
    # the form keeps the chosen language, and names every language in its own name
    assert f'<option value="{lang}" selected>' in translated.raw["preferences"]
    for code in i18n.LANGUAGES:
        assert f'<option value="{code}">{i18n.language_name(code)}</option>' in translated.raw[
            "join"].replace(f'<option value="{lang}" selected>', f'<option value="{lang}">'), code


@pytest.mark.parametrize("lang", ["en", *PAGE_LANGUAGES])
def test_a_language_translated_in_part_is_listed_as_partly_english(
        lang: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A language outside PAGE_LANGUAGES (a new one, before its translation is complete)
    says so in the language lists, in the page's language; the complete ones do not."""
    monkeypatch.setattr(language, "PAGE_LANGUAGES", tuple(c for c in i18n.PAGE_LANGUAGES if c != "fr"))
    listed = dict(language.choices(lang))
    partly = i18n.translations(lang).gettext("{language} (partly in English)")
    assert listed["fr"] == partly.format(language=i18n.language_name("fr"))
    assert lang == "en" or partly != "{language} (partly in English)"
    assert listed["de"] == i18n.language_name("de") and listed["cs"] == i18n.language_name("cs")


def test_a_blank_german_entry_is_found(english: Renders, tmp_path: Path, engine: Engine,
                                       smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check fails when one German entry of these pages is empty (English shows)."""
    german = i18n.read_catalog("de")
    german["Leave: end all my alerts"].string = ""
    monkeypatch.setattr(i18n, "read_catalog", lambda lang: german if lang == "de" else
                        _read_catalog(lang))
    i18n.translations.cache_clear()
    try:
        translated = render_all("de", tmp_path, engine, smtp)
    finally:
        i18n.translations.cache_clear()
    assert english_left(english.pages["preferences"], translated.pages["preferences"], "de") == [
        "Leave: end all my alerts"]


_read_catalog = i18n.read_catalog
