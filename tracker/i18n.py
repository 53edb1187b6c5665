"""What a subscriber reads, in their language: gettext catalogs and Babel's formatting.

Messages are written in English in the code and the templates and marked for translation
(``_("…")`` in Python, ``{% trans %}`` or ``_("…")`` in Jinja); Babel extracts them into
``tracker/locale/callwatch.pot`` and the translators' catalogs live beside it as
``tracker/locale/<lang>/LC_MESSAGES/callwatch.po`` (docs/translations.md has the maintainer
commands). English is the source language: it has no catalog, its messages are the msgids.

The ``.po`` files are the only form kept. A language's catalog is compiled in memory the
first time it is used (Babel's ``read_po`` and ``write_mo``, a few milliseconds for a
catalog of this size) and kept for the life of the process: no build step and no committed
binary can be out of date with its ``.po``, a wheel carries the ``.po`` as package data,
an editable checkout reads them where they are, and nothing needs the network. Fuzzy
entries (a translation Babel guessed after a msgid changed) are left out, so a guess is
never shown; ``tests/test_i18n.py`` fails on them.

Formatting follows the language's Babel locale (``LOCALES``): English is Ireland's (the
EU's English: day before month, 24-hour clock, the euro at home) and Portuguese is
Portugal's. Times carry the zone's abbreviation from the time-zone database (CET, CEST),
the form deadlines are published in across languages. Pure: everything here takes its
data and returns text.
"""

from __future__ import annotations

import functools
import io
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from importlib import resources
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton, format_time, get_datetime_format
from babel.lists import format_list as babel_format_list
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_compact_currency, format_currency, format_decimal
from babel.support import Translations

from tracker.dates import to_utc

if TYPE_CHECKING:  # Jinja is imported where an environment is made: LANGUAGES is read
    import jinja2  # by every command that loads the subscriber files

#: The gettext domain: tracker/locale/<lang>/LC_MESSAGES/callwatch.po
DOMAIN = "callwatch"
#: The language the code and templates are written in; it has no catalog.
SOURCE_LANGUAGE = "en"
#: Every language a subscriber may choose, English first (ISO 639-1 codes).
LANGUAGES = ("en", "de", "fr", "es", "it", "pl", "pt", "nl", "cs")
#: The languages whose catalogs translate the messages too (alerts, digests, summaries,
#: reminders: tracker/delivery/), not only the bot. In the others a message string not yet
#: translated is written in English (gettext's fallback to the msgid); tests/test_i18n.py
#: holds these to every message and the others to every bot reply. Every language is complete
#: today; a new one starts outside (docs/translations.md, "To complete a language").
MESSAGE_LANGUAGES = ("en", "de", "fr", "es", "it", "pl", "pt", "nl", "cs")
#: Where the strings of the messages are marked (what MESSAGE_LANGUAGES must translate).
MESSAGE_SOURCES = ("tracker/delivery/",)
#: The languages whose catalogs translate the member-facing web pages in full (sign-up, its
#: confirmation email, preferences, unsubscribe). In the others a page string not yet
#: translated shows in English, as a message string does; the pages' language lists say so.
PAGE_LANGUAGES = ("en", "de", "fr", "es", "it", "pl", "pt", "nl", "cs")
#: Where the member pages' strings are marked (what PAGE_LANGUAGES must translate): babel.cfg
#: extracts only the member-facing files here; the managers' pages stay English.
PAGE_SOURCES = ("tracker/web/",)
#: The Babel locale that formats dates, numbers and money for each language.
LOCALES = {"en": "en_IE", "de": "de_DE", "fr": "fr_FR", "es": "es_ES", "it": "it_IT",
           "pl": "pl_PL", "pt": "pt_PT", "nl": "nl_NL", "cs": "cs_CZ"}
