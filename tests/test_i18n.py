"""Translations and locale formatting (tracker/i18n.py, tracker/locale/).

The catalog test is generic: it extracts every marked message from the code and the
templates with babel.cfg, the way ``pybabel extract`` does, and checks each language's
catalog against them. So when a template string is wrapped in ``{% trans %}`` or a Python
string in ``_()``, this test fails until every language translates it, with the same
placeholders and markup. The formatting tests assert what Babel (CLDR) really writes.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.support import Translations

from tracker import i18n

REPO = Path(__file__).resolve().parent.parent
TRANSLATED = [lang for lang in i18n.LANGUAGES if lang != i18n.SOURCE_LANGUAGE]
BRUSSELS = ZoneInfo("Europe/Brussels")
CUTOFF = datetime(2027, 2, 11, 16, 0, tzinfo=UTC)  # 17:00 in Brussels (CET)


def extract(root: Path) -> set[str | tuple[str, str]]:
    """Every message marked under ``root``, read with the repository's babel.cfg."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    found: set[str | tuple[str, str]] = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(
            root, method_map, options_map):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


@cache
def source_messages() -> frozenset[str | tuple[str, str]]:
    return frozenset(extract(REPO))


#: The parts of the code a language may translate only in part (leaving English): the
#: messages' (tracker/delivery/) and the member pages' (tracker/web/), each with the
#: languages that must translate it in full. Everything else (the bot) every language must.
PARTIAL_AREAS = ((i18n.MESSAGE_SOURCES, i18n.MESSAGE_LANGUAGES),
                 (i18n.PAGE_SOURCES, i18n.PAGE_LANGUAGES))


@cache
def may_stay_english(lang: str, areas: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = PARTIAL_AREAS,
                     ) -> frozenset[str]:
    """The msgids ``lang`` may leave empty (English): those marked only in ``areas`` it is not
    complete in. A msgid the bot also marks, or an area ``lang`` is complete in, is required."""
    partial = tuple(prefix for sources, languages in areas if lang not in languages
                    for prefix in sources)
    required = {msgid for filename, msgid in _located() if not filename.startswith(partial)}
    return frozenset({msgid for _filename, msgid in _located()} - required)


@cache
def message_only_ids() -> frozenset[str]:
    """The msgids marked only in the messages' code and templates (tracker/delivery/), not
    also by the bot: what a language outside ``MESSAGE_LANGUAGES`` may leave in English."""
    elsewhere = {msgid for filename, msgid in _located() if not filename.startswith(
        i18n.MESSAGE_SOURCES)}
    return frozenset({msgid for _filename, msgid in _located()} - elsewhere)


@cache
def page_only_ids() -> frozenset[str]:
    """The msgids marked only in the member pages (tracker/web/), as message_only_ids."""
    elsewhere = {msgid for filename, msgid in _located() if not filename.startswith(
        i18n.PAGE_SOURCES)}
    return frozenset({msgid for _filename, msgid in _located()} - elsewhere)


