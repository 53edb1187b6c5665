"""Member SMEs on the web: sign-up with double opt-in, the preferences page, leaving.

**Sign-up** (``/t/<tenant>/join``) asks a name, an email address, a language, a time zone,
the tenant's profiles to follow and the email mode. Nothing is stored and nothing is sent
to the member's alerts before they confirm: the form's values travel in the confirmation
link itself, signed with the web secret (itsdangerous, HMAC-SHA256) and valid for
:data:`CONFIRM_HOURS` by the app's clock (the sign-up time is inside the signed value, so
a test clock can age it). Confirming creates, in one transaction, a subscriber of origin
``"web"`` (named ``web-<random>``, so no subscriber file can name it by chance), its email
address, one subscription per profile, and the consent record (``consents``: the words
shown, in the member's language, when and from which address they signed up and
confirmed). A link confirmed twice finds its consent (``nonce``) and creates nothing more.

**Invitations** from a cluster manager (:func:`parse_invitations`, the members page) are
sign-ups the manager fills in for an address: the same checks, the same signed link in the
same email (in the invitee's language), the same confirmation, and nothing stored before
the invitee confirms. The consent record names the inviting manager (``invited_by``); the
invitee agrees on the confirmation page, which shows the consent text above its button.

**No enumeration**: the page after the form is the same whether or not the address is
already a member of the tenant; the difference goes only to the mailbox (a member gets
their preferences link instead of a confirmation link). **Subscribers from the web and the
file sync**: ``sync_subscribers`` manages only subscribers of origin ``"file"``, so a web
member is never emptied or overwritten by a cycle; see docs/web.md.

**Preferences** are reached by any subscription token (``/manage/<token>``, the link in
every message's footer; an ended one still opens the page). A member of origin ``"web"``
or ``"bot"`` changes everything there; a subscriber from a file (their cluster manager's)
changes only what the sync leaves alone (mutes, leaving, one subscription at a time),
because the next cycle would put the file's values back. Profiles dropped on the page end
like an unsubscribe link ends them (``unsubscribe.end_subscriptions``), so their links
keep answering.

**A new email address** (:class:`EmailChange`) travels, like a sign-up, in a signed link
(its own salt) sent to the new address, valid CONFIRM_HOURS; confirming it
(:func:`confirm_email_change`) sets the address and writes a new consent record. Nothing
changes before. **Erasure** (:func:`erase`) is ``tracker.delivery.erasure``'s, refused for
a subscriber a file keeps.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, TypeVar, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.engine import Connection, Engine

from tracker.dates import isoformat_utc, to_utc
from tracker.delivery import REMINDER_DAYS
from tracker.delivery.erasure import FILE_ORIGIN, erase_subscriber
from tracker.delivery.outbox import apply_subscription_plan, stored_subscriptions
from tracker.delivery.subscribers import Mode, Subscription, plan_subscription_sync
from tracker.delivery.unsubscribe import end_subscriptions
from tracker.errors import ConfigError
from tracker.i18n import LANGUAGES, N_, translations
from tracker.store.db import (
    channels_table,
    consents_table,
    opt_outs_table,
    subscribers_table,
    subscriptions_table,
)
from tracker.web.accounts import normalize_email
from tracker.web.browse import tenant_profiles

WEB_ORIGIN = "web"
T = TypeVar("T")
#: the origins whose subscribers the preferences page may change in full: no file behind them
EDITABLE_ORIGINS = ("web", "bot")
CONFIRM_HOURS = 48
MODES: tuple[str, ...] = get_args(Mode)
#: a channel's choice on the preferences page: a mode, or nothing on that channel
OFF = "off"
#: the mutes offered, in hours ("0": end a mute)
MUTE_HOURS = ("0", "24", "168", "720")
DEFAULT_ZONE = "Europe/Brussels"
#: the words a member agrees to, stored in their language with the tenant filled in
CONSENT_TEXT = N_("I agree that callwatch stores my name, my email address and the choices "
                  "above in order to send me the funding calls I asked for, and that the "
                  "cluster {tenant} can see that I am subscribed. I can change or end this "
                  "at any time from the link in every message.")


def zone_choices() -> list[str]:
    """The time zones offered: Europe's and UTC (any IANA name is accepted when posted)."""
    return ["UTC", *sorted(z for z in available_timezones() if z.startswith("Europe/"))]


