"""The language of a web page: chosen per request, translated with the messages' catalogs.

The member-facing pages (sign-up, preferences, unsubscribe) speak the member's language
with the same gettext catalogs as the bot and the messages (``tracker.i18n``). The web app
has one Jinja environment for every page; :func:`install` gives it ``_``/``gettext``/
``ngettext`` that read the ``language`` the handler put in the page's context (English
when there is none: the managers' pages), so no environment is made per language and a
template marks its text once for every language.

babel.cfg extracts the member pages' strings (and only theirs: the managers' pages are for
cluster staff and stay English). Every language translates them in full today
(``tracker.i18n.PAGE_LANGUAGES``); in a language outside it (a new one, while its
translation is under way) a string not yet translated shows in English, and
:func:`choices`, the pages' language list, says so beside it.

Which language (:func:`pick`): the one the request names (a form's or the URL's
``lang``), else the subscriber's, else the best of the browser's ``Accept-Language``
that callwatch writes in, else English.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.i18n import (
    LANGUAGES,
    MESSAGE_LANGUAGES,
    N_,
    PAGE_LANGUAGES,
    SOURCE_LANGUAGE,
    language_name,
    normalize,
    translations,
)

if TYPE_CHECKING:
    import jinja2

#: A language whose pages or messages are not translated in full, as the language lists
#: name it (in the page's language): choosing it must not promise more than it gives.
PARTLY_ENGLISH = N_("{language} (partly in English)")


def _language(context: jinja2.runtime.Context) -> str:
    value: Any = context.get("language")
    return value if isinstance(value, str) and value in LANGUAGES else SOURCE_LANGUAGE


def install(environment: jinja2.Environment) -> None:
    """``{% trans %}`` and ``_()`` in ``environment``, in the language of each page's context."""
    import jinja2

    @jinja2.pass_context
    def gettext(context: jinja2.runtime.Context, message: str) -> str:
        return translations(_language(context)).gettext(message)

    @jinja2.pass_context
    def ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
        return translations(_language(context)).ngettext(singular, plural, n)

    environment.add_extension("jinja2.ext.i18n")
    environment.policies["ext.i18n.trimmed"] = True  # as tracker.i18n and babel.cfg extract
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]  # added by the i18n extension
    environment.globals["language_choices"] = jinja2.pass_context(_language_choices)


def complete(lang: str) -> bool:
    """Whether a member reads ``lang`` throughout: these pages and the messages they choose."""
    return lang in PAGE_LANGUAGES and lang in MESSAGE_LANGUAGES


def choices(page_language: str) -> list[tuple[str, str]]:
    """(code, label) of every language, each in its own name ("Deutsch", "polski"); one not
    translated in full says so in the page's language ("français (teilweise auf Englisch)")."""
    partly = translations(page_language).gettext(PARTLY_ENGLISH)
    return [(code, language_name(code) if complete(code) else
             partly.format(language=language_name(code))) for code in LANGUAGES]


def _language_choices(context: jinja2.runtime.Context) -> list[tuple[str, str]]:
    return choices(_language(context))


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (``de-AT,de;q=0.9,en;q=0.5``), or None."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = normalize(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else None


def pick(asked: str | None, subscriber: str | None, accept_language: str | None) -> str:
    """The page's language: asked for, else the subscriber's, else the browser's, else English."""
    return (normalize(asked) or normalize(subscriber) or from_accept_language(accept_language)
            or SOURCE_LANGUAGE)