@cache
def _located() -> frozenset[tuple[str, str]]:
    """(file, msgid) of every marked message."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    return frozenset((filename.replace("\\", "/"), message if isinstance(message, str) else message[0])
                     for filename, _line, message, _comments, _context in extract_from_dir(
                         REPO, method_map, options_map))


def ids(messages: object) -> set[str]:
    return {m if isinstance(m, str) else m[0] for m in messages}  # type: ignore[attr-defined]


# -- the catalogs ---------------------------------------------------------------------------

@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated_with_its_placeholders_and_tags(lang: str) -> None:
    """Every language translates every bot reply; the message languages (all of them today)
    also every string of the alerts and digests, and the page languages every string of the
    member pages, which a language outside them may leave empty (English)."""
    problems = i18n.catalog_problems(i18n.read_catalog(lang), source_messages())
    allowed = {f"untranslated: {msgid!r}" for msgid in may_stay_english(lang)}
    problems = [p for p in problems if p not in allowed]
    assert problems == [], (f"tracker/locale/{lang}/LC_MESSAGES/callwatch.po: run the commands in "
                            "docs/translations.md, then translate:\n" + "\n".join(problems))


def test_only_the_messages_strings_may_fall_back_to_english() -> None:
    """The allowance above covers the delivery strings alone: a bot reply is not in it."""
    assert "New calls" in message_only_ids()
    assert "Your next cut-off" not in message_only_ids()
    assert "today" not in message_only_ids()  # the bot uses it too, so every language has it
    assert set(i18n.MESSAGE_LANGUAGES) <= set(i18n.LANGUAGES)
    assert set(i18n.PAGE_LANGUAGES) <= set(i18n.LANGUAGES)
    # a language complete in neither area (a new one, before its translation is done)
    neither = ((i18n.MESSAGE_SOURCES, ()), (i18n.PAGE_SOURCES, ()))
    assert message_only_ids() | page_only_ids() <= may_stay_english("xx", neither)
    assert "Unsubscribe" in may_stay_english("xx", neither)  # marked by the messages and the pages alone
    assert "today" not in may_stay_english("xx", neither)
    # every language callwatch offers is complete in both: none may leave anything in English
    assert {lang: may_stay_english(lang) for lang in TRANSLATED} == {lang: frozenset() for lang in TRANSLATED}


def test_the_member_pages_strings_are_extracted_and_the_managers_are_not() -> None:
    """babel.cfg takes the member-facing pages (templates, handlers, the sign-up checks) and
    leaves the managers' pages (for cluster staff, in English) out."""
    files = {filename for filename, _msgid in _located() if filename.startswith(i18n.PAGE_SOURCES)}
    assert files == {f"tracker/web/{name}" for name in (
        "members_pages.py", "members.py", "language.py", "templates/base.html",
        "templates/join.html", "templates/join_confirm.html", "templates/join_sent.html",
        "templates/preferences.html", "templates/unsubscribe.html", "templates/notice.html",
        "templates/member_email_confirm.html", "templates/member_erase.html")}
    found = page_only_ids()
    assert {"Sign up", "Leave: end all my alerts", "Unsubscribe?", "Give a valid email address.",
            "Confirm your callwatch alerts", "Skip to the content"} <= found
    assert "Unsubscribe" not in found  # the messages' footer marks it too


def test_the_template_holds_exactly_the_marked_messages() -> None:
    with (REPO / "tracker" / "locale" / "callwatch.pot").open("rb") as handle:
        template = read_po(handle)
    assert ids(m.id for m in template if m.id) == ids(source_messages()), (
        "tracker/locale/callwatch.pot is stale: run `pybabel extract` as docs/translations.md says")


def test_the_bots_messages_are_marked() -> None:
    """Extraction finds the bot's replies, its constants (N_) and the plural forms."""
    found = source_messages()
    assert "This chat is not registered. Send /start first." in found  # N_ constant
    assert "Usage: /unsubscribe NAME" in found  # _() in a function
    assert ("Your next cut-off", "Your next {n} cut-offs") in found  # ngettext
    assert "register this chat" in found  # the command menu


def test_babel_cfg_extracts_trans_blocks_and_gettext_calls_from_templates(tmp_path: Path) -> None:
    """What a wrapped template will give: trimmed {% trans %} blocks with %(name)s fields."""
    templates = tmp_path / "tracker" / "delivery" / "templates" / "email"
    templates.mkdir(parents=True)
    (templates / "item.html").write_text(
        "{% trans title=item.title %}\n    New call:\n    {{ title }}\n{% endtrans %}\n"
        "{{ _('Open the call') }}\n"
        "{% trans count=n %}{{ count }} day left{% pluralize %}{{ count }} days left{% endtrans %}\n",
        encoding="utf-8")
    (templates.parent / "telegram").mkdir()
    (templates.parent / "telegram" / "item.j2").write_text("{% trans %}Budget{% endtrans %}",
                                                            encoding="utf-8")
    assert extract(tmp_path) == {"New call: %(title)s", "Open the call", "Budget",
                                 ("%(count)s day left", "%(count)s days left")}


def catalog(*entries: tuple[object, object, bool]) -> Catalog:
    made = Catalog(locale="pl_PL", domain=i18n.DOMAIN)
    for msgid, msgstr, fuzzy in entries:
        made.add(msgid, msgstr, flags=("fuzzy",) if fuzzy else ())  # type: ignore[arg-type]
    return made