def consent_text(tenant: str, language: str) -> str:
    return translations(language).gettext(CONSENT_TEXT).format(tenant=tenant)


def _zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return value


# -- sign-up (pure) ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignUp:
    """A sign-up waiting for its confirmation: what the confirmation link carries."""

    tenant: str
    name: str
    email: str
    language: str
    timezone: str
    profiles: tuple[str, ...]
    mode: str
    signed_up_at: datetime
    signed_up_from: str
    consent_text: str
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    #: the email of the manager who invited this address; "" for a sign-up of one's own
    invited_by: str = ""

    def payload(self) -> dict[str, Any]:
        return {"t": self.tenant, "n": self.name, "e": self.email, "l": self.language,
                "z": self.timezone, "p": list(self.profiles), "m": self.mode,
                "at": isoformat_utc(self.signed_up_at), "ip": self.signed_up_from,
                "c": self.consent_text, "k": self.nonce, "i": self.invited_by}

    @classmethod
    def from_payload(cls, value: Mapping[str, Any]) -> SignUp:
        return cls(tenant=str(value["t"]), name=str(value["n"]), email=str(value["e"]),
                   language=str(value["l"]), timezone=str(value["z"]),
                   profiles=tuple(str(p) for p in value["p"]), mode=str(value["m"]),
                   signed_up_at=to_utc(datetime.fromisoformat(value["at"])),
                   signed_up_from=str(value["ip"]), consent_text=str(value["c"]),
                   nonce=str(value["k"]), invited_by=str(value.get("i", "")))


def _name(value: str) -> str | None:
    """The name with its spaces tidied, None when longer than a consent record holds."""
    name = " ".join(value.split())
    return name if len(name) <= 100 else None


def _email(value: str) -> str | None:
    try:
        return normalize_email(value)
    except ConfigError:
        return None


@dataclass(frozen=True)
class _Choices:
    """What a sign-up and an invitation ask alike: the time zone, the topics, the mode."""

    timezone: str
    profiles: tuple[str, ...]
    mode: str
    problems: tuple[str, ...]


def _choices(form: Mapping[str, str], profiles: Sequence[str], offered: Sequence[str],
             language: str) -> _Choices:
    _ = translations(language).gettext
    problems = []
    timezone = _zone(form.get("timezone", "")) or ""
    if not timezone:
        problems.append(_("Choose a time zone from the list."))
    chosen = tuple(dict.fromkeys(p for p in profiles if p in offered))
    if not chosen or len(chosen) != len(set(profiles)):
        problems.append(_("Choose at least one of the cluster's topics."))
    mode = form.get("mode", "")
    if mode not in MODES:
        problems.append(_("Choose how often you want email."))
    return _Choices(timezone, chosen, mode, tuple(problems))


def parse_sign_up(form: Mapping[str, str], profiles: Sequence[str], offered: Sequence[str], *,
                  tenant: str, now: datetime, address: str) -> tuple[SignUp | None, list[str]]:
    """The sign-up a form asks for, or None and what is wrong (in the form's language)."""
    language = form.get("language", "") if form.get("language") in LANGUAGES else "en"
    _ = translations(language).gettext
    problems = []
    name = _name(form.get("name", ""))
    if not name:
        problems.append(_("Give your name (at most 100 characters)."))
    email = _email(form.get("email", ""))
    if email is None:
        problems.append(_("Give a valid email address."))
    choices = _choices(form, profiles, offered, language)
    problems += choices.problems
    if form.get("consent") != "yes":
        problems.append(_("Tick the box to agree, or we cannot send you anything."))
    if problems or not name or email is None:
        return None, problems
    return SignUp(tenant=tenant, name=name, email=email, language=language,
                  timezone=choices.timezone, profiles=choices.profiles, mode=choices.mode,
                  signed_up_at=now, signed_up_from=address,
                  consent_text=consent_text(tenant, language)), []