#: Amounts from this one up are written short ("4,6 Mio. €"); below it in full ("250.000 €").
COMPACT_FROM = 1_000_000


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (a constant translated at use)."""
    return message


def normalize(code: str | None) -> str | None:
    """The supported language a code means ("de", "pt-BR", "PL", "en_GB"), or None.

    Telegram gives a user's language as an IETF tag; only its language part is used.
    """
    if not code:
        return None
    language = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return language if language in LANGUAGES else None


def language_or_default(code: str | None) -> str:
    """The supported language ``code`` means, else the source language (English)."""
    return normalize(code) or SOURCE_LANGUAGE


def locale(lang: str) -> Locale:
    """The Babel locale of a language (English's for an unsupported one)."""
    return _locale(language_or_default(lang))


@functools.cache
def _locale(lang: str) -> Locale:
    return Locale.parse(LOCALES[lang])


def language_name(lang: str) -> str:
    """The language's own name for itself ("Deutsch", "polski"), for lists people choose from."""
    language = language_or_default(lang)
    return _locale(language).get_language_name() or language


def catalog_path(lang: str) -> resources.abc.Traversable:
    """Where a language's ``.po`` file is, in a checkout or an installed wheel."""
    return resources.files("tracker") / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(lang: str) -> Catalog:
    """A language's catalog as Babel reads it (fuzzy entries included: tests look at them)."""
    with catalog_path(lang).open("rb") as handle:
        return read_po(handle, locale=LOCALES[lang], domain=DOMAIN)


@functools.cache
def translations(lang: str) -> Translations:
    """The translations of a language, compiled from its ``.po`` on first use and kept.

    An unsupported language, and English, give the messages as written (English). A
    message missing from a catalog also falls back to its English msgid, as gettext does.
    """
    language = language_or_default(lang)
    if language == SOURCE_LANGUAGE:
        catalog = Catalog(locale=LOCALES[language], domain=DOMAIN)
    else:
        catalog = read_catalog(language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


# -- formatting ---------------------------------------------------------------------------

def format_date(value: date | datetime, lang: str, zone: ZoneInfo | None = None) -> str:
    """A day with the month's short name: "11 Feb 2027", "11. Feb. 2027", "11 févr. 2027".

    A datetime is read in ``zone`` (it must be aware); a date is taken as it is.
    """
    if isinstance(value, datetime):
        value = to_utc(value).astimezone(zone).date() if zone else value.date()
    return format_skeleton("yMMMd", value, locale=locale(lang))


def format_day_month(value: date, lang: str) -> str:
    """A day without its year, the first of a range whose second gives it: "12 Mar",
    "12. März", "12 mar"."""
    return format_skeleton("MMMd", value, locale=locale(lang))


def format_datetime(value: datetime, lang: str, zone: ZoneInfo | str) -> str:
    """A moment in the reader's zone: "11 févr. 2027, 17:00 CET", "11. Feb. 2027, 17:00 CET".

    The date and the time are joined the locale's way; the zone is its abbreviation from
    the time-zone database (what the portal publishes), not a localized zone name.
    """
    local = to_utc(value).astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone)
    where = locale(lang)
    joined = str(get_datetime_format("medium", locale=where)).format(
        format_time(local, "HH:mm", locale=where), format_date(local.date(), lang))
    return f"{joined} {local.tzname()}"


def format_money(amount: int | None, lang: str, currency: str = "EUR") -> str:
    """An amount as the locale writes it: short from a million ("20 Mio. €", "4,6 M €",
    "€4.6M", "1,2 mld €"), in full below ("250.000 €", "€900"); "" when unknown."""
    if amount is None:
        return ""
    where = locale(lang)
    if abs(amount) >= COMPACT_FROM:
        return format_compact_currency(amount, currency, locale=where, fraction_digits=1)
    whole = where.currency_formats["standard"].pattern.replace(".00", "")
    return format_currency(amount, currency, format=whole, locale=where, currency_digits=False)


def format_number(value: float, lang: str) -> str:
    """A number as the locale writes it: "1,234.5", "1.234,5", "1 234,5"."""
    return format_decimal(value, locale=locale(lang))


#: how a list is joined: "a, b and c" (standard), "a, b or c" (or)
ListStyle = Literal["standard", "or"]


def format_list(items: Sequence[str], lang: str, style: ListStyle = "standard") -> str:
    """Items joined the language's way: "a, b and c", "a, b und c", "a lub b" (style "or")."""
    return babel_format_list(list(items), style=style, locale=locale(lang))


def describe_days(days: int, lang: str) -> str:
    """Days to a cut-off in words: "today", "tomorrow", "in 6 days", "passed 3 days ago"."""
    t = translations(lang)
    if days < -1:
        return t.ngettext("passed {n} day ago", "passed {n} days ago", -days).format(n=-days)
    if days == -1:
        return t.gettext("passed yesterday")
    if days == 0:
        return t.gettext("today")
    if days == 1:
        return t.gettext("tomorrow")
    return t.ngettext("in {n} day", "in {n} days", days).format(n=days)


# -- checking catalogs ---------------------------------------------------------------------

_PRINTF = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifr]")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def placeholders(text: str) -> Counter[str]:
    """The fields a message is formatted with, each as it is written: ``{name}`` (str.format,
    the Python side) and ``%(name)s`` (Jinja's ``{% trans %}`` and new-style ``_()``)."""
    found: Counter[str] = Counter(f"%({name})" for name in _PRINTF.findall(text))
    try:
        fields = [field for _text, field, _spec, _conv in string.Formatter().parse(text)
                  if field is not None]
    except ValueError:  # an unbalanced brace: counted as a field of its own, so it differs
        fields = ["<unbalanced braces>"]
    found.update(f"{{{field}}}" for field in fields)
    return found


