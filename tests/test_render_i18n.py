"""Messages in the subscriber's language: alerts, digests, summaries and reminders in every
language of ``i18n.MESSAGE_LANGUAGES`` (all eight besides English), every form (email HTML
and plain text, Telegram), through the bot's catalogs.

Two checks, each able to fail on its own:

- the catalogs: every string the messages use (marked in tracker/delivery/: the templates
  and ``wording``) has a translation in each of those languages, with every plural form;
- the renders: an alert, a digest with every section, a summary and a reminder rendered in
  each language from calls whose own text has no English in it contain no literal piece
  of any English msgid the messages use (a string left untranslated shows up as English).
  The same check run on the English render against each catalog (what a language whose
  entries were empty would show: gettext falls back to the msgid) must find English.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from tests.factories import make_call
from tests.notifier_support import change
from tracker import i18n
from tracker.delivery.render import AlertItem, render_alert, render_digest, render_reminder, render_summary
from tracker.delivery.unsubscribe import Links, with_footer
from tracker.delivery.wording import why_matched
from tracker.models import CallRecord, CallStatus, ChangeKind
from tracker.ports import Message

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ZONE = "Europe/Warsaw"
LINKS = Links(manage="https://callwatch.example.org/manage/t0k", unsubscribe="https://callwatch.example.org/unsubscribe/t0k")
#: the languages whose messages are translated in full (docs/translations.md)
FULL = [lang for lang in i18n.MESSAGE_LANGUAGES if lang != i18n.SOURCE_LANGUAGE]


@cache
def message_msgids() -> tuple[str | tuple[str, str], ...]:
    """Every msgid marked in tracker/delivery/ (templates and Python), as babel.cfg extracts."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    found: dict[str, str | tuple[str, str]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(REPO, method_map, options_map):
        if filename.replace("\\", "/").startswith(i18n.MESSAGE_SOURCES):
            msgid = message if isinstance(message, str) else (message[0], message[1])
            found[msgid if isinstance(msgid, str) else msgid[0]] = msgid
    return tuple(found.values())


def test_the_messages_strings_are_found() -> None:
    """The extraction the checks rely on sees templates, wording's phrases and its plurals."""
    found = message_msgids()
    assert "Open the call" in found  # a template
    assert "Sent by callwatch." in found  # the email footer
    assert "New calls" in found  # wording.PHRASES
    assert ("{n} grant expected", "{n} grants expected") in found  # wording.PLURALS
    assert len(found) >= 100


@pytest.mark.parametrize("lang", FULL)
def test_every_message_string_has_a_translation(lang: str) -> None:
    catalog = i18n.read_catalog(lang)
    missing = []
    for msgid in message_msgids():
        entry = catalog.get(msgid if isinstance(msgid, str) else msgid[0])
        forms = [] if entry is None else (
            [entry.string] if isinstance(entry.string, str) else list(entry.string))
        if entry is None or entry.fuzzy or not forms or not all(forms):
            missing.append(msgid)
        elif isinstance(msgid, tuple):
            assert len(forms) == catalog.num_plurals, msgid
    assert missing == [], f"tracker/locale/{lang}: translate {missing}"


# -- the renders ---------------------------------------------------------------------------

def calls() -> list[CallRecord]:
    """Calls whose own text (title, summary, identifiers, countries) has no English word,
    so any English in a render comes from callwatch's strings."""
    first = make_call(
        "WASSERSTOFF-01", title="Wasserstoff-Elektrolyseure Z7", programme="Horyzont",
        sub_programme="KLASTER-5", summary="Elektrolyseure für Wasserstoff. Zweiter Satz hier. Dritter.",
        url="https://example.invalid/w1", action_type="RIA", deadline_model="jednoetapowy",
        deadlines=(datetime(2027, 2, 11, 16, 0, tzinfo=UTC), datetime(2027, 6, 3, 15, 0, tzinfo=UTC)),
        budget_eur=4_500_000, budget_max_eur=1_500_000, expected_grants=3,
        call_budget_eur=40_000_000, call_budget_topics=5, countries=("DE", "PL"),
        regions=("Mazowsze",))
    second = make_call(
        "WODOR-02", title="Wodór w dolinach", programme="Horyzont", summary="Doliny wodorowe.",
        url="https://example.invalid/w2", action_type="IA", deadline_model="dwuetapowy",
        status=CallStatus.FORTHCOMING, opening_date=NOW + timedelta(days=3),
        deadlines=(datetime(2027, 4, 22, 15, 0, tzinfo=UTC),), budget_eur=None,
        budget_min_eur=250_000, expected_grants=1, call_budget_eur=12_000_000, call_budget_topics=1)
    third = make_call(
        "ZAMKNIECIE-03", title="Termin blisko", programme="Horyzont", summary="Krótko.",
        url="https://example.invalid/w3", action_type="CSA", deadline_model="jednoetapowy",
        deadlines=(NOW + timedelta(days=2),), budget_eur=900_000, expected_grants=5)
    return [first, second, third]