@dataclass(frozen=True)
class EmailChange:
    """A member's new email address waiting for its confirmation from that mailbox: what
    the confirmation link carries. ``old`` is the address when asked: a link confirmed
    after the address changed otherwise changes nothing."""

    subscriber_id: int
    old: str
    new: str
    language: str
    asked_at: datetime
    asked_from: str
    consent_text: str
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def payload(self) -> dict[str, Any]:
        return {"s": self.subscriber_id, "o": self.old, "e": self.new, "l": self.language,
                "at": isoformat_utc(self.asked_at), "ip": self.asked_from,
                "c": self.consent_text, "k": self.nonce}

    @classmethod
    def from_payload(cls, value: Mapping[str, Any]) -> EmailChange:
        return cls(subscriber_id=int(value["s"]), old=str(value["o"]), new=str(value["e"]),
                   language=str(value["l"]), asked_at=to_utc(datetime.fromisoformat(value["at"])),
                   asked_from=str(value["ip"]), consent_text=str(value["c"]),
                   nonce=str(value["k"]))


def parse_email_change(form: Mapping[str, str], current: Preferences, *, now: datetime,
                       address: str) -> tuple[EmailChange | None, list[str]]:
    """The change of address a preferences form asks for, or None and what is wrong
    (pure). Only a member the page may change in full, with an email address, asks it."""
    _ = translations(current.language).gettext
    new = _email(form.get("new_email", ""))
    if new is None:
        return None, [_("Give a valid email address.")]
    if current.email is None or not current.editable:
        return None, [_("Your cluster manager keeps your email address: ask them to change it.")]
    return EmailChange(subscriber_id=current.subscriber_id, old=current.email, new=new,
                       language=current.language, asked_at=now, asked_from=address,
                       consent_text=consent_text(current.tenant or "", current.language)), []


#: addresses one invitation form may carry (a whole CRM goes through the CSV import)
MAX_INVITATIONS = 50


@dataclass(frozen=True)
class Invitations:
    """What an invitation form asks for: a sign-up per good line (with the line's number and
    text), and why each other line is left out (its number, its text, the reason);
    ``problems``: what is wrong with the choices every line shares (nothing is invited then)."""

    sign_ups: tuple[tuple[int, str, SignUp], ...]
    refused: tuple[tuple[int, str, str], ...]
    problems: tuple[str, ...]


def _invitee(line: str, default_language: str) -> tuple[str | None, str, str, str]:
    """``email[, name][, language]`` read: the address (None: not one), the name, the
    language, and what is wrong ("" when nothing)."""
    parts = [part.strip() for part in line.replace(";", ",").replace("\t", ",").split(",")]
    email, rest = _email(parts[0]), [part for part in parts[1:] if part]
    language = default_language
    if rest and len(rest[-1]) == 2 and rest[-1].isalpha():
        language = rest.pop().lower()
        if language not in LANGUAGES:
            return email, "", language, (f"{language!r} is not a language callwatch writes "
                                         f"({', '.join(LANGUAGES)})")
    name = _name(", ".join(rest))
    if email is None:
        return None, "", language, "not a valid email address"
    if name is None:
        return email, "", language, "the name is longer than 100 characters"
    return email, name, language, ""


def parse_invitations(text: str, form: Mapping[str, str], profiles: Sequence[str],
                      offered: Sequence[str], *, tenant: str, invited_by: str, now: datetime,
                      address: str) -> Invitations:
    """The sign-ups a manager's invitation form asks for (pure). ``text``: one invitee a
    line, ``email[, name][, language]``; the form's language is the default, and its topics,
    mode and time zone apply to every line. The reasons are English: the managers' pages
    are."""
    default = form.get("language", "") if form.get("language") in LANGUAGES else "en"
    choices = _choices(form, profiles, offered, "en")
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
             if line.strip()]
    problems = list(choices.problems)
    if not lines:
        problems.append("Give at least one email address.")
    elif len(lines) > MAX_INVITATIONS:
        problems.append(f"At most {MAX_INVITATIONS} addresses at once: the CSV import takes more.")
    if problems:
        return Invitations((), (), tuple(problems))
    sign_ups: list[tuple[int, str, SignUp]] = []
    refused: list[tuple[int, str, str]] = []
    for number, line in lines:
        email, name, language, problem = _invitee(line, default)
        if not problem and email in {sign_up.email for _n, _l, sign_up in sign_ups}:
            problem = "listed before (invited once)"
        if problem or email is None:
            refused.append((number, line, problem))
            continue
        sign_ups.append((number, line, SignUp(
            tenant=tenant, name=name, email=email, language=language,
            timezone=choices.timezone, profiles=choices.profiles, mode=choices.mode,
            signed_up_at=now, signed_up_from=address, consent_text=consent_text(tenant, language),
            invited_by=invited_by)))
    return Invitations(tuple(sign_ups), tuple(refused), ())