def tags(text: str) -> Counter[str]:
    """The HTML tags in a message (``<b>``, ``</b>``, ``<a href="%(url)s">``): a translation
    keeps the markup of its msgid, whatever words it puts between."""
    return Counter(_TAG.findall(text))


def catalog_problems(catalog: Catalog, msgids: Iterable[str | tuple[str, str]]) -> list[str]:
    """What is wrong with a translated catalog, given the messages the code uses: one line
    each for a message missing, untranslated (an empty form) or fuzzy, a translation whose
    placeholders or tags differ from its msgid's, and a translated message no code uses.

    Plural forms: the first (``n == 1`` in every language here) is compared with the msgid,
    the others with the plural msgid. Empty when all is well.
    """
    wanted = {msgid if isinstance(msgid, str) else msgid[0]: msgid for msgid in msgids}
    problems: list[str] = []
    present: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        present.add(key)
        if key not in wanted:
            problems.append(f"not used by the code (obsolete): {key!r}")
            continue
        forms, sources = _forms(message.string), _forms(message.id)
        if message.fuzzy:
            problems.append(f"fuzzy (a guess to check, then remove the flag): {key!r}")
        if not all(forms):
            problems.append(f"untranslated: {key!r}")
            continue
        for index, form in enumerate(forms):
            source = sources[min(index, len(sources) - 1)]
            if placeholders(form) != placeholders(source):
                problems.append(f"placeholders {sorted(placeholders(form))} differ from the msgid's "
                                f"{sorted(placeholders(source))}: {key!r} → {form!r}")
            if tags(form) != tags(source):
                problems.append(f"HTML tags {sorted(tags(form))} differ from the msgid's "
                                f"{sorted(tags(source))}: {key!r} → {form!r}")
    problems += [f"missing: {key!r}" for key in sorted(set(wanted) - present)]
    return problems


def _forms(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A message's id or string as its forms (one, or one per plural form)."""
    if value is None or isinstance(value, str):
        return (value or "",)
    return tuple(form or "" for form in value)


# -- Jinja --------------------------------------------------------------------------------

def install_jinja(env: jinja2.Environment, lang: str) -> jinja2.Environment:
    """Make ``env`` speak ``lang``: ``{% trans %}``, ``_()``, ``gettext``/``ngettext`` with
    the language's catalog (new-style: ``_("… %(name)s", name=x)``, escaped in autoescaping
    environments), and the filters ``date``, ``datetime(zone)``, ``money``, ``number``.

    Every ``{% trans %}`` block is trimmed (whitespace and newlines folded), so a msgid does
    not depend on a template's indentation; babel.cfg extracts with the same rule.
    """
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["date"] = lambda value, zone=None: format_date(value, lang, zone)
    env.filters["datetime"] = lambda value, zone: format_datetime(value, lang, zone)
    env.filters["money"] = lambda amount: format_money(amount, lang)
    env.filters["number"] = lambda value: format_number(value, lang)
    env.globals["language"] = language_or_default(lang)
    return env


def _plain_environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


@functools.cache
def jinja_environment(lang: str,
                      factory: Callable[[], jinja2.Environment] = _plain_environment,
                      ) -> jinja2.Environment:
    """A Jinja environment for ``lang``, made by ``factory`` and kept per (language, factory).

    ``factory`` builds the environment without translations (loader, escaping, filters);
    pass a module-level function, one per kind of environment, so the cache finds it again
    (a new ``lambda`` or ``partial`` each call would make a new environment each time).
    """
    return install_jinja(factory(), language_or_default(lang))