REASONS = ("title: wasserstoff, elektrolyseure", "keywords: wodor", "summary: doliny",
           "eligible: DE, PL", "audience: KMU", "Horyzont")


def renders(lang: str) -> list[Message]:
    """Every kind of message, with every change kind and every digest section, in ``lang``."""
    first, second, third = calls()
    changes = (
        change(first, ChangeKind.DEADLINE_CHANGED, old=["2027-01-28T16:00:00Z", "2027-06-03T15:00:00Z"],
               new=["2027-02-11T16:00:00Z", "2027-06-03T15:00:00Z"]),
        change(first, ChangeKind.DEADLINE_CHANGED, old=["2027-02-11T16:00:00Z"],
               new=["2027-02-11T16:00:00Z", "2027-09-01T15:00:00Z"]),
        change(first, ChangeKind.DEADLINE_CHANGED, old=["2027-02-11T16:00:00Z", "2027-10-01T15:00:00Z"],
               new=["2027-02-11T16:00:00Z"]),
        change(first, ChangeKind.BUDGET_CHANGED,
               old={"total": 3_000_000, "max_grant": 1_000_000, "min_grant": None, "expected_grants": 2,
                    "call_total": 30_000_000},
               new={"total": 4_500_000, "max_grant": 1_500_000, "min_grant": 100_000, "expected_grants": 3,
                    "call_total": 40_000_000}),
        change(first, ChangeKind.OPENED, old="forthcoming", new="open"),
        change(first, ChangeKind.CLOSED, old="open", new="closed"),
        change(first, ChangeKind.REOPENED, old="closed", new="open"),
        change(first, ChangeKind.STATUS_CHANGED, old="open", new="forthcoming"),
        change(first, ChangeKind.STATUS_CHANGED, old="otwarty", new="zamknięty"),
        change(first, ChangeKind.TITLE_CHANGED, old="Stary tytuł", new=first.title),
        change(first, ChangeKind.DOCUMENTS_CHANGED, field="documents", new="Leitfaden 2027"),
        change(first, ChangeKind.DOCUMENTS_CHANGED, field="updates", new="Aktualizacja 3"),
        change(first, ChangeKind.REMOVED_FROM_SOURCE),
        change(first, ChangeKind.DETAILS_CHANGED, field="opening_date", old="2026-05-06T00:00:00Z",
               new="2026-06-01T00:00:00Z"),
        change(first, ChangeKind.DETAILS_CHANGED, field="opening_date", old=None, new="2026-06-01T00:00:00Z"),
        change(first, ChangeKind.DETAILS_CHANGED, field="deadline_model", old="dwuetapowy",
               new="jednoetapowy"),
        change(first, ChangeKind.DETAILS_CHANGED, field="action_type", old="IA", new="RIA"),
        change(first, ChangeKind.DETAILS_CHANGED, field="call_identifier", old="A-1", new="A-2"),
        change(first, ChangeKind.DETAILS_CHANGED, field="topic_identifier", old="B-1", new="B-2"),
        change(first, ChangeKind.DETAILS_CHANGED, field="url", old="https://a.invalid", new="https://b.invalid"),
    )
    moved = AlertItem(first, changes, REASONS, "wodor-profil")
    new = [AlertItem(second, (), REASONS, "wodor-profil"), AlertItem(second, (), REASONS, "drugi-profil")]
    closing = [AlertItem(third, (), REASONS, "wodor-profil")]
    opening = [AlertItem(second, (), REASONS, "wodor-profil")]
    daily = render_digest(changed=[moved], closing=closing, opening=opening, now=NOW, timezone=ZONE,
                          language=lang)
    weekly = render_digest(new=new, closing=closing, period="weekly", now=NOW, timezone=ZONE,
                           language=lang)
    many = [AlertItem(c, (), REASONS, p) for c in calls() for p in ("wodor-profil", "drugi-profil")]
    summary = render_summary(many, shown=1, now=NOW, timezone=ZONE, language=lang)
    summary_all = render_summary(many[:2], shown=5, now=NOW, timezone=ZONE, language=lang)
    # two days, one day and no day before the cut-off: each reminder's own wording
    reminders = [render_reminder(AlertItem(third, (), REASONS, "wodor-profil"), third.deadlines[0],
                                 now=NOW + timedelta(days=later), timezone=ZONE, language=lang)
                 for later in (0, 1, 2)]
    assert daily is not None and weekly is not None
    return [render_alert(moved, now=NOW, timezone=ZONE, language=lang),
            render_alert(AlertItem(second, (), REASONS, "wodor-profil"), now=NOW, timezone=ZONE,
                         language=lang),
            daily, weekly, summary, summary_all, *reminders]