class LinkExpired(ValueError):
    """A confirmation link older than CONFIRM_HOURS."""


def _read_signed(serializer: URLSafeSerializer, token: str, now: datetime,
                    parse: Callable[[Any], T], at: Callable[[T], datetime]) -> T | None:
    """``parse`` of what ``serializer`` signed into ``token``: None for a token it did not
    sign (or one of another kind); LinkExpired when ``at`` it is CONFIRM_HOURS old."""
    try:
        value = parse(serializer.loads(token))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if now - at(value) > timedelta(hours=CONFIRM_HOURS):
        raise LinkExpired(token)
    return value


class ConfirmationLinks:
    """Signs a sign-up, or a change of email address, into its confirmation link's token,
    and reads it back (pure). Each kind has its own salt: one is never read as the other."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="callwatch.signup")
        self._email = URLSafeSerializer(secret, salt="callwatch.email-change")

    def token(self, sign_up: SignUp) -> str:
        return self._serializer.dumps(sign_up.payload())

    def sign_up(self, token: str, now: datetime) -> SignUp | None:
        """The sign-up, None for a token this secret did not sign; LinkExpired when old."""
        return _read_signed(self._serializer, token, now, SignUp.from_payload,
                            lambda s: s.signed_up_at)

    def email_token(self, change: EmailChange) -> str:
        return self._email.dumps(change.payload())

    def email_change(self, token: str, now: datetime) -> EmailChange | None:
        """The change of address, None for a token this secret did not sign; LinkExpired
        when old."""
        return _read_signed(self._email, token, now, EmailChange.from_payload,
                            lambda c: c.asked_at)


# -- sign-up (the database) ----------------------------------------------------------------------

def offered_profiles(engine: Engine, tenant: str) -> list[str] | None:
    """The tenant's profiles a member may follow; None when there is no such tenant."""
    with engine.connect() as connection:
        return tenant_profiles(connection, tenant)


def _member_tokens(connection: Connection, tenant: str, email: str) -> list[str] | None:
    """Tokens of the tenant's subscriber with this email address (live ones first, then
    ended ones); None when the address is not a member of the tenant."""
    found = connection.execute(
        sa.select(subscribers_table.c.id)
        .join(channels_table, channels_table.c.subscriber_id == subscribers_table.c.id)
        .where(subscribers_table.c.tenant == tenant, channels_table.c.channel == "email",
               sa.func.lower(channels_table.c.address) == email.lower())
        .order_by(subscribers_table.c.id)).first()
    if found is None:
        return None
    live = connection.execute(sa.select(subscriptions_table.c.token)
                              .where(subscriptions_table.c.subscriber_id == found.id)
                              .order_by(subscriptions_table.c.id)).scalars().all()
    ended = connection.execute(sa.select(opt_outs_table.c.token)
                               .where(opt_outs_table.c.subscriber_id == found.id)
                               .order_by(opt_outs_table.c.id.desc())).scalars().all()
    return [*live, *ended]


def member_tokens(engine: Engine, tenant: str, email: str) -> list[str] | None:
    with engine.connect() as connection:
        return _member_tokens(connection, tenant, email)


def members_among(engine: Engine, tenant: str, emails: Sequence[str]) -> set[str]:
    """The addresses among ``emails`` that are members of ``tenant`` already."""
    with engine.connect() as connection:
        return {email for email in emails if _member_tokens(connection, tenant, email) is not None}


