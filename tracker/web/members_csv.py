"""Members as CSV: reading a CRM's export into a dry-run report, and writing the export.

Pure: bytes and what the database already holds go in, a report comes out; no I/O, so the
whole import is tested without a server (``tests/test_web_members_csv.py``). The pages of
``tracker.web.manage_members`` read the database, call :func:`read_members_csv`, show the
report, and write only on "Apply", after reading the same file again.

**The format** (docs/web.md repeats it for managers):

- UTF-8 (a byte-order mark, as Excel writes, is fine), a header row, then one member a row;
- ``,`` or ``;`` (or a tab) between fields, whichever the file uses (``csv.Sniffer``);
- columns, in any order and any case: ``name`` and ``email`` (required), ``language``
  (default ``en``), ``profiles``, ``mode`` (``instant``, ``daily`` or ``weekly``; default
  ``instant``) and ``timezone`` (optional; default Europe/Brussels, or the member's own
  when they exist). Other columns are ignored, and the report says which;
- ``profiles``: one or more profile names separated by spaces, ``|``, or the other
  delimiter (``h2 mobility``, ``h2|mobility``); ``h2:daily`` follows one profile in its own
  mode, which the export writes when a member's modes differ.

**The same rules as the subscriber files.** Each row becomes the mapping a subscriber file
would hold and is validated by :class:`tracker.delivery.subscribers.Subscriber` itself
(name, language, email, mode, timezone), and its profiles are checked against the known
ones with the same "did you mean" hint; the reasons shown are the model's own messages.

**What a row does.** The name is the member's identity, as in the files: a name nobody has
is **new**; a member this cluster's managers imported (``origin`` ``web``) is **updated**,
or **unchanged** when nothing differs; a row is **invalid**, and left out, when it fails
the rules, repeats an earlier row's name or email, names a member kept in a subscriber file
or created through the Telegram bot (changed there, not here), names another cluster's
member, or gives an address another member of this cluster already has.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from tracker.delivery.subscribers import Subscriber

if TYPE_CHECKING:
    from _csv import Reader

#: an import larger than this is refused whole (a cluster of 3,000 members is ~200 KB)
MAX_BYTES = 2 * 1024 * 1024
REQUIRED = ("name", "email")
OPTIONAL = ("language", "profiles", "mode", "timezone")
COLUMNS = (*REQUIRED, *OPTIONAL)
#: where a web-managed member comes from (``subscribers.origin``); the file sync leaves it alone
WEB_ORIGIN = "web"
MODES = ("instant", "daily", "weekly")

Action = Literal["new", "updated", "unchanged", "invalid"]


@dataclass(frozen=True)
class Existing:
    """A member already stored, as the import compares a row with it."""

    name: str
    tenant: str | None
    origin: str
    email: str | None
    language: str
    timezone: str
    #: (profile, mode) of each subscription
    follows: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class RowReport:
    """One data row: what applying the file would do with it, and why not when invalid."""

    line: int
    name: str
    email: str
    action: Action
    reasons: tuple[str, ...] = ()
    member: Subscriber | None = None


@dataclass(frozen=True)
class ImportReport:
    """Every row's fate, or one ``problem`` that stops the whole file (no header, not UTF-8)."""

    rows: tuple[RowReport, ...] = ()
    problem: str | None = None
    ignored_columns: tuple[str, ...] = ()
    #: SHA-256 of the file's bytes: "Apply" must bring back the very file checked
    digest: str = ""

    def count(self, action: Action) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def members(self) -> list[Subscriber]:
        """The rows that apply writes: new and updated members."""
        return [row.member for row in self.rows
                if row.member is not None and row.action in ("new", "updated")]

    @property
    def plan_key(self) -> str:
        """A digest of what applying would do: the same at "Apply" as at the dry run, or the
        members changed in between and the manager must look again."""
        plan = [(row.line, row.action, row.reasons,
                 row.member.model_dump(mode="json") if row.member else None) for row in self.rows]
        return hashlib.sha256(json.dumps([self.problem, plan], sort_keys=True).encode()).hexdigest()


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:8192].split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:  # one column, or nothing to tell by
        return csv.excel


def _split_profiles(cell: str, default_mode: str) -> list[tuple[str, str]]:
    """``"h2 agri:daily"`` → [("h2", mode), ("agri", "daily")]."""
    follows = []
    for item in re.split(r"[\s|,;]+", cell.strip()):
        if item:
            profile, _, mode = item.partition(":")
            follows.append((profile, mode.strip().lower() or default_mode))
    return follows


def _reasons(exc: ValidationError) -> list[str]:
    """The model's messages, each named by its column (``channels.email`` is "email")."""
    shown = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        where = {"channels": "email", "subscriptions": "profiles"}.get(loc[0], loc[0]) if loc else "row"
        message = str(error["msg"]).removeprefix("Value error, ")
        if loc == ["subscriptions"]:  # "at least 1 item": said as "none given" by the profiles check
            continue
        if loc[:1] == ["subscriptions"] and loc[-1:] == ["mode"]:
            where, message = "mode", f"unknown mode (modes: {', '.join(MODES)})"
        shown.append(f"{where}: {message}")
    return shown


def _profile_problems(follows: Sequence[tuple[str, str]], known: Collection[str]) -> list[str]:
    problems = []
    if not follows:
        problems.append("profiles: none given (name at least one profile)")
    for profile, _mode in follows:
        if profile not in known:
            close = difflib.get_close_matches(profile, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"profiles: unknown profile {profile!r}{hint}")
    return problems


