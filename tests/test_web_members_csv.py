"""The members CSV import's dry run and the export, pure: bytes in, a report out, no server."""

from __future__ import annotations

import pytest

from tracker.web.members_csv import Existing, ImportReport, members_csv, read_members_csv

TENANT = "hydrogen-valley"
PROFILES = ("h2", "mobility", "agri")


def _read(text: str | bytes, existing: dict[str, Existing] | None = None) -> ImportReport:
    data = text.encode() if isinstance(text, str) else text
    return read_members_csv(data, tenant=TENANT, profiles=PROFILES, existing=existing or {})


def _web(name: str, email: str, tenant: str = TENANT, origin: str = "web",
         follows: frozenset[tuple[str, str]] = frozenset({("h2", "instant")})) -> Existing:
    return Existing(name=name, tenant=tenant, origin=origin, email=email, language="en",
                    timezone="Europe/Brussels", follows=follows)


def test_a_clean_file_makes_new_members_validated_like_the_files() -> None:
    report = _read("name,email,language,profiles,mode\n"
                   "acme,info@acme.example,de,h2 mobility,daily\n"
                   "beta,beta@example.org,,h2,\n")
    assert report.problem is None
    assert [(r.line, r.name, r.action, r.reasons) for r in report.rows] == [
        (2, "acme", "new", ()), (3, "beta", "new", ())]
    acme, beta = report.members
    assert acme.tenant == TENANT and acme.language == "de" and acme.channels.email == "info@acme.example"
    assert [(s.profile, s.mode) for s in acme.subscriptions] == [("h2", "daily"), ("mobility", "daily")]
    assert beta.language == "en" and beta.subscriptions[0].mode == "instant"  # the files' defaults


@pytest.mark.parametrize("prefix, delimiter, header", [
    (b"\xef\xbb\xbf", ";", "Name;CRM-Id;EMAIL;Profiles;Mode"),
    (b"", ",", " NAME ,crm-id, Email ,PROFILES,mode"),
    (b"", "\t", "name\tcrm id\temail\tprofiles\tmode"),
])
def test_bom_delimiter_and_header_case_are_tolerated(prefix: bytes, delimiter: str,
                                                    header: str) -> None:
    row = delimiter.join(["acme", "C-17", "info@acme.example", "h2|agri", "weekly"])
    report = _read(prefix + f"{header}\n{row}\n".encode())
    assert report.problem is None, report.problem
    assert len(report.ignored_columns) == 1
    [member] = report.members
    assert member.name == "acme" and member.channels.email == "info@acme.example"
    assert [(s.profile, s.mode) for s in member.subscriptions] == [("h2", "weekly"), ("agri", "weekly")]


def test_every_invalid_row_says_why() -> None:
    report = _read("name,email,language,profiles,mode\n"
                   "ok,ok@example.org,en,h2,instant\n"
                   "bad-email,not-an-address,en,h2,instant\n"
                   "bad-profile,p@example.org,en,h22,instant\n"
                   "bad-language,l@example.org,xx,h2,instant\n"
                   "bad-mode,m@example.org,en,h2,hourly\n"
                   "ok,other@example.org,en,h2,instant\n"
                   "dup-email,OK@example.org,en,h2,instant\n"
                   "Acme GmbH,g@example.org,en,h2,instant\n"
                   "no-email,,en,h2,instant\n"
                   "no-profile,np@example.org,en,,instant\n")
    reasons = {r.name: r.reasons for r in report.rows if r.action == "invalid"}
    assert report.count("new") == 1 and report.count("invalid") == 9
    assert reasons["bad-email"] == ("email: 'not-an-address' is not an email address",)
    assert reasons["bad-profile"] == ("profiles: unknown profile 'h22'; did you mean 'h2'?",)
    assert reasons["bad-language"][0].startswith("language: callwatch does not write in 'xx'")
    assert reasons["bad-mode"] == ("mode: unknown mode (modes: instant, daily, weekly)",)
    assert reasons["ok"] == ("duplicate row: same name as line 2",)
    assert reasons["dup-email"] == ("duplicate row: same email as line 2",)
    assert reasons["Acme GmbH"][0].startswith("name: use letters, digits")
    assert reasons["no-email"] == ("email: missing",)
    assert reasons["no-profile"] == ("profiles: none given (name at least one profile)",)
    assert report.members == [r.member for r in report.rows[:1]]