def confirm(engine: Engine, sign_up: SignUp, now: datetime, address: str) -> str | None:
    """Make the sign-up a member, with its consent record; the token of their first
    subscription (for the preferences link). A link confirmed before, or an address that
    became a member meanwhile, creates nothing and gives that member's token."""
    with engine.begin() as connection:
        done = connection.execute(sa.select(consents_table.c.subscriber_id)
                                  .where(consents_table.c.nonce == sign_up.nonce)).first()
        tokens = _member_tokens(connection, sign_up.tenant, sign_up.email)
        if done is not None or tokens is not None:
            return tokens[0] if tokens else None
        subscriber_id = int(connection.execute(subscribers_table.insert().values(
            name=f"web-{secrets.token_hex(8)}", tenant=sign_up.tenant, timezone=sign_up.timezone,
            language=sign_up.language, quiet_hours=None, reminders=list(REMINDER_DAYS),
            origin=WEB_ORIGIN, muted_until=None, created_at=now, updated_at=now,
        )).inserted_primary_key[0])  # type: ignore[index]  # set by INSERT
        connection.execute(channels_table.insert().values(
            subscriber_id=subscriber_id, channel="email", address=sign_up.email,
            configured_address=sign_up.email, webhook_format="generic", active=True))
        tokens = []
        for profile in sign_up.profiles:
            token = secrets.token_urlsafe(24)
            connection.execute(subscriptions_table.insert().values(
                subscriber_id=subscriber_id, profile=profile, mode=sign_up.mode,
                channels=["email"], token=token))
            tokens.append(token)
        connection.execute(consents_table.insert().values(
            subscriber_id=subscriber_id, tenant=sign_up.tenant, person_name=sign_up.name,
            email=sign_up.email, language=sign_up.language, consent_text=sign_up.consent_text,
            signed_up_at=sign_up.signed_up_at, signed_up_from=sign_up.signed_up_from[:45],
            confirmed_at=now, confirmed_from=address[:45], nonce=sign_up.nonce,
            invited_by=sign_up.invited_by or None))
    return tokens[0]


# -- preferences ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Followed:
    """One subscription as the preferences page lists it."""

    profile: str
    mode: str
    channels: tuple[str, ...]
    token: str


@dataclass(frozen=True)
class Preferences:
    """A subscriber's settings, as the preferences page shows and changes them."""

    subscriber_id: int
    name: str
    origin: str
    tenant: str | None
    language: str
    timezone: str
    quiet_hours: str | None
    muted_until: datetime | None
    #: the channels the subscriber has an address on
    channels: tuple[str, ...]
    subscriptions: tuple[Followed, ...]
    #: the profiles the page offers: the tenant's and the subscriber's own
    offered: tuple[str, ...]
    #: the email address, when the subscriber has one
    email: str | None = None

    @property
    def editable(self) -> bool:
        """Whether the page may change everything (no subscriber file behind it)."""
        return self.origin in EDITABLE_ORIGINS

    def mode_on(self, channel: str) -> str:
        """The mode of the first subscription on ``channel``, or OFF."""
        for followed in self.subscriptions:
            if channel in followed.channels:
                return followed.mode
        return OFF

    def follows(self, profile: str) -> bool:
        return any(followed.profile == profile for followed in self.subscriptions)

    def muted(self, now: datetime) -> bool:
        return self.muted_until is not None and self.muted_until > now

    def quiet(self) -> tuple[str, str]:
        start, _, end = (self.quiet_hours or "").partition("-")
        return start, end


def _subscriber_of(connection: Connection, token: str) -> int | None:
    for table in (subscriptions_table, opt_outs_table):
        found = connection.execute(sa.select(table.c.subscriber_id)
                                   .where(table.c.token == token)).first()
        if found is not None:
            return int(found.subscriber_id)
    return None