def test_catalog_problems_finds_each_kind_of_mistake() -> None:
    """The check the catalog test relies on: each mistake is reported, a good entry is not."""
    good = ("You follow {n} profile.", "You follow {n} profiles.")
    wanted = ["<b>Profiles</b>", "Muted until {until}.", "Hello %(name)s", "fresh", "Guess", "Empty",
              good]
    problems = i18n.catalog_problems(catalog(
        ("<b>Profiles</b>", "Profile", False),                      # the tags are gone
        ("Muted until {until}.", "Wyciszono do {kiedy}.", False),  # a renamed field
        ("Hello %(name)s", "Cześć", False),                         # a dropped field
        ("Guess", "Zgadnij", True),                                 # fuzzy
        ("Empty", "", False),                                       # untranslated
        ("Old", "Stare", False),                                    # obsolete
        (good, ("Obserwujesz {n} profil.", "Obserwujesz {n} profile.", "Obserwujesz {n} profili."),
         False),
    ), wanted)
    assert [p.split(":")[0] for p in problems] == [
        "HTML tags [] differ from the msgid's ['</b>', '<b>']",
        "placeholders ['{kiedy}'] differ from the msgid's ['{until}']",
        "placeholders [] differ from the msgid's ['%(name)']",
        "fuzzy (a guess to check, then remove the flag)",
        "untranslated",
        "not used by the code (obsolete)",
        "missing",
    ]
    assert problems[-1] == "missing: 'fresh'"


def test_a_plural_form_that_drops_the_number_is_reported() -> None:
    entry = (("in {n} day", "in {n} days"), ("za {n} dzień", "za {n} dni", "za kilka dni"), False)
    [problem] = i18n.catalog_problems(catalog(entry), [entry[0]])  # type: ignore[list-item]
    assert problem.startswith("placeholders [] differ from the msgid's ['{n}']")


def test_placeholders_of_both_styles() -> None:
    assert i18n.placeholders("{a} and {b} {{literal}}") == Counter({"{a}": 1, "{b}": 1})
    assert i18n.placeholders("%(count)d days, %(title)s, 100%%") == Counter(
        {"%(count)": 1, "%(title)": 1})
    assert i18n.placeholders("a { b") == Counter({"{<unbalanced braces>}": 1})


# -- loading ------------------------------------------------------------------------------

def test_translations_fall_back_to_english() -> None:
    for lang in ("en", "xx", "", "klingon"):
        english = i18n.translations(lang)
        assert isinstance(english, Translations)
        assert english.gettext("This button no longer works.") == "This button no longer works."
        assert english.ngettext("in {n} day", "in {n} days", 2) == "in {n} days"
    german = i18n.translations("de")
    assert german.gettext("This button no longer works.") == "Diese Schaltfläche funktioniert nicht mehr."
    assert german.gettext("a message no catalog has") == "a message no catalog has"
    assert i18n.translations("de") is german  # compiled once


def test_a_fuzzy_entry_is_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    po = tmp_path / "de" / "LC_MESSAGES" / "callwatch.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  '#, fuzzy\nmsgid "today"\nmsgstr "gestern"\n\nmsgid "tomorrow"\nmsgstr "morgen"\n',
                  encoding="utf-8")
    monkeypatch.setattr(i18n, "catalog_path", lambda lang: tmp_path / lang / "LC_MESSAGES" / "callwatch.po")
    i18n.translations.cache_clear()
    try:
        assert i18n.translations("de").gettext("today") == "today"
        assert i18n.translations("de").gettext("tomorrow") == "morgen"
    finally:
        i18n.translations.cache_clear()


def test_normalize_reads_telegram_language_tags() -> None:
    assert [i18n.normalize(code) for code in ("de", "pt-br", "PL", "en_GB", " fr ", "uk", None, "")] == [
        "de", "pt", "pl", "en", "fr", None, None, None]
    assert i18n.language_or_default("uk") == "en"


def test_every_language_has_its_own_name_and_plural_rules() -> None:
    assert [i18n.language_name(lang) for lang in i18n.LANGUAGES] == [
        "English", "Deutsch", "français", "español", "italiano", "polski", "português",
        "Nederlands", "čeština"]
    for lang in TRANSLATED:
        assert i18n.read_catalog(lang).num_plurals == (3 if lang in ("pl", "cs", "fr", "es", "it", "pt")
                                                       else 2)


def test_importing_i18n_does_not_load_jinja() -> None:
    """``LANGUAGES`` is read wherever a subscriber file is (``callwatch subscribers check``):
    Jinja is loaded where an environment is made, not with the module."""
    probe = "import sys, tracker.i18n; print('jinja2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,  # noqa: S603
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
    assert i18n.jinja_environment("cs").from_string("{{ _('today') }}").render() == "dnes"


# -- formatting: what Babel writes for each locale -------------------------------------------