def test_stored_members_are_updated_unchanged_or_refused() -> None:
    existing = {
        "same": _web("same", "same@example.org"),
        "moved": _web("moved", "moved@example.org"),
        "filed": _web("filed", "filed@example.org", origin="file"),
        "botted": _web("botted", "bot@example.org", origin="bot"),
        "theirs": _web("theirs", "theirs@example.org", tenant="alentejo-agrifood"),
        "holder": _web("holder", "taken@example.org"),
    }
    report = _read("name,email,profiles\n"
                   "same,same@example.org,h2\n"
                   "moved,moved@example.org,h2 agri\n"
                   "filed,filed@example.org,h2\n"
                   "botted,bot@example.org,h2\n"
                   "theirs,theirs@example.org,h2\n"
                   "newcomer,taken@example.org,h2\n", existing)
    actions = {r.name: (r.action, r.reasons) for r in report.rows}
    assert actions["same"] == ("unchanged", ())
    assert actions["moved"] == ("updated", ())
    assert actions["filed"] == ("invalid", ("name: this member is kept in a subscriber file; "
                                            "change it there",))
    assert actions["botted"][0] == "invalid" and "Telegram bot" in actions["botted"][1][0]
    assert actions["theirs"] == ("invalid", ("name: another cluster's member has this name; "
                                             "choose another",))
    assert actions["newcomer"] == ("invalid", ("email: already the address of member 'holder'",))
    assert [m.name for m in report.members] == ["moved"]


@pytest.mark.parametrize("data, problem", [
    (b"email,profiles\nx@example.org,h2\n", "missing: name"),
    (b"", "missing: name, email"),
    ("name,email,profiles\nzoë,z@example.org,h2\n".encode("latin-1"), "not UTF-8"),
])
def test_a_file_that_cannot_be_read_is_refused_whole(data: bytes, problem: str) -> None:
    report = _read(data)
    assert report.problem is not None and problem in report.problem and report.rows == ()


def test_the_plan_key_tells_a_changed_plan_and_the_digest_a_changed_file() -> None:
    text = "name,email,profiles\nacme,info@acme.example,h2\n"
    first, again = _read(text), _read(text)
    assert (first.plan_key, first.digest) == (again.plan_key, again.digest)
    taken = _read(text, {"acme": _web("acme", "x@example.org", tenant="elsewhere")})
    assert taken.plan_key != first.plan_key and taken.digest == first.digest
    assert _read(text + "\n").digest != first.digest


def test_the_export_imports_back_unchanged() -> None:
    members = [_web("acme", "info@acme.example"),
               _web("mixed", "m@example.org", follows=frozenset({("h2", "daily"), ("agri", "weekly")}))]
    report = _read(members_csv(members), {m.name: m for m in members})
    assert [(r.name, r.action) for r in report.rows] == [("acme", "unchanged"), ("mixed", "unchanged")]
    fresh = _read(members_csv(members))
    assert {(s.profile, s.mode) for s in fresh.members[1].subscriptions} == {("h2", "daily"),
                                                                              ("agri", "weekly")}


def test_an_exported_cell_never_runs_as_a_formula() -> None:
    text = members_csv([_web("acme", "=HYPERLINK(1)@example.org"), _web("b", "+1@example.org")])
    assert [line.split(",")[1] for line in text.splitlines()[1:]] == [
        "'=HYPERLINK(1)@example.org", "'+1@example.org"]
