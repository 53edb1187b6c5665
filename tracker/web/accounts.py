"""Accounts of the web app: cluster managers and admins, their passwords and sessions.

- **Roles**: a ``manager`` belongs to one tenant and sees only it; an ``admin`` sees every
  tenant (its ``tenant`` is optional). `callwatch users add|passwd|list` manage them.
- **Passwords**: argon2id (argon2-cffi's defaults, RFC 9106's second recommendation); a
  hash made with older parameters is re-made at the next sign-in. At least
  :data:`MIN_PASSWORD` characters. An unknown email is checked against a dummy hash, so
  the answer takes as long as for a known one and does not tell which emails have accounts.
- **Sessions**: a cookie holding the user's id and when its password was last set,
  signed with the web secret (itsdangerous, HMAC-SHA256) and valid for
  :data:`SESSION_HOURS`; a new password therefore ends every older session. The secret is
  ``CALLWATCH_WEB_SECRET`` (environment only, like every secret); without it each process
  makes its own at start, so sessions end when it restarts.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Engine

from tracker.errors import ConfigError, NotFoundError
from tracker.store.db import users_table

log = logging.getLogger(__name__)

SECRET_ENV = "CALLWATCH_WEB_SECRET"  # noqa: S105 - the variable's name, not a secret
ROLES = ("manager", "admin")
Role = Literal["manager", "admin"]
MIN_PASSWORD = 12
SESSION_HOURS = 12

_HASHER = PasswordHasher()
#: what an unknown email's password is checked against, at the same cost as a real check:
#: made once by ``_HASHER`` from a random password that was thrown away, and written here
#: rather than hashed at import (half a second that every `callwatch users` command and
#: every start of the web app paid); a test checks it still has ``_HASHER``'s parameters
_DUMMY_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$MXOmkqaKfLTuc9iTPnvNaw$"
               "sGY4y441HAP1uO0sUVHiO8d4JZo1X8AXYEri/gDMRLY")


@dataclass(frozen=True)
class User:
    """A signed-in person, as the pages need them."""

    id: int
    email: str
    tenant: str | None
    role: Role
    password_changed_at: datetime

    def sees(self, tenant: str) -> bool:
        """Whether this user may see ``tenant``'s members and profiles."""
        return self.role == "admin" or self.tenant == tenant


def normalize_email(email: str) -> str:
    """The address as stored: trimmed, lower case; ConfigError when it is not one."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value) \
            or len(value) > 320:
        raise ConfigError(f"not an email address: {email!r}", key="EMAIL")
    return value


def check_password(password: str) -> None:
    """ConfigError unless ``password`` is long enough."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters", key="password")


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    return User(id=int(row.id), email=str(row.email), tenant=row.tenant,
                role=row.role, password_changed_at=row.password_changed_at)


def add_user(engine: Engine, email: str, password: str, *, tenant: str | None, role: Role,
             now: datetime) -> User:
    """Create an account; ConfigError for a bad email, role or password, or one that exists."""
    email = normalize_email(email)
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}", key="--role")
    if role == "manager" and not tenant:
        raise ConfigError("a manager needs a tenant (--tenant)", key="--tenant")
    check_password(password)
    with engine.begin() as connection:
        if connection.execute(sa.select(users_table.c.id)
                              .where(users_table.c.email == email)).first() is not None:
            raise ConfigError(f"{email} already has an account: `callwatch users passwd` sets "
                              "a new password", key="EMAIL")
        connection.execute(users_table.insert().values(
            email=email, tenant=tenant or None, role=role, password_hash=_HASHER.hash(password),
            password_changed_at=now, created_at=now))
    return get_user(engine, email)


def get_user(engine: Engine, email: str) -> User:
    """The account of ``email``; NotFoundError when there is none."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(users_table)
                                 .where(users_table.c.email == email.strip().lower())).first()
    if row is None:
        raise NotFoundError(f"no account for {email.strip()!r}")
    return _user(row)


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as connection:
        return [_user(row) for row in connection.execute(
            sa.select(users_table).order_by(users_table.c.email))]


def set_password(engine: Engine, email: str, password: str, now: datetime) -> None:
    """A new password for ``email``: every session signed in before it ends."""
    check_password(password)
    user = get_user(engine, email)
    with engine.begin() as connection:
        connection.execute(users_table.update().where(users_table.c.id == user.id).values(
            password_hash=_HASHER.hash(password), password_changed_at=now))


def authenticate(engine: Engine, email: str, password: str, now: datetime) -> User | None:
    """The user whose email and password these are, else None (same work either way)."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(users_table)
                                 .where(users_table.c.email == email.strip().lower())).first()
    stored = str(row.password_hash) if row is not None else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:  # the dummy matched: cannot happen, its password was never known
        return None
    values: dict[str, object] = {"last_sign_in": now}
    if _HASHER.check_needs_rehash(stored):
        values["password_hash"] = _HASHER.hash(password)
    with engine.begin() as connection:
        connection.execute(users_table.update().where(users_table.c.id == row.id).values(**values))
    return _user(row)


# -- sessions -----------------------------------------------------------------------------------

def web_secret(environ: dict[str, str] | None = None) -> str:
    """``CALLWATCH_WEB_SECRET``, else a new random secret for this process (with a warning)."""
    value = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    if value:
        if len(value) < 32:
            raise ConfigError(f"{SECRET_ENV} must have at least 32 characters", key=SECRET_ENV)
        return value
    log.warning("%s is not set: sessions end when this process stops; set it to keep them "
                "and to share them between processes", SECRET_ENV)
    return secrets.token_urlsafe(32)


class Sessions:
    """Signs and reads session cookies (pure: the user in, a string out, and back)."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="callwatch.session")

    def cookie(self, user: User) -> str:
        return self._serializer.dumps([user.id, user.password_changed_at.timestamp()])

    def user_id(self, cookie: str | None) -> tuple[int, float] | None:
        """(user id, password timestamp) from a cookie signed in the last SESSION_HOURS
        (by the real clock: the cookie carries when it was signed)."""
        if not cookie:
            return None
        try:
            value = self._serializer.loads(cookie, max_age=SESSION_HOURS * 3600)
        except BadSignature:  # SignatureExpired is one
            return None
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)):
            return None
        return value[0], float(value[1])

    def user(self, engine: Engine, cookie: str | None) -> User | None:
        """The signed-in user, or None (no cookie, a bad or old one, a password changed since)."""
        found = self.user_id(cookie)
        if found is None:
            return None
        with engine.connect() as connection:
            row = connection.execute(sa.select(users_table)
                                     .where(users_table.c.id == found[0])).first()
        if row is None:
            return None
        user = _user(row)
        same = hmac.compare_digest(repr(user.password_changed_at.timestamp()).encode(),
                                   repr(found[1]).encode())
        return user if same else None