def visible(message: Message) -> list[str]:
    """What a reader sees of a message in every form: subject, plain text with the email
    footer, the HTML (tags dropped, entities read) with its footer, Telegram, buttons."""
    text, page = with_footer(message.text, message.html, LINKS, message.language)
    _, no_links = with_footer(message.text, message.html, None, message.language)
    plain_text = with_footer(message.text, message.html, None, message.language)[0]
    return [message.subject, text, plain_text, *(_untagged(p) for p in (page, no_links)),
            *(_untagged(part) for part in message.telegram), *(b.label for b in message.buttons),
            *(str(item.get("why", "")) for section in message.document["sections"]
              for item in section["items"])]


def _untagged(markup: str) -> str:
    without = re.sub(r"<style.*?</style>|<[^>]+>", " ", markup, flags=re.DOTALL)
    return html.unescape(without)


_FIELD = re.compile(r"\{\w+\}|%\(\w+\)[sd]")


def english_left(texts: Iterable[str], lang: str) -> list[str]:
    """The literal pieces of the messages' English msgids found in ``texts``, except a piece
    the language's own translation of that msgid also has ("Status" is German too)."""
    catalog = i18n.read_catalog(lang)
    joined = "\n".join(texts)
    found: list[str] = []
    for msgid in message_msgids():
        english = [msgid] if isinstance(msgid, str) else list(msgid)
        entry = catalog.get(msgid if isinstance(msgid, str) else msgid[0])
        translated = "" if entry is None or entry.fuzzy else (
            entry.string if isinstance(entry.string, str) else " ".join(entry.string))
        for form in english:
            for piece in _FIELD.split(form):
                piece = piece.strip(" ;:,.()—→·-")
                if sum(ch.isalpha() for ch in piece) < 3 or _has(translated, piece):
                    continue
                if _has(joined, piece):
                    found.append(piece)
    return sorted(set(found))


def _has(text: str, piece: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(piece)}(?!\w)", text) is not None


@pytest.mark.parametrize("lang", FULL)
def test_every_message_kind_renders_with_no_english_left(lang: str) -> None:
    messages = renders(lang)
    assert {m.language for m in messages} == {lang}
    assert english_left((t for m in messages for t in visible(m)), lang) == []


@pytest.mark.parametrize("lang", FULL)
def test_the_check_finds_english_where_a_language_falls_back(lang: str) -> None:
    """A message string left untranslated is rendered as its English msgid (gettext's
    fallback): the English render, read against a catalog, is what that language would
    show with every entry empty, and the check reports it."""
    left = english_left((t for m in renders("en") for t in visible(m)), lang)
    assert {"New calls", "Open the call", "Manage your alerts", "grants expected",
            "in the title", "Why"} <= set(left)