def _conflict(name: str, email: str, tenant: str, existing: Mapping[str, Existing],
              emails: Mapping[str, str]) -> str | None:
    """Why a valid row still cannot be applied, from what is stored; None when it can."""
    found = existing.get(name)
    if found is not None and found.tenant != tenant:
        return "name: another cluster's member has this name; choose another"
    if found is not None and found.origin == "file":
        return "name: this member is kept in a subscriber file; change it there"
    if found is not None and found.origin != WEB_ORIGIN:
        return "name: this member signed up through the Telegram bot; they change it there"
    holder = emails.get(email.lower())
    if holder is not None and holder != name:
        return f"email: already the address of member {holder!r}"
    return None


def _changed(member: Subscriber, found: Existing | None) -> bool:
    if found is None:
        return True
    follows = frozenset((s.profile, s.mode) for s in member.subscriptions)
    return (member.channels.email, member.language, member.timezone, follows) != (
        found.email, found.language, found.timezone, found.follows)


def _open(data: bytes) -> tuple[list[str], dict[str, int], Reader] | str:
    """The header, each known column's index and the data rows; or why the file cannot be read."""
    text = _text(data)
    if text is None:
        return "the file is not UTF-8: save it as \"CSV UTF-8\" and try again"
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    header = [cell.strip().lower() for cell in next(reader, [])]
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        return (f"the first row must name the columns; missing: {', '.join(missing)} "
                f"(columns: {', '.join(COLUMNS)})")
    return header, {column: header.index(column) for column in COLUMNS if column in header}, reader


def names_in(data: bytes) -> set[str]:
    """The names a file gives (empty when it cannot be read): what the edge reads from the
    store before the dry run, so a name another cluster holds is seen."""
    opened = _open(data) if len(data) <= MAX_BYTES else "too large"
    if isinstance(opened, str):
        return set()
    _header, where, reader = opened
    return {row[where["name"]].strip() for row in reader if len(row) > where["name"]} - {""}


def read_members_csv(data: bytes, *, tenant: str, profiles: Collection[str],
                     existing: Mapping[str, Existing]) -> ImportReport:
    """The dry-run report of importing ``data`` into ``tenant``.

    ``profiles``: the names a member may follow; ``existing``: the stored members this
    file's names refer to (more is fine: the tenant's own members, by name), so the
    report tells new from updated and sees every conflict.
    """
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_BYTES:
        return ImportReport(problem=f"the file is larger than {MAX_BYTES // 1024 // 1024} MB: "
                            "split it", digest=digest)
    opened = _open(data)
    if isinstance(opened, str):
        return ImportReport(problem=opened, digest=digest)
    header, where, reader = opened
    emails = {m.email.lower(): m.name for m in existing.values() if m.email and m.tenant == tenant}
    rows: list[RowReport] = []
    seen: dict[str, int] = {}
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        rows.append(_row(reader.line_num, cells, where, tenant, profiles, existing, emails, seen))
    return ImportReport(rows=tuple(rows), digest=digest,
                        ignored_columns=tuple(c for c in header if c and c not in COLUMNS))


def _row(line: int, cells: Sequence[str], where: Mapping[str, int], tenant: str,
         profiles: Collection[str], existing: Mapping[str, Existing], emails: Mapping[str, str],
         seen: dict[str, int]) -> RowReport:
    def cell(column: str) -> str:
        index = where.get(column)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    name, email = cell("name"), cell("email")
    found = existing.get(name)
    mode = cell("mode").lower() or "instant"
    follows = _split_profiles(cell("profiles"), mode)
    mapping = {"name": name, "tenant": tenant, "language": cell("language").lower() or "en",
               "timezone": cell("timezone") or (found.timezone if found else "Europe/Brussels"),
               "channels": {"email": email or None},
               "subscriptions": [{"profile": p, "mode": m} for p, m in follows]}
    reasons: list[str] = []
    for key in (f"name:{name}", f"email:{email.lower()}"):
        if key in seen and key.partition(":")[2]:
            reasons.append(f"duplicate row: same {key.partition(':')[0]} as line {seen[key]}")
    if not reasons:
        seen.update({f"name:{name}": line, f"email:{email.lower()}": line})
    if not email:
        reasons.append("email: missing")
    member = None
    try:
        member = Subscriber.model_validate(mapping)
    except ValidationError as exc:
        reasons.extend(reason for reason in _reasons(exc)
                       if email or "no channel configured" not in reason)
    reasons.extend(_profile_problems(follows, profiles))
    if not reasons:
        conflict = _conflict(name, email, tenant, existing, emails)
        reasons.extend([conflict] if conflict else [])
    if reasons or member is None:
        return RowReport(line, name, email, "invalid", tuple(dict.fromkeys(reasons)))
    action: Action = "updated" if found is not None else "new"
    if not _changed(member, found):
        action = "unchanged"
    return RowReport(line, name, email, action, (), member)


# -- the export -------------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA) else value


def members_csv(members: Iterable[Existing]) -> str:
    """The export: the import's columns, so an exported file imports back unchanged.

    One ``mode`` when all of a member's subscriptions share it, else ``profile:mode`` each.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("name", "email", "language", "profiles", "mode", "timezone"))
    for member in members:
        follows = sorted(member.follows)
        modes = {mode for _profile, mode in follows}
        if len(modes) == 1:
            profiles, mode = " ".join(p for p, _m in follows), next(iter(modes))
        else:
            profiles, mode = " ".join(f"{p}:{m}" for p, m in follows), ""
        writer.writerow([_safe(value) for value in (
            member.name, member.email or "", member.language, profiles, mode, member.timezone)])
    return out.getvalue()

