"""The managers' profile editor: a form with the query language's help and a live preview.

A manager edits the profiles of their own tenant (an admin, any tenant's): one guard,
:meth:`ProfileEditor.signed_in`, answers every route (not signed in: to the sign-in page;
another tenant: 403). The form's fields (name, description, query, and the other fields
as YAML) are put together into the YAML text a profile file would hold
(:meth:`ProfileForm.text`), and that text is validated by ``parse_profile_text``, the
function ``callwatch profiles check`` runs on every file: the editor, the check and the
daemon agree on what is valid. Each problem is shown next to its field, with its line and
column in that field.

The preview (``POST /t/<tenant>/profiles/preview``) answers an HTML fragment to htmx as
the manager types, and the whole page to a browser without JavaScript (the form's
"Preview" button). It is ``tracker.rules.preview.preview_profile`` over the stored calls,
indexed once and kept in :class:`PreviewCache` until they change.

Renaming and deleting (:class:`ProfileChanges`): a rename moves the subscriptions to the
new name; a delete asks first and says how many subscriptions end. Neither for a profile a
YAML file defines (edit the file) nor one a subscriber file follows.

Where profiles live and which wins (the YAML file): ``tracker.rules.sources``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tracker.collection import freeze_survivors
from tracker.delivery.profile_changes import (
    Followers,
    ProfileGone,
    delete_web_profile,
    profile_followers,
    rename_web_profile,
)
from tracker.rules.preview import (
    Preview,
    PreviewCalls,
    field_help,
    filter_help,
    grammar,
    preview_profile,
    query_help,
)
from tracker.rules.profiles import ProfileProblem
from tracker.rules.sources import StoredProfile, save_web_profile, stored_profiles
from tracker.rules.store import RulesStore
from tracker.store.db import calls_table
from tracker.web.accounts import User
from tracker.web.app import Pages
from tracker.web.browse import tenant_profiles
from tracker.web.manage import manager_of

log = logging.getLogger(__name__)

#: the fields of the form that are fields of the profile; the rest go in ``filters``
OWN_FIELDS = ("name", "description", "query")
#: longest text accepted in each field (a query of 10,000 characters is already absurd)
MAX_LENGTH = {"name": 100, "description": 2_000, "query": 10_000, "filters": 20_000}


def profiles_url(tenant: str, *rest: str) -> str:
    """``/t/<tenant>/profiles[/<rest>…]``, each part quoted."""
    return "/".join([f"/t/{quote(tenant, safe='')}/profiles", *(quote(p, safe='') for p in rest)])


# -- the form, pure --------------------------------------------------------------------------

@dataclass(frozen=True)
class ProfileForm:
    """What the editor's form holds; ``original`` is the name of the profile being edited
    (empty for a new one: a profile's name does not change, subscriptions name it)."""

    name: str = ""
    description: str = ""
    query: str = ""
    filters: str = ""
    original: str = ""

    @classmethod
    def of(cls, form: Mapping[str, Any]) -> ProfileForm:
        """From posted fields: line ends as ``\\n``, each cut to its MAX_LENGTH."""
        def value(key: str) -> str:
            raw = form.get(key)
            text = raw.replace("\r\n", "\n").replace("\r", "\n") if isinstance(raw, str) else ""
            return text[:MAX_LENGTH.get(key, 100)]
        return cls(value("name").strip(), value("description"), value("query"),
                   value("filters"), value("original").strip())

    @classmethod
    def of_definition(cls, definition: Mapping[str, Any]) -> ProfileForm:
        """The form of a stored profile: the fields beyond OWN_FIELDS that differ from their
        defaults, as YAML."""
        from tracker.rules.profiles import Profile

        profile = Profile.model_validate(definition)
        rest = {k: v for k, v in profile.model_dump(mode="json", exclude_defaults=True).items()
                if k not in OWN_FIELDS}
        filters = yaml.safe_dump(rest, sort_keys=False, allow_unicode=True) if rest else ""
        return cls(profile.name, profile.description, profile.query or "", filters, profile.name)

    def text(self) -> str:
        """The YAML a profile file would hold: one line for each of OWN_FIELDS (JSON strings
        are YAML), then ``filters`` as written, so its line n is the text's line n + 3."""
        head = "".join(f"{key}: {json.dumps(getattr(self, key), ensure_ascii=False)}\n"
                       for key in OWN_FIELDS)
        return head + self.filters


_COLUMN = re.compile(r"^(?P<message>.*) at column (?P<column>\d+)$")


def where_in(text: str, column: int) -> tuple[int, int]:
    """(line, column) in ``text``, both from 1, of the 1-based ``column`` of the whole text."""
    before = text[:max(column - 1, 0)]
    return before.count("\n") + 1, column - (before.rfind("\n") + 1)


def field_problems(form: ProfileForm, problems: Sequence[ProfileProblem]) -> dict[str, list[str]]:
    """Each problem of ``form.text()`` under the form field it is in, saying where in it:
    a query's column becomes its line and column in the query box; a line of the other
    fields, its line in their box."""
    shown: dict[str, list[str]] = {}
    for problem in problems:
        top = (problem.field or "").split(".")[0].split("[")[0]
        line = problem.line
        if line is not None:  # where it is written: a key repeated below goes there
            key = OWN_FIELDS[line - 1] if line <= len(OWN_FIELDS) else "filters"
        else:
            key = top if top in OWN_FIELDS else "filters"
        message = problem.message
        if key == "query" and (found := _COLUMN.match(message)):
            at_line, at_column = where_in(form.query, int(found["column"]))
            message = f"line {at_line}, column {at_column}: {found['message']}"
        elif key == "filters":
            what = f"{problem.field}: " if problem.field else ""
            at = f"line {line - len(OWN_FIELDS)}: " if line is not None else ""
            message = f"{at}{what}{message}"
        shown.setdefault(key, []).append(message)
    return shown


# -- the calls the preview looks at ------------------------------------------------------------

class PreviewCache:
    """The stored calls indexed for previews: rebuilt when they have changed and the index
    is ``min_age`` old, or when it is ``max_age`` old (statuses and days move with time).

    Indexing 50,000 calls takes seconds of CPU (bench/bench_preview.py), so a cycle that
    changes a call every few minutes does not rebuild it each time. Only the first build
    makes a request wait (and every request that comes meanwhile waits for that one build,
    rather than building its own); later ones run in a thread while the previous index
    answers. :meth:`warm` starts the first build when the server starts, so that the first
    manager does not wait for it either. Whether the calls have changed (a count over all
    of them) is asked only once the index is ``min_age`` old, not at every preview.
    """

    def __init__(self, engine: Engine, min_age: timedelta = timedelta(minutes=15),
                 max_age: timedelta = timedelta(hours=6), *, freeze: bool = False) -> None:
        self.engine = engine
        #: after each build, freeze what is alive out of the collector's sight
        #: (:func:`tracker.collection.freeze_survivors`): for a process of its own only,
        #: ``callwatch web``, as the freeze is the whole process's
        self.freeze = freeze
        self.min_age = min_age
        self.max_age = max_age
        self._lock = threading.Lock()
        self._built = threading.Condition(self._lock)  # notified when a build ends
        self._calls: PreviewCalls | None = None
        self._signature: tuple[object, ...] | None = None
        self._building = False

    def _current_signature(self) -> tuple[object, ...]:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(sa.func.count(), sa.func.max(calls_table.c.last_changed))
                                     .select_from(calls_table)).one()
        return tuple(row)

    def _build(self, signature: tuple[object, ...], now: datetime) -> PreviewCalls:
        try:
            calls = PreviewCalls.of(RulesStore(self.engine).calls(), now)
        except BaseException:
            with self._lock:  # the next request tries again; the waiting ones too
                self._building = False
                self._built.notify_all()
            raise
        with self._lock:
            self._calls, self._signature, self._building = calls, signature, False
            self._built.notify_all()
        if self.freeze:  # the previous index is let go: thaw, collect, freeze the new one
            freeze_survivors()
        return calls

    def get(self, now: datetime) -> PreviewCalls:
        with self._lock:  # younger than min_age, or being rebuilt: the calls cannot matter
            calls = self._calls
            if calls is not None and (now - calls.built_at < min(self.min_age, self.max_age)
                                      or self._building):
                return calls
        signature = self._current_signature()  # a count over every call: not per request
        with self._lock:
            while self._calls is None and self._building:  # the first build, in another thread
                self._built.wait()
            calls = self._calls
            age = now - calls.built_at if calls is not None else self.max_age
            fresh = age < (self.max_age if signature == self._signature else self.min_age)
            if calls is not None and (fresh or self._building):
                return calls
            self._building = True
        if calls is not None:  # rebuilt aside: this index answers meanwhile
            threading.Thread(target=self._build, args=(signature, now), daemon=True,
                             name="callwatch-preview-index").start()
            return calls
        return self._build(signature, now)

    def warm(self, clock: Callable[[], datetime]) -> threading.Thread:
        """Build the first index in a thread now (``callwatch web`` at start): requests
        that come before it is done wait for it, later ones find it."""
        def build() -> None:
            try:
                self.get(clock())
            except Exception:  # a request will try again, and show its own error
                log.exception("building the profile preview's index at start failed")

        thread = threading.Thread(target=build, daemon=True, name="callwatch-preview-warm")
        thread.start()
        return thread