@pytest.mark.parametrize(("lang", "expected"), [
    ("de", ["Status offen → angekündigt", "Frist 28. Jan. → 11. Feb. 2027", "Budget 3 Mio. € → 4,5 Mio. €",
            "3 Finanzhilfen erwartet", "verteilt auf 5 Themen", "Neue Aufrufe (1)",
            "Wöchentliche callwatch-Zusammenfassung, 25. Nov. 2026: 1 neu, 1 endet bald",
            "Aufruf öffnen", "Benachrichtigungen verwalten"]),
    ("pl", ["status otwarty → zapowiedziany", "termin 28 sty → 11 lut 2027", "budżet 3 mln € → 4,5 mln €",
            "przewidziane 3 dotacje", "przewidziana 1 dotacja", "podzielone na 5 tematów",
            "Nowe nabory (1)", "Cotygodniowe podsumowanie callwatch, 25 lis 2026: 1 nowy, "
            "1 wkrótce się zamyka", "Otwórz nabór", "Zarządzaj powiadomieniami"]),
    ("fr", ["statut ouvert → à venir", "date limite 28 janv. → 11 févr. 2027", "budget 3 M € → 4,5 M €",
            "3 subventions prévues", "1 subvention prévue", "réparti sur 5 sujets", "Nouveaux appels (1)",
            "Récapitulatif hebdomadaire callwatch, 25 nov. 2026 : 1 nouveau, 1 bientôt clôturé",
            "Ouvrir l’appel", "Gérer vos alertes"]),
    ("es", ["estado abierta → prevista", "fecha límite 28 ene → 11 feb 2027", "presupuesto 3 M € → 4,5 M €",
            "3 subvenciones previstas", "1 subvención prevista", "repartido entre 5 temas",
            "Nuevas convocatorias (1)", "Resumen semanal de callwatch, 25 nov 2026: 1 nueva, 1 cierra pronto",
            "Abrir la convocatoria", "Gestione sus alertas"]),
    ("it", ["stato aperto → di prossima apertura", "scadenza 28 gen → 11 feb 2027",
            "dotazione 3 Mln € → 4,5 Mln €", "3 sovvenzioni previste", "1 sovvenzione prevista",
            "ripartito su 5 temi", "Nuovi bandi (1)",
            "Riepilogo settimanale callwatch, 25 nov 2026: 1 nuovo, 1 in scadenza",
            "Apri il bando", "Gestisca i suoi avvisi"]),
    ("pt", ["estado aberto → previsto", "orçamento 3 M € → 4,5 M €", "3 subvenções previstas",
            "1 subvenção prevista", "repartido por 5 temas", "Novos concursos (1)",
            "Resumo semanal do callwatch", "1 novo, 1 a encerrar em breve", "Abrir o concurso",
            "Gerir os seus alertas"]),
    ("nl", ["status open → aangekondigd", "deadline 28 jan → 11 feb 2027", "budget € 3 mln. → € 4,5 mln.",
            "3 subsidies verwacht", "1 subsidie verwacht", "verdeeld over 5 topics", "Nieuwe oproepen (1)",
            "Wekelijks callwatch-overzicht, 25 nov 2026: 1 nieuw, 1 sluit binnenkort", "Oproep openen",
            "Uw meldingen beheren"]),
    ("cs", ["stav otevřená → připravovaná", "uzávěrka 28. 1. → 11. 2. 2027", "rozpočet 3 mil. € → 4,5 mil. €",
            "očekávány 3 granty", "očekáván 1 grant", "rozděleno mezi 5 témat", "Nové výzvy (1)",
            "Týdenní přehled callwatch, 25. 11. 2026: 1 nová, 1 brzy končí", "Otevřít výzvu",
            "Spravovat upozornění"]),
])
def test_dates_amounts_and_plurals_are_the_locales(lang: str, expected: list[str]) -> None:
    seen = "\n".join(t for m in renders(lang) for t in visible(m)).replace("\xa0", " ")
    for phrase in expected:
        assert phrase in seen, phrase


def test_polish_has_three_plural_forms_in_messages() -> None:
    days = [why_matched((), n, "pl")[-1].plain for n in (1, 3, 5, 22)]
    assert days == ["został 1 dzień", "zostały 3 dni", "zostało 5 dni", "zostały 22 dni"]


def test_czech_has_three_plural_forms_in_messages() -> None:
    days = [why_matched((), n, "cs")[-1].plain for n in (1, 3, 5, 22)]
    assert days == ["zbývá 1 den", "zbývají 3 dny", "zbývá 5 dní", "zbývá 22 dní"]


def test_english_stays_as_it_was() -> None:
    """English is the msgids, with callwatch's own dates and amounts ("Sep", "EUR 4.5 M")."""
    [alert, _, _, _, summary, *_] = renders("en")
    assert alert.language == "en"
    # grammar: one call shown in full is "the one", not "the 1 closing first"
    assert summary.subject == ("3 calls match wodor-profil, 3 match drugi-profil; "
                               "here is the one closing first")
    assert "deadline 28 Jan → 11 Feb 2027" in alert.text
    assert "budget EUR 3.0 M → 4.5 M" in alert.text
    assert '<html lang="en">' in alert.html
    assert "<html lang=\"de\">" in renders("de")[0].html


@pytest.mark.parametrize(("lang", "deadline", "why"), [("de", "Frist: ", "Warum: "),
                                                       ("pl", "Termin: ", "Dlaczego: ")])
def test_slack_and_teams_bodies_are_labelled_in_the_documents_language(
        lang: str, deadline: str, why: str) -> None:
    """The webhook document says its language; the bodies made from it at send time use it."""
    from notifiers.slack import slack_body
    from notifiers.teams import teams_body

    digest = renders(lang)[2]
    assert digest.document["language"] == lang
    for body in (json.dumps(slack_body(digest.document), ensure_ascii=False),
                 json.dumps(teams_body(digest.document), ensure_ascii=False)):
        assert deadline in body and why in body
        assert "Deadline: " not in body and "Why: " not in body


def test_a_long_telegram_digest_continues_in_its_language() -> None:
    """Split into several Telegram messages, each after the first says "(continued)" in
    the subscriber's language."""
    long_summary = "Wasserstoff " * 40
    items = [AlertItem(make_call(f"DLUGI-{n:02d}", title=f"Nabór {n}", summary=long_summary,
                                 programme="Horyzont"), (), REASONS, "wodor-profil")
             for n in range(40)]
    digest = render_digest(new=items, now=NOW, timezone=ZONE, language="pl")
    assert digest is not None and len(digest.telegram) > 1
    assert all(part.startswith("<i>(ciąg dalszy)</i>") for part in digest.telegram[1:])