def read_preferences(engine: Engine, token: str) -> Preferences | None:
    """The settings of the subscriber ``token`` belongs to (live or ended); None if none."""
    with engine.connect() as connection:
        subscriber_id = _subscriber_of(connection, token)
        if subscriber_id is None:
            return None
        row = connection.execute(sa.select(subscribers_table)
                                 .where(subscribers_table.c.id == subscriber_id)).one()
        addresses = {r.channel: r.address for r in connection.execute(
            sa.select(channels_table.c.channel, channels_table.c.address)
            .where(channels_table.c.subscriber_id == subscriber_id))}
        channels = tuple(sorted(addresses))
        followed = tuple(
            Followed(r.profile, r.mode, tuple(r.channels) if r.channels else channels, r.token)
            for r in connection.execute(
                sa.select(subscriptions_table)
                .where(subscriptions_table.c.subscriber_id == subscriber_id)
                .order_by(subscriptions_table.c.profile, subscriptions_table.c.id)))
        person = connection.execute(
            sa.select(consents_table.c.person_name)
            .where(consents_table.c.subscriber_id == subscriber_id)
            .order_by(consents_table.c.id.desc())).scalar()
        offered = set(tenant_profiles(connection, row.tenant) or []) if row.tenant else set()
    return Preferences(
        subscriber_id=subscriber_id, name=person or row.name, origin=row.origin,
        tenant=row.tenant, language=row.language, timezone=row.timezone,
        quiet_hours=row.quiet_hours, muted_until=row.muted_until, channels=channels,
        subscriptions=followed,
        offered=tuple(sorted(offered | {f.profile for f in followed})),
        email=addresses.get("email"))


@dataclass(frozen=True)
class Change:
    """What the preferences form asks for (a file subscriber's form has only ``mute``)."""

    profiles: tuple[str, ...] = ()
    modes: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None
    timezone: str | None = None
    quiet_hours: str | None = None
    #: hours to mute for ("0": end the mute); None: leave it as it is
    mute_hours: int | None = None


def _hhmm(value: str) -> str | None:
    try:
        return time.fromisoformat(value.strip()).strftime("%H:%M")
    except ValueError:
        return None


def parse_change(form: Mapping[str, str], profiles: Sequence[str], current: Preferences
                 ) -> tuple[Change | None, list[str]]:
    """The change a preferences form asks for, or None and what is wrong (pure)."""
    language = form.get("language") if form.get("language") in LANGUAGES else current.language
    _ = translations(language or "en").gettext
    problems: list[str] = []
    mute = form.get("mute", "")
    mute_hours = int(mute) if mute in MUTE_HOURS else None
    if not current.editable:
        return Change(mute_hours=mute_hours), []
    chosen = tuple(dict.fromkeys(p for p in profiles if p in current.offered))
    if len(chosen) != len(set(profiles)):
        problems.append(_("Choose among the topics listed."))
    modes = {channel: form.get(f"mode_{channel}", OFF) for channel in current.channels}
    if any(mode not in (*MODES, OFF) for mode in modes.values()):
        problems.append(_("Choose how often you want messages on each channel."))
    timezone = _zone(form.get("timezone", ""))
    if timezone is None:
        problems.append(_("Choose a time zone from the list."))
    start, end = form.get("quiet_from", "").strip(), form.get("quiet_to", "").strip()
    quiet = None
    if start or end:
        start_hhmm, end_hhmm = _hhmm(start), _hhmm(end)
        if start_hhmm is None or end_hhmm is None or start_hhmm == end_hhmm:
            problems.append(_("Give quiet hours as two different times, or leave both empty."))
        else:
            quiet = f"{start_hhmm}-{end_hhmm}"
    if problems:
        return None, problems
    return Change(profiles=chosen, modes=modes, language=language, timezone=timezone,
                  quiet_hours=quiet, mute_hours=mute_hours), []


def wanted_subscriptions(profiles: Sequence[str], modes: Mapping[str, str]) -> list[Subscription]:
    """One subscription per profile and mode, on the channels set to that mode (pure)."""
    by_mode: dict[str, list[str]] = {}
    for channel, mode in sorted(modes.items()):
        if mode != OFF:
            by_mode.setdefault(mode, []).append(channel)
    return [Subscription(profile=profile, mode=mode, channels=tuple(channels))
            for profile in profiles for mode, channels in by_mode.items()]


def save(engine: Engine, current: Preferences, change: Change, now: datetime) -> None:
    """Write ``change``: settings, mute, and the subscriptions (rows kept where they can be,
    so their links stay; the ones dropped end as opt-outs)."""
    values: dict[str, Any] = {"updated_at": now}
    if change.mute_hours is not None:
        values["muted_until"] = now + timedelta(hours=change.mute_hours) if change.mute_hours \
            else None
    with engine.begin() as connection:
        if current.editable:
            values.update(language=change.language, timezone=change.timezone,
                          quiet_hours=change.quiet_hours)
            plan = plan_subscription_sync(stored_subscriptions(connection, current.subscriber_id),
                                          wanted_subscriptions(change.profiles, change.modes))
            end_subscriptions(connection, plan.delete, now)
            apply_subscription_plan(connection, current.subscriber_id,
                                    type(plan)(insert=plan.insert, update=plan.update))
        connection.execute(subscribers_table.update()
                           .where(subscribers_table.c.id == current.subscriber_id).values(**values))