# -- the pages ----------------------------------------------------------------------------------

class ProfileEditor:
    """The profile pages of one tenant, over the shared :class:`Pages`."""

    def __init__(self, pages: Pages, *, freeze_index: bool = False) -> None:
        self.pages = pages
        self.engine = pages.engine
        self.cache = PreviewCache(pages.engine, freeze=freeze_index)

    def signed_in(self, request: Request) -> User | Response:
        """The guard of every route, the managers' pages' own (:func:`manage.manager_of`);
        after signing in, a POST comes back to the tenant's profiles."""
        back = None if request.method == "GET" else profiles_url(request.path_params["tenant"])
        return manager_of(self.pages, request, back)

    def visible(self, user: User, tenant: str) -> list[StoredProfile]:
        """The profiles the tenant's page lists: owned by the tenant or followed by its
        subscribers (an admin sees every profile)."""
        rows = stored_profiles(self.engine)
        if user.role == "admin":
            return rows
        with self.engine.connect() as connection:
            followed = set(tenant_profiles(connection, tenant) or ())
        return [r for r in rows if r.tenant == tenant or r.name in followed]

    @staticmethod
    def may_edit(user: User, tenant: str, row: StoredProfile) -> bool:
        return row.editable and (user.role == "admin" or row.tenant == tenant)

    def index(self, request: Request) -> Response:
        user = self.signed_in(request)
        if not isinstance(user, User):
            return user
        tenant = request.path_params["tenant"]
        rows = self.visible(user, tenant)
        return self.pages.render(request, "profiles.html", tenant=tenant, rows=rows, user=user,
                                 may_edit=lambda row: self.may_edit(user, tenant, row),
                                 profiles_url=profiles_url)

    def editor(self, request: Request, tenant: str, form: ProfileForm, *, status_code: int = 200,
               problems: Mapping[str, list[str]] | None = None, preview: Preview | None = None,
               read_only: StoredProfile | None = None, saved: bool = False) -> Response:
        return self.pages.form_page(
            request, "profile_edit.html", status_code, tenant=tenant, form=form,
            problems=problems or {}, preview=preview, read_only=read_only, saved=saved,
            profiles_url=profiles_url, query_help=query_help(), filter_help=filter_help(),
            grammar=grammar(), field_help=field_help())

    def new(self, request: Request) -> Response:
        user = self.signed_in(request)
        if not isinstance(user, User):
            return user
        return self.editor(request, request.path_params["tenant"], ProfileForm())

    def edit(self, request: Request) -> Response:
        user = self.signed_in(request)
        if not isinstance(user, User):
            return user
        tenant, name = request.path_params["tenant"], request.path_params["name"]
        rows = [r for r in self.visible(user, tenant) if r.name == name]
        if not rows:
            return self.pages.not_found(request, LookupError(name))
        row = rows[0]
        form = ProfileForm.of_definition(row.definition)
        editable = self.may_edit(user, tenant, row)
        preview = self.preview_of(form) if not editable else None
        return self.editor(request, tenant, form, read_only=None if editable else row,
                           preview=preview, saved=request.query_params.get("saved") == "1")

    async def posted(self, request: Request) -> tuple[User, ProfileForm] | Response:
        """The guard, then the CSRF check, then the form."""
        user = self.signed_in(request)
        if not isinstance(user, User):
            return user
        fields = await request.form()
        if not self.pages.csrf_passes(request, fields):
            return self.pages.expired_form(request, profiles_url(request.path_params["tenant"]))
        return user, ProfileForm.of(fields)

    def preview_of(self, form: ProfileForm) -> Preview:
        now = self.pages.clock()
        dismissed = ({c for _, c in RulesStore(self.engine).dismissed([form.original])}
                     if form.original else set())
        return preview_profile(form.text(), self.cache.get(now), now, dismissed=dismissed)

    async def preview(self, request: Request) -> Response:
        """The preview: a fragment for htmx, the whole editor for a plain form post."""
        answer = await self.posted(request)
        if isinstance(answer, Response):
            return answer
        _user, form = answer
        found = await run_in_threadpool(self.preview_of, form)
        problems = field_problems(form, found.problems)
        tenant = request.path_params["tenant"]
        if request.headers.get("hx-request") == "true":
            return self.pages.render(request, "profile_preview.html", preview=found,
                                     problems=problems, tenant=tenant)
        return self.editor(request, tenant, form, problems=problems, preview=found)

    async def save(self, request: Request) -> Response:
        """Validate like `profiles check`, then save as the tenant's profile and go to it."""
        answer = await self.posted(request)
        if isinstance(answer, Response):
            return answer
        user, form = answer
        tenant = request.path_params["tenant"]
        from tracker.rules.profiles import parse_profile_text

        profile, found = parse_profile_text(form.text(), "the form")
        problems = field_problems(form, found)
        if profile is not None:
            refusal = self.refusal(user, tenant, form)
            if refusal:
                problems.setdefault("name", []).append(refusal)
        if profile is None or problems:
            return self.editor(request, tenant, form, status_code=400, problems=problems)
        save_web_profile(self.engine, profile, tenant=tenant if user.role != "admin" or
                         not form.original else self.owner(form.original, tenant),
                         by=user.email, now=self.pages.clock())
        return RedirectResponse(profiles_url(tenant, profile.name, "edit") + "?saved=1",
                                status_code=303)

    def owner(self, name: str, tenant: str) -> str | None:
        """The tenant a saved profile keeps (an admin's edit does not move it)."""
        rows = stored_profiles(self.engine, [name])
        return rows[0].tenant if rows else tenant

    def refusal(self, user: User, tenant: str, form: ProfileForm) -> str:
        """Why this form may not be saved under its name, or ``""``."""
        if form.original and form.name != form.original:
            return (f"a profile's name does not change (subscriptions name it): keep "
                    f"{form.original!r}, or make a new profile")
        rows = stored_profiles(self.engine, [form.name])
        if not rows:
            return ""
        row = rows[0]
        if row.source is not None:
            return f"managed in git: {row.source}"
        if not form.original:
            return f"a profile called {form.name!r} already exists"
        if not self.may_edit(user, tenant, row):
            return f"{form.name!r} belongs to {'another cluster' if row.tenant else 'the admins'}"
        return ""