@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "11 Feb 2027, 17:00 CET"),
    ("de", "11. Feb. 2027, 17:00 CET"),
    ("fr", "11 févr. 2027, 17:00 CET"),
    ("es", "11 feb 2027, 17:00 CET"),
    ("it", "11 feb 2027, 17:00 CET"),
    ("pl", "11 lut 2027, 17:00 CET"),
    ("pt", "11/02/2027, 17:00 CET"),
    ("nl", "11 feb 2027, 17:00 CET"),
    ("cs", "11. 2. 2027 17:00 CET"),
])
def test_format_datetime_in_the_readers_zone(lang: str, expected: str) -> None:
    assert i18n.format_datetime(CUTOFF, lang, BRUSSELS) == expected


def test_format_datetime_follows_summer_time_and_the_zone() -> None:
    summer = datetime(2027, 6, 30, 15, 0, tzinfo=UTC)
    assert i18n.format_datetime(summer, "de", "Europe/Brussels") == "30. Juni 2027, 17:00 CEST"
    assert i18n.format_datetime(summer, "pt", "Europe/Lisbon") == "30/06/2027, 16:00 WEST"
    assert i18n.format_date(datetime(2027, 2, 11, 23, 30, tzinfo=UTC), "fr", BRUSSELS) == "12 févr. 2027"
    assert i18n.format_date(date(2027, 3, 1), "pl") == "1 mar 2027"
    with pytest.raises(ValueError, match="naive"):
        i18n.format_datetime(datetime(2027, 2, 11, 16, 0), "en", BRUSSELS)  # noqa: DTZ001


def nb(text: str) -> str:
    """Babel's spaces in numbers and amounts: "_" a no-break space, "~" a narrow one."""
    return text.replace("_", "\u00a0").replace("~", "\u202f")


@pytest.mark.parametrize(("lang", "twenty_million", "four_and_a_half_million", "quarter_million"), [
    ("en", "€20M", "€4.5M", "€250,000"),
    ("de", "20_Mio._€", "4,5_Mio._€", "250.000_€"),
    ("fr", "20_M_€", "4,5_M_€", "250~000_€"),
    ("es", "20_M_€", "4,5_M_€", "250.000_€"),
    ("it", "20_Mln_€", "4,5_Mln_€", "250.000_€"),
    ("pl", "20_mln_€", "4,5_mln_€", "250_000_€"),
    ("pt", "20_M_€", "4,5_M_€", "250_000_€"),
    ("nl", "€_20_mln.", "€_4,5_mln.", "€_250.000"),
    ("cs", "20_mil._€", "4,5_mil._€", "250_000_€"),
])
def test_format_money(lang: str, twenty_million: str, four_and_a_half_million: str,
                      quarter_million: str) -> None:
    """Short from a million, in full below; the number never parted from its unit."""
    assert i18n.format_money(20_000_000, lang) == nb(twenty_million)
    assert i18n.format_money(4_500_000, lang) == nb(four_and_a_half_million)
    assert i18n.format_money(250_000, lang) == nb(quarter_million)
    assert i18n.format_money(None, lang) == ""


def test_format_money_billions_and_small_amounts() -> None:
    assert i18n.format_money(1_234_000_000, "de") == nb("1,2_Mrd._€")
    assert i18n.format_money(900, "fr") == nb("900_€")
    assert i18n.format_money(900, "en") == "€900"


def test_format_number_and_lists() -> None:
    assert [i18n.format_number(1234567.5, lang) for lang in ("en", "de", "fr", "cs")] == [
        "1,234,567.5", "1.234.567,5", nb("1~234~567,5"), nb("1_234_567,5")]
    assert i18n.format_list(["a", "b", "c"], "de") == "a, b und c"
    assert i18n.format_list(["a", "b"], "pl", "or") == "a lub b"
    assert i18n.format_list(["a", "b"], "en", "or") == "a or b"


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", ["today", "tomorrow", "in 2 days", "in 5 days", "in 22 days", "passed yesterday",
            "passed 3 days ago"]),
    ("de", ["heute", "morgen", "in 2 Tagen", "in 5 Tagen", "in 22 Tagen", "gestern abgelaufen",
            "vor 3 Tagen abgelaufen"]),
    ("pl", ["dzisiaj", "jutro", "za 2 dni", "za 5 dni", "za 22 dni", "minął wczoraj",
            "minął 3 dni temu"]),
    ("cs", ["dnes", "zítra", "za 2 dny", "za 5 dní", "za 22 dní", "uplynula včera",
            "uplynula před 3 dny"]),
])
def test_days_left_in_words_with_each_languages_plurals(lang: str, expected: list[str]) -> None:
    assert [i18n.describe_days(days, lang) for days in (0, 1, 2, 5, 22, -1, -3)] == expected


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_a_sample_message_renders_in_every_language(lang: str) -> None:
    """A translated message filled with Babel's formatting: no field left, the date written
    the locale's way, and (but for English) not the English text."""
    t = i18n.translations(lang)
    until = i18n.format_datetime(CUTOFF, lang, BRUSSELS)
    muted = t.gettext("Muted until {until}. Alerts in that time are skipped, not saved for later. "
                      "Send /mute 0 to end it sooner.").format(until=until)
    heading = t.ngettext("Your next cut-off", "Your next {n} cut-offs", 3).format(n=3)
    days = i18n.describe_days(5, lang)
    for text in (muted, heading, days):
        assert "{" not in text and "}" not in text
    assert until in muted and "3" in heading and "5" in days
    assert (muted.startswith("Muted until")) == (lang == "en")


