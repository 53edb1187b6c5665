"""The member-facing pages: sign-up with double opt-in, preferences, one-click unsubscribe.

- ``GET|POST /t/<tenant>/join``: the sign-up form; a POST (CSRF-checked, rate-limited like
  sign-in) sends one email and answers the same page whoever the address belongs to;
- ``GET|POST /t/<tenant>/join/<token>``: the confirmation link shows a button (mail
  scanners fetch links: a GET never subscribes); its POST makes the member
  (``tracker.web.members.confirm``) and leads to their preferences;
- ``GET|POST /manage/<token>``, ``POST /manage/<token>/leave``: the preferences page of
  every message's footer (CSRF-checked forms);
- ``POST /manage/<token>/email``: a new email address; its mailbox gets a signed link
  (``GET|POST /email-change/<signed>``: a button, then the change, a new consent record
  and a notice to the old address); the page answers the same whether or not the new
  address is a member already, and nothing changes before the new mailbox confirms;
- ``GET|POST /manage/<token>/erase``: a confirm step, then erasure (GDPR art. 17,
  ``tracker.delivery.erasure``); a subscriber from a file is told to ask their manager;
- ``GET|POST /unsubscribe/<token>``: a confirm button, and the RFC 8058 one-click target
  (``tracker.delivery.unsubscribe``): a POST ends that subscription at once. It needs no
  CSRF token, because mail programs POST it straight from the ``List-Unsubscribe`` header,
  and the token in the URL is the secret a forger would need anyway.

An unknown token gets the site's 404 page, like any URL that does not exist. Emails go
through the email channel (``notifiers.email``, found through the plugin registry as the
core finds every channel), to the SMTP server of ``[notifiers.email]``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tracker.delivery import unsubscribe
from tracker.errors import CallwatchError
from tracker.i18n import N_, format_datetime, translations
from tracker.web import language, members
from tracker.web.app import Pages
from tracker.web.security import SignInLimiter

log = logging.getLogger(__name__)

MODE_LABELS = {"instant": N_("Instant alerts"), "daily": N_("Daily digest"),
               "weekly": N_("Weekly digest"), members.OFF: N_("Nothing")}
#: how a member page answers a form that fails its CSRF check (``tracker.web.app.EXPIRED_FORM``,
#: the managers' English, marked here for the member's language)
EXPIRED_FORM = N_("This form has expired or did not come from this site: go back, reload the "
                  "page and try again.")
#: why the preferences page cannot erase a subscriber from a file (the next cycle re-creates it)
FILE_KEPT = N_("Your cluster manager keeps your alerts in a subscriber file, which would bring "
               "them back: ask them to remove you from the file and to erase your data.")
MUTE_LABELS = {"": N_("Keep as it is"), "0": N_("Not muted"), "24": N_("Mute for a day"),
               "168": N_("Mute for a week"), "720": N_("Mute for 30 days")}


def join_url(tenant: str) -> str:
    return f"/t/{quote(tenant, safe='')}/join"


def manage_url(token: str) -> str:
    return unsubscribe.MANAGE_PATH.format(token=quote(token, safe=""))


def email_change_url(token: str) -> str:
    return f"/email-change/{quote(token, safe='')}"


def unsubscribe_url(token: str) -> str:
    return unsubscribe.UNSUBSCRIBE_PATH.format(token=quote(token, safe=""))


def _zone(name: str) -> ZoneInfo:
    """The member's time zone, UTC for a name the zone database does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _fields(form: FormData) -> dict[str, str]:
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class MemberPages:
    """The handlers, over the web app's ``Pages`` (engine, clock, templates, CSRF)."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.links = members.ConfirmationLinks(pages.secret)
        self.limiter = SignInLimiter()

    # -- helpers -------------------------------------------------------------------------

    def language(self, request: Request, subscriber: str | None = None,
                 form: Mapping[str, str] | None = None) -> str:
        asked = (form or {}).get("language") or request.query_params.get("lang")
        return language.pick(asked, subscriber, request.headers.get("accept-language"))

    def page(self, request: Request, lang: str, name: str, status_code: int = 200,
             form: bool = False, **context: Any) -> Response:
        context.update(language=lang, mode_labels=MODE_LABELS, join_url=join_url,
                       manage_url=manage_url, unsubscribe_url=unsubscribe_url)
        render = self.pages.form_page if form else self.pages.render
        response = render(request, name, status_code, **context)
        # Referrer-Policy stays the site's same-origin: the token in the URL never leaves
        # for another site, and no-referrer would make Chromium send "Origin: null" with the
        # forms, which the CSRF check refuses
        response.headers["Cache-Control"] = "no-store"
        return response

    def notice(self, request: Request, lang: str, title: str, message: str,
               status_code: int = 200, back: str = "/") -> Response:
        _ = translations(lang).gettext
        return self.page(request, lang, "notice.html", status_code, title=_(title),
                         message=_(message), back=back)

    def expired_form(self, request: Request, lang: str, back: str) -> Response:
        return self.notice(request, lang, N_("Form expired"), EXPIRED_FORM, 403, back)

    def not_found(self, request: Request, lang: str) -> Response:
        return self.notice(request, lang, N_("Not found"), N_("There is no page at this address."),
                           404)

    def base_url(self, request: Request) -> str:
        """Where links in emails lead: ``web.public_url``, else this request's own site."""
        settings = self.pages.settings
        public = settings.web.public_url if settings is not None else ""
        return (public or str(request.base_url)).rstrip("/")

    def email_enabled(self) -> bool:
        settings = self.pages.settings
        return settings is not None and bool(settings.notifiers.channel("email").enabled)

    async def send_email(self, to: str, lang: str, subject: str, text: str, html: str) -> bool:
        """Send one email in ``lang`` through the email channel (its footer, added at send
        time, follows ``Message.language``); False (logged) when it cannot."""
        from tracker.plugins import channel_plugins
        from tracker.ports import Message, Recipient

        settings = self.pages.settings
        if settings is None:
            return False
        notifier = channel_plugins()["email"].create(settings.notifiers.channel("email"),
                                                     os.environ)
        if notifier is None:
            return False
        message = Message(kind="notice", subject=subject, text=text, html=html,
                          telegram=(text,), document={}, date=self.pages.clock(), language=lang)
        try:
            await notifier.send(Recipient(address=to), message)
        except CallwatchError as exc:
            log.warning("channel=email member email not sent: %s", exc)
            return False
        finally:
            await notifier.aclose()
        return True

    # -- sign-up ---------------------------------------------------------------------------

    def join_form(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        offered = members.offered_profiles(self.pages.engine, tenant)
        lang = self.language(request)
        if offered is None:
            return self.not_found(request, lang)
        return self.join_page(request, lang, tenant, offered, {}, [], [])

    def join_page(self, request: Request, lang: str, tenant: str, offered: list[str],
                  values: Mapping[str, str], chosen: list[str], problems: list[str],
                  status_code: int = 200) -> Response:
        return self.page(
            request, lang, "join.html", status_code, form=True, tenant=tenant, offered=offered,
            values=values, chosen=chosen, problems=problems, zones=members.zone_choices(),
            default_zone=members.DEFAULT_ZONE, modes=members.MODES, open=self.email_enabled(),
            consent=members.consent_text(tenant, lang))

    async def join(self, request: Request) -> Response:
        """Check the form, the rate limit and the values; then one email, and the same
        answer whether or not the address is a member already."""
        tenant = request.path_params["tenant"]
        form = await request.form()
        values = _fields(form)
        chosen = [p for p in form.getlist("profile") if isinstance(p, str)]
        lang = self.language(request, form=values)
        if not self.pages.csrf_passes(request, form):
            return self.expired_form(request, lang, join_url(tenant))
        offered = await run_in_threadpool(members.offered_profiles, self.pages.engine, tenant)
        if offered is None:
            return self.not_found(request, lang)
        now = self.pages.clock()
        keys = [f"join-address:{_client(request)}",
                f"join-email:{values.get('email', '').strip().lower()}"]
        wait = self.limiter.retry_after(keys, now)
        if wait is not None:
            problem = translations(lang).gettext(
                "Too many sign-ups from here: try again in {minutes} minutes.").format(
                minutes=-(-wait // 60))
            response = self.join_page(request, lang, tenant, offered, values, chosen, [problem], 429)
            response.headers["Retry-After"] = str(wait)
            return response
        sign_up, problems = members.parse_sign_up(values, chosen, offered, tenant=tenant,
                                                  now=now, address=_client(request))
        if sign_up is None or not self.email_enabled():
            return self.join_page(request, lang, tenant, offered, values, chosen, problems, 400)
        self.limiter.failed(keys, now)  # every sign-up counts, not only failed ones
        tokens = await run_in_threadpool(members.member_tokens, self.pages.engine, tenant,
                                         sign_up.email)
        sent = await self.send_email(sign_up.email, sign_up.language,
                                     *self.join_email(request, sign_up, tokens))
        if not sent:
            return self.notice(request, sign_up.language, N_("Email not sent"), N_(
                "We could not send the email just now. Please try again in a few minutes."),
                503, join_url(tenant))
        log.info("sign-up email sent tenant=%s", tenant)
        return self.page(request, sign_up.language, "join_sent.html", tenant=tenant,
                         email=sign_up.email)

    def join_email(self, request: Request, sign_up: members.SignUp,
                   tokens: list[str] | None) -> tuple[str, str, str]:
        """Subject, text and HTML: the confirmation link (worded as an invitation when a
        manager sent it), or for a member already, their preferences link (the page said the
        same either way)."""
        _ = translations(sign_up.language).gettext
        base = self.base_url(request)
        if tokens is None:
            link = f"{base}{join_url(sign_up.tenant)}/{self.links.token(sign_up)}"
            subject = _("Confirm your callwatch alerts")
            lead = _("Please confirm that you want callwatch to send you the funding calls of "
                     "{tenant}. The link works for {hours} hours; if you did not ask for "
                     "this, ignore this email and nothing will be sent.").format(
                         tenant=sign_up.tenant, hours=members.CONFIRM_HOURS)
            if sign_up.invited_by:
                subject = _("{tenant} invites you to callwatch alerts").format(
                    tenant=sign_up.tenant)
                lead = _("Your cluster manager at {tenant} invites you to receive its funding "
                         "calls by email from callwatch. Nothing is sent and nothing about you "
                         "is kept unless you confirm: the link works for {hours} hours; if you "
                         "do not want this, ignore this email.").format(
                             tenant=sign_up.tenant, hours=members.CONFIRM_HOURS)
            button = _("Confirm")
        elif tokens:
            link = f"{base}{manage_url(tokens[0])}"
            subject = _("You already receive callwatch alerts")
            lead = _("Someone (perhaps you) asked to sign this address up for the funding "
                     "calls of {tenant}. It is signed up already: change what you receive "
                     "from your preferences page.").format(tenant=sign_up.tenant)
            button = _("Your preferences")
        else:
            link = ""
            subject = _("You already receive callwatch alerts")
            lead = _("Someone (perhaps you) asked to sign this address up for the funding "
                     "calls of {tenant}. Your cluster manager has signed it up already: "
                     "ask them to change it.").format(tenant=sign_up.tenant)
            button = ""
        return self.member_email(sign_up.language, subject, lead, link, button)

    def confirm_form(self, request: Request) -> Response:
        lang = self.language(request)
        sign_up = self.sign_up(request)
        if isinstance(sign_up, Response):
            return sign_up
        return self.page(request, sign_up.language if lang == "en" else lang, "join_confirm.html",
                         form=True, sign_up=sign_up)

    def sign_up(self, request: Request) -> members.SignUp | Response:
        """The link's sign-up, or the page that says it is expired or not one of ours."""
        lang = self.language(request)
        tenant = request.path_params["tenant"]
        try:
            sign_up = self.links.sign_up(request.path_params["token"], self.pages.clock())
        except members.LinkExpired:
            return self.notice(request, lang, N_("Link expired"), N_(
                "This confirmation link has expired: sign up again, and confirm within two days."),
                410, join_url(tenant))
        if sign_up is None or sign_up.tenant != tenant:
            return self.not_found(request, lang)
        return sign_up

    async def confirm(self, request: Request) -> Response:
        form = await request.form()
        sign_up = self.sign_up(request)
        if isinstance(sign_up, Response):
            return sign_up
        if not self.pages.csrf_passes(request, form):
            return self.expired_form(request, sign_up.language, request.url.path)
        token = await run_in_threadpool(members.confirm, self.pages.engine, sign_up,
                                        self.pages.clock(), _client(request))
        if token is None:
            return self.notice(request, sign_up.language, N_("Already signed up"), N_(
                "This address is signed up already: your cluster manager can change it."))
        log.info("member confirmed tenant=%s", sign_up.tenant)
        return RedirectResponse(f"{manage_url(token)}?welcome=1", status_code=303)

    # -- preferences -----------------------------------------------------------------------

    def preferences_page(self, request: Request, current: members.Preferences,
                         problems: list[str] | None = None, status_code: int = 200,
                         saved: bool = False) -> Response:
        lang = self.language(request, current.language)
        muted = current.muted_until if current.muted(self.pages.clock()) else None
        return self.page(
            request, lang, "preferences.html", status_code, form=True, prefs=current,
            token=request.path_params["token"], problems=problems or [], saved=saved,
            welcome=request.query_params.get("welcome") == "1", zones=members.zone_choices(),
            email_changed=request.query_params.get("email") == "1",
            modes=members.MODES, off=members.OFF, mute_labels=MUTE_LABELS,
            muted_until=muted and format_datetime(muted, lang, _zone(current.timezone)))

    def manage_form(self, request: Request) -> Response:
        current = members.read_preferences(self.pages.engine, request.path_params["token"])
        if current is None:
            return self.not_found(request, self.language(request))
        return self.preferences_page(request, current)

    async def posted(self, request: Request
                     ) -> tuple[FormData, str, members.Preferences] | Response:
        """A preferences form's post: its form, token and the member's preferences, else the
        answer (an unknown token, a form that failed its CSRF check)."""
        form = await request.form()
        token = request.path_params["token"]
        current = await run_in_threadpool(members.read_preferences, self.pages.engine, token)
        if current is None:
            return self.not_found(request, self.language(request))
        if not self.pages.csrf_passes(request, form):
            return self.expired_form(request, current.language, manage_url(token))
        return form, token, current

    async def manage(self, request: Request) -> Response:
        posted = await self.posted(request)
        if isinstance(posted, Response):
            return posted
        form, token, current = posted
        chosen = [p for p in form.getlist("profile") if isinstance(p, str)]
        change, problems = members.parse_change(_fields(form), chosen, current)
        if change is None:
            return self.preferences_page(request, current, problems, 400)
        await run_in_threadpool(members.save, self.pages.engine, current, change, self.pages.clock())
        log.info("preferences saved subscriber=%s", current.name if current.origin == "file"
                 else current.subscriber_id)
        saved = await run_in_threadpool(members.read_preferences, self.pages.engine, token)
        return self.preferences_page(request, saved or current, saved=True)

    async def leave(self, request: Request) -> Response:
        posted = await self.posted(request)
        if isinstance(posted, Response):
            return posted
        _form, token, current = posted
        await run_in_threadpool(members.leave, self.pages.engine, current, self.pages.clock())
        log.info("subscriber left subscriber_id=%s", current.subscriber_id)
        return self.notice(request, self.language(request, current.language), N_("You have left"),
                           N_("You will get no more messages from callwatch. You can sign up "
                              "again from your preferences page at any time."),
                           back=manage_url(token))

    # -- a new email address ---------------------------------------------------------------

    async def email_request(self, request: Request) -> Response:
        """Send the new address its confirmation link (or, when it is a member of the tenant
        already, a note that nothing changed): the page says the same either way, and
        nothing changes before the new mailbox confirms."""
        posted = await self.posted(request)
        if isinstance(posted, Response):
            return posted
        form, token, current = posted
        now = self.pages.clock()
        change, problems = members.parse_email_change(_fields(form), current, now=now,
                                                      address=_client(request))
        if change is None:
            return self.preferences_page(request, current, problems, 400)
        keys = [f"email-address:{_client(request)}", f"email-member:{current.subscriber_id}"]
        wait = self.limiter.retry_after(keys, now)
        if wait is not None:
            problem = translations(current.language).gettext(
                "Too many changes of address: try again in {minutes} minutes.").format(
                minutes=-(-wait // 60))
            response = self.preferences_page(request, current, [problem], 429)
            response.headers["Retry-After"] = str(wait)
            return response
        self.limiter.failed(keys, now)
        taken = current.tenant is not None and await run_in_threadpool(
            members.member_tokens, self.pages.engine, current.tenant, change.new) is not None
        sent = self.email_enabled() and await self.send_email(
            change.new, change.language, *self.email_change_email(request, change, current, taken))
        if not sent:
            return self.notice(request, current.language, N_("Email not sent"), N_(
                "We could not send the email just now. Please try again in a few minutes."),
                503, manage_url(token))
        log.info("email change asked subscriber_id=%s", current.subscriber_id)
        return self.notice(request, current.language, N_("Check your new mailbox"), N_(
            "We sent an email to the new address. Your address changes when you open its link "
            "and confirm there; until then nothing changes."), back=manage_url(token))

    def email_change_email(self, request: Request, change: members.EmailChange,
                           current: members.Preferences, taken: bool) -> tuple[str, str, str]:
        """Subject, text and HTML for the new address: its confirmation link, or (a member
        of the tenant already) a note that nothing changed."""
        _ = translations(change.language).gettext
        tenant = current.tenant or ""
        if taken:
            return self.member_email(change.language, _("Your callwatch alerts"), _(
                "Someone (perhaps you) asked to move their callwatch alerts of {tenant} to this "
                "address. This address receives them already, so nothing changed.").format(
                    tenant=tenant))
        link = f"{self.base_url(request)}{email_change_url(self.links.email_token(change))}"
        return self.member_email(change.language, _("Confirm your new email address"), _(
            "Please confirm that callwatch should send the funding calls of {tenant} to this "
            "address from now on. The link works for {hours} hours; if you did not ask for "
            "this, ignore this email and nothing changes.").format(
                tenant=tenant, hours=members.CONFIRM_HOURS), link, _("Confirm"))

    def member_email(self, lang: str, subject: str, lead: str, link: str = "",
                     button: str = "") -> tuple[str, str, str]:
        """Subject, text and HTML of a short member email: a sentence and maybe a link."""
        text = f"{lead}\n\n{link}\n" if link else f"{lead}\n"
        html = self.pages.templates.get_template("join_email.html").render(
            language=lang, subject=subject, lead=lead, link=link, button=button)
        return subject, text, html

    def email_change(self, request: Request) -> members.EmailChange | Response:
        """The link's change of address, or the page that says it is expired or not ours."""
        lang = self.language(request)
        try:
            change = self.links.email_change(request.path_params["token"], self.pages.clock())
        except members.LinkExpired:
            return self.notice(request, lang, N_("Link expired"), N_(
                "This confirmation link has expired: ask for the change again from your "
                "preferences page, and confirm within two days."), 410)
        if change is None:
            return self.not_found(request, lang)
        return change

    def email_confirm_form(self, request: Request) -> Response:
        change = self.email_change(request)
        if isinstance(change, Response):
            return change
        return self.page(request, self.language(request, change.language),
                         "member_email_confirm.html", form=True, change=change)

    async def email_confirm(self, request: Request) -> Response:
        form = await request.form()
        change = self.email_change(request)
        if isinstance(change, Response):
            return change
        lang = self.language(request, change.language)
        if not self.pages.csrf_passes(request, form):
            return self.expired_form(request, lang, request.url.path)
        done = await run_in_threadpool(members.confirm_email_change, self.pages.engine, change,
                                       self.pages.clock(), _client(request))
        back = manage_url(done.token) if done.token else "/"
        if done.outcome == "stale":
            return self.notice(request, lang, N_("Nothing changed"), N_(
                "This link no longer applies: your email address changed since it was sent, "
                "or you left. Nothing changed."), 409, back)
        if done.outcome == "taken":
            return self.notice(request, lang, N_("Nothing changed"), N_(
                "This address receives the cluster's alerts already. Nothing changed."), 409, back)
        if done.outcome == "changed":
            log.info("email changed subscriber_id=%s", change.subscriber_id)
            _ = translations(change.language).gettext
            await self.send_email(change.old, change.language, *self.member_email(
                change.language, _("Your callwatch email address was changed"), _(
                    "From now on the funding calls of {tenant} go to {email} instead of this "
                    "address. If you did not ask for this, tell your cluster manager.").format(
                        tenant=done.tenant or "", email=change.new)))
        return RedirectResponse(f"{back}?email=1" if done.token else back, status_code=303)

    # -- erasure ----------------------------------------------------------------------------

    def erase_form(self, request: Request) -> Response:
        current = members.read_preferences(self.pages.engine, request.path_params["token"])
        if current is None:
            return self.not_found(request, self.language(request))
        return self.page(request, self.language(request, current.language), "member_erase.html",
                         form=True, prefs=current, token=request.path_params["token"],
                         file_kept=FILE_KEPT)

    async def erase(self, request: Request) -> Response:
        """Erase everything about the member (``tracker.delivery.erasure``), unless a
        subscriber file keeps them: then their cluster manager must edit the file."""
        posted = await self.posted(request)
        if isinstance(posted, Response):
            return posted
        _form, token, current = posted
        lang = self.language(request, current.language)
        if not await run_in_threadpool(members.erase, self.pages.engine, current):
            return self.notice(request, lang, N_("Nothing erased"), FILE_KEPT, 409,
                               manage_url(token))
        return self.notice(request, lang, N_("Your data is erased"), N_(
            "callwatch no longer holds your name, your addresses, your topics, the messages "
            "sent to you or your consent. You will get no more messages."))

    # -- one-click unsubscribe ---------------------------------------------------------------

    def unsubscribe_answer(self, request: Request, view: unsubscribe.SubscriptionView | None,
                           ) -> Response:
        token = request.path_params["token"]
        current = members.read_preferences(self.pages.engine, token) if view else None
        lang = self.language(request, current.language if current else None)
        if view is None:
            return self.not_found(request, lang)
        return self.page(request, lang, "unsubscribe.html", view=view, token=token)

    def unsubscribe_form(self, request: Request) -> Response:
        return self.unsubscribe_answer(
            request, unsubscribe.find_subscription(self.pages.engine, request.path_params["token"]))

    def unsubscribe_now(self, request: Request) -> Response:
        """RFC 8058: ends the subscription at once (no CSRF token: see the module docstring)."""
        view = unsubscribe.unsubscribe(self.pages.engine, request.path_params["token"],
                                       self.pages.clock())
        if view is not None:
            log.info("unsubscribed from a link subscriber=%s profile=%s", view.subscriber,
                     view.profile)
        return self.unsubscribe_answer(request, view)


def routes(pages: Pages) -> list[BaseRoute]:
    """The member pages' URLs (``tracker.web.app.routes`` includes them)."""
    member = MemberPages(pages)
    return [
        Route("/t/{tenant}/join", member.join_form, methods=["GET"], name="join_form"),
        Route("/t/{tenant}/join", member.join, methods=["POST"], name="join"),
        Route("/t/{tenant}/join/{token}", member.confirm_form, methods=["GET"], name="confirm_form"),
        Route("/t/{tenant}/join/{token}", member.confirm, methods=["POST"], name="confirm"),
        Route(unsubscribe.MANAGE_PATH, member.manage_form, methods=["GET"], name="manage_form"),
        Route(unsubscribe.MANAGE_PATH, member.manage, methods=["POST"], name="manage"),
        Route(unsubscribe.MANAGE_PATH + "/leave", member.leave, methods=["POST"], name="leave"),
        Route(unsubscribe.MANAGE_PATH + "/email", member.email_request, methods=["POST"],
              name="email_request"),
        Route("/email-change/{token}", member.email_confirm_form, methods=["GET"],
              name="email_confirm_form"),
        Route("/email-change/{token}", member.email_confirm, methods=["POST"],
              name="email_confirm"),
        Route(unsubscribe.MANAGE_PATH + "/erase", member.erase_form, methods=["GET"],
              name="erase_form"),
        Route(unsubscribe.MANAGE_PATH + "/erase", member.erase, methods=["POST"], name="erase"),
        Route(unsubscribe.UNSUBSCRIBE_PATH, member.unsubscribe_form, methods=["GET"],
              name="unsubscribe_form"),
        Route(unsubscribe.UNSUBSCRIBE_PATH, member.unsubscribe_now, methods=["POST"],
              name="unsubscribe"),
    ]