class ProfileChanges:
    """Renaming and deleting a profile of the tenant (``POST …/<name>/rename``, ``GET|POST
    …/<name>/delete``): the editor's guard, CSRF on each POST, and only a profile the user
    may edit. A profile a YAML file defines is refused with its file named (the file wins:
    rename or delete the file), and so is one that a subscriber file follows (the next sync
    would put the old name back). A rename moves the subscriptions to the new name; a delete
    asks first and says how many subscriptions end."""

    def __init__(self, editor: ProfileEditor) -> None:
        self.editor = editor
        self.pages = editor.pages

    def answer(self, request: Request, status_code: int, title: str, message: str) -> Response:
        tenant, name = request.path_params["tenant"], request.path_params["name"]
        return self.pages.render(request, "error.html", status_code, title=title, message=message,
                                 back=profiles_url(tenant, name, "edit"))

    def target(self, request: Request, user: User) -> tuple[StoredProfile, Followers] | Response:
        """The profile of the URL with its followers, or why it may not change here."""
        tenant, name = request.path_params["tenant"], request.path_params["name"]
        rows = [r for r in self.editor.visible(user, tenant) if r.name == name]
        if not rows:
            return self.pages.not_found(request, LookupError(name))
        row = rows[0]
        if row.source is not None:
            return self.answer(request, 409, "Managed in git", (
                f"{name} is defined by the file {row.source}: rename or delete the file "
                "(the file wins over the web)."))
        if not self.editor.may_edit(user, tenant, row):
            return self.answer(request, 403, "Not your profile", (
                f"{name} belongs to {'another cluster' if row.tenant else 'the administrators'}."))
        followers = profile_followers(self.editor.engine, name)
        if followers.file_subscribers:
            return self.answer(request, 409, "Followed from subscriber files", (
                f"Subscriber files follow {name} ({', '.join(followers.file_subscribers)}): "
                "change those files first, or the next cycle would follow the old name again."))
        return row, followers

    async def checked(self, request: Request
                      ) -> tuple[User, FormData, StoredProfile, Followers] | Response:
        user = self.editor.signed_in(request)
        if not isinstance(user, User):
            return user
        form = await request.form()
        if not self.pages.csrf_passes(request, form):
            return self.pages.expired_form(request, profiles_url(request.path_params["tenant"]))
        found = await run_in_threadpool(self.target, request, user)
        return found if isinstance(found, Response) else (user, form, *found)

    async def rename(self, request: Request) -> Response:
        checked = await self.checked(request)
        if isinstance(checked, Response):
            return checked
        user, form, row, _followers = checked
        from tracker.rules.profiles import validate_profile

        new = " ".join(str(form.get("new_name") or "").split())
        profile, problems = validate_profile({**row.definition, "name": new}, "the new name")
        too_long = len(new) > MAX_LENGTH["name"]
        if profile is None or new == row.name or too_long:
            why = "; ".join(p.message for p in problems) or (
                f"at most {MAX_LENGTH['name']} characters" if too_long else "give a new name")
            return self.answer(request, 400, "Not renamed", f"{new!r}: {why}.")
        try:
            await run_in_threadpool(lambda: rename_web_profile(
                self.editor.engine, row.name, profile, by=user.email, now=self.pages.clock()))
        except ValueError as exc:  # the name is taken (ProfileGone: someone deleted it)
            return self.answer(request, 409, "Not renamed", f"{exc}.")
        tenant = request.path_params["tenant"]
        return RedirectResponse(profiles_url(tenant, profile.name, "edit") + "?saved=1", 303)

    async def delete_form(self, request: Request) -> Response:
        user = self.editor.signed_in(request)
        if not isinstance(user, User):
            return user
        found = await run_in_threadpool(self.target, request, user)
        if isinstance(found, Response):
            return found
        row, followers = found
        return self.pages.form_page(request, "profile_delete.html", tenant=request.path_params[
            "tenant"], row=row, followers=followers, profiles_url=profiles_url)

    async def delete(self, request: Request) -> Response:
        checked = await self.checked(request)
        if isinstance(checked, Response):
            return checked
        user, _form, row, _followers = checked
        with contextlib.suppress(ProfileGone):  # deleted meanwhile: the list shows it gone
            await run_in_threadpool(lambda: delete_web_profile(
                self.editor.engine, row.name, by=user.email, now=self.pages.clock()))
        return RedirectResponse(profiles_url(request.path_params["tenant"]), status_code=303)