def leave(engine: Engine, current: Preferences, now: datetime) -> None:
    """End every subscription of the subscriber, as their unsubscribe links would."""
    with engine.begin() as connection:
        end_subscriptions(connection, [row.id for row in stored_subscriptions(
            connection, current.subscriber_id)], now)


# -- a new email address, erasure ----------------------------------------------------------------

@dataclass(frozen=True)
class EmailChanged:
    """What confirming a change of address did: ``outcome`` is "changed" (now), "again" (a
    link confirmed before), "stale" (the member is gone, or their address is no longer the
    one the link was asked from) or "taken" (the new address became a member of the tenant
    meanwhile); ``token`` opens the member's preferences when there is one."""

    outcome: str
    token: str | None = None
    tenant: str | None = None


def confirm_email_change(engine: Engine, change: EmailChange, now: datetime,
                         address: str) -> EmailChanged:
    """Give the member the new address, with a new consent record (the words the confirm
    page showed, when and from where it was asked and confirmed): double opt-in again. The
    earlier consent records stay, the proof for what was sent before; erasure removes all."""
    with engine.begin() as connection:
        row = connection.execute(sa.select(subscribers_table.c.tenant, subscribers_table.c.name)
                                 .where(subscribers_table.c.id == change.subscriber_id)).first()
        tokens = connection.execute(sa.select(subscriptions_table.c.token).where(
            subscriptions_table.c.subscriber_id == change.subscriber_id)
            .order_by(subscriptions_table.c.id)).scalars().all() or connection.execute(
            sa.select(opt_outs_table.c.token).where(
                opt_outs_table.c.subscriber_id == change.subscriber_id)
            .order_by(opt_outs_table.c.id.desc())).scalars().all()
        token = tokens[0] if tokens else None
        if row is None:
            return EmailChanged("stale")
        done = connection.execute(sa.select(consents_table.c.id)
                                  .where(consents_table.c.nonce == change.nonce)).first()
        if done is not None:
            return EmailChanged("again", token, row.tenant)
        channel = connection.execute(sa.select(channels_table.c.id, channels_table.c.address)
                                     .where(channels_table.c.subscriber_id == change.subscriber_id,
                                            channels_table.c.channel == "email")).first()
        if channel is None or channel.address.lower() != change.old.lower():
            return EmailChanged("stale", token, row.tenant)
        if row.tenant is not None and _member_tokens(connection, row.tenant, change.new) is not None:
            return EmailChanged("taken", token, row.tenant)
        connection.execute(channels_table.update().where(channels_table.c.id == channel.id).values(
            address=change.new, configured_address=change.new, active=True, note=None))
        person = connection.execute(
            sa.select(consents_table.c.person_name)
            .where(consents_table.c.subscriber_id == change.subscriber_id)
            .order_by(consents_table.c.id.desc())).scalar()
        connection.execute(consents_table.insert().values(
            subscriber_id=change.subscriber_id, tenant=row.tenant or "",
            person_name=person or row.name, email=change.new, language=change.language,
            consent_text=change.consent_text, signed_up_at=change.asked_at,
            signed_up_from=change.asked_from[:45], confirmed_at=now, confirmed_from=address[:45],
            nonce=change.nonce))
        connection.execute(subscribers_table.update()
                           .where(subscribers_table.c.id == change.subscriber_id)
                           .values(updated_at=now))
    return EmailChanged("changed", token, row.tenant)


def erase(engine: Engine, current: Preferences) -> bool:
    """Erase the member (``tracker.delivery.erasure``); False, and nothing done, for a
    subscriber a file keeps (the next cycle would re-create it: the file must be edited)."""
    if current.origin == FILE_ORIGIN:
        return False
    return erase_subscriber(engine, current.subscriber_id) is not None