# -- Jinja ----------------------------------------------------------------------------------

def test_jinja_environment_translates_trans_blocks_gettext_and_filters() -> None:
    env = i18n.jinja_environment("de")
    assert i18n.jinja_environment("de") is env and i18n.jinja_environment("fr") is not env
    template = env.from_string(
        "{{ _('today') }}|{% trans %}\n   tomorrow\n{% endtrans %}|{{ when|datetime(zone) }}|"
        "{{ day|date }}|{{ amount|money }}|{{ 1234.5|number }}|{{ language }}")
    assert template.render(when=CUTOFF, zone=BRUSSELS, day=date(2027, 2, 11), amount=4_500_000) == (
        nb("heute|morgen|11. Feb. 2027, 17:00 CET|11. Feb. 2027|4,5_Mio._€|1.234,5|de"))


def test_jinja_new_style_gettext_escapes_its_fields_in_an_autoescaping_environment() -> None:
    env = i18n.jinja_environment("en")
    rendered = env.from_string("{{ _('Open %(title)s', title=title) }}").render(title="<script>")
    assert rendered == "Open &lt;script&gt;"


def plain_text_environment() -> jinja2.Environment:
    return jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)  # noqa: S701


def test_jinja_environment_keeps_the_factorys_settings() -> None:
    env = i18n.jinja_environment("pl", plain_text_environment)
    assert env is i18n.jinja_environment("pl", plain_text_environment)
    assert env.from_string("{{ _('tomorrow') }} <{{ x }}>").render(x="b") == "jutro <b>"


# -- a subscriber file's language -------------------------------------------------------------

def test_a_subscriber_file_in_a_language_callwatch_does_not_write_is_refused(tmp_path: Path) -> None:
    """Before, any two letters were accepted and then ignored (English was sent)."""
    from tracker.delivery.subscribers import read_subscribers

    text = ("name: ana\nlanguage: {}\nchannels:\n  email: ana@example.org\n"
            "subscriptions:\n  - profile: hydrogen-valley\n")
    (tmp_path / "ana.yaml").write_text(text.format("pl"), encoding="utf-8")
    [subscriber], problems = read_subscribers([tmp_path])
    assert (subscriber.language, problems) == ("pl", [])
    (tmp_path / "ana.yaml").write_text(text.format("xx"), encoding="utf-8")
    _, [problem] = read_subscribers([tmp_path])
    assert (problem.field, problem.line) == ("language", 2)
    assert problem.message.endswith(
        "callwatch does not write in 'xx' (languages: en, de, fr, es, it, pl, pt, nl, cs)")


def test_percent_signs_in_templates_as_docs_translations_md_says() -> None:
    """A plain % inside {% trans %}; %% inside _() (new-style gettext always applies %)."""
    env = i18n.jinja_environment("en")
    rendered = env.from_string(
        "{% trans title=t %}{{ title }} is 100% funded{% endtrans %}|{{ _('100%% of %(x)s', x=t) }}"
        "|{% trans count=2 %}{{ count }} grant expected{% pluralize %}{{ count }} grants expected"
        "{% endtrans %}").render(t="<x>")
    assert rendered == "&lt;x&gt; is 100% funded|100% of &lt;x&gt;|2 grants expected"
    with pytest.raises(ValueError, match="incomplete format"):
        env.from_string("{{ _('100%') }}").render()