def profile_routes(pages: Pages, *, warm_preview: bool = False) -> list[BaseRoute]:
    """The editor's URLs (``app.routes`` adds them); ``warm_preview``: start building the
    preview's index now, in a thread (:meth:`PreviewCache.warm`), and freeze each index
    built out of the garbage collector's sight (``PreviewCache.freeze``): both are for
    ``callwatch web``, a process of its own."""
    editor = ProfileEditor(pages, freeze_index=warm_preview)
    changes = ProfileChanges(editor)
    if warm_preview:
        editor.cache.warm(pages.clock)
    return [
        Route("/t/{tenant}/profiles", editor.index, methods=["GET"], name="profiles"),
        Route("/t/{tenant}/profiles", editor.save, methods=["POST"], name="profile_save"),
        Route("/t/{tenant}/profiles/new", editor.new, methods=["GET"], name="profile_new"),
        Route("/t/{tenant}/profiles/preview", editor.preview, methods=["POST"],
              name="profile_preview"),
        Route("/t/{tenant}/profiles/{name}/edit", editor.edit, methods=["GET"],
              name="profile_edit"),
        Route("/t/{tenant}/profiles/{name}/rename", changes.rename, methods=["POST"],
              name="profile_rename"),
        Route("/t/{tenant}/profiles/{name}/delete", changes.delete_form, methods=["GET"],
              name="profile_delete_form"),
        Route("/t/{tenant}/profiles/{name}/delete", changes.delete, methods=["POST"],
              name="profile_delete"),
    ]
