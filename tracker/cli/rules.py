"""Commands of the rules layer: ``profiles check|list|export|suggest``, ``match`` and ``dismiss``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tracker.cli.app import (
    App,
    Column,
    check_command,
    echo_json,
    exit_on_problems,
    format_option,
    pass_app,
    print_table,
    utc_day,
    utc_minute,
)

if TYPE_CHECKING:
    from tracker.rules.matcher import Match


def match_as_json(match: Match) -> dict[str, Any]:
    """The object `callwatch match --format json` prints for one match."""
    from tracker.dates import isoformat_utc

    return {
        "profile": match.profile,
        "call_id": match.call_id,
        "score": match.score,
        "reasons": list(match.reasons),
        "title": match.call.title,
        "status": match.call.status.value,
        "programme": match.call.programme,
        "next_deadline": isoformat_utc(match.next_deadline),
        "url": match.call.url,
    }


# -- profiles -------------------------------------------------------------------------------

@click.group("profiles")
def profiles_group() -> None:
    """Check, list and improve matching profiles."""


@check_command(profiles_group)
def profiles_check(app: App, paths: tuple[Path, ...]) -> None:
    """Validate profile files (default: the profiles directory); exit 2 on any problem.

    PATH may be a YAML file or a directory of them. Every problem is listed with its file,
    line and field.
    """
    from tracker.rules.profiles import read_profiles

    targets = list(paths) or [Path(app.settings.profiles.directory)]
    profiles, problems = read_profiles(targets)
    exit_on_problems(problems, f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found",
                     listed_on_stderr=False)
    names = ", ".join(p.name for p in profiles) or "none"
    click.echo(f"{len(profiles)} profile{'s' if len(profiles) != 1 else ''} OK: {names}")


@profiles_group.command("list")
@format_option("json")
@pass_app
def profiles_list(app: App, fmt: str | None) -> None:
    """Every profile, from the profiles directory and from the database."""

    from tracker.rules.service import load_profiles

    app.store()  # the schema must be current before database profiles are read
    profiles = load_profiles(app.settings, app.engine)
    if not profiles:  # say where they were looked for, not only "0 profiles"
        click.echo(no_profiles_hint(Path(app.settings.profiles.directory)), err=True)
    if fmt == "json":
        echo_json([{**p.as_mapping(), "origin": p.origin} for p in profiles])
        return
    print_table(PROFILE_COLUMNS, [
        {"name": p.name, "origin": p.origin, "description": p.description, "query": p.query or ""}
        for p in profiles
    ], fmt=fmt, title=f"{len(profiles)} profiles")


PROFILE_COLUMNS = (
    Column("name", "name"), Column("origin", "origin", priority=2),
    Column("description", "description", priority=1, wraps=True, min_width=20),
    Column("query", "query", wraps=True, min_width=20),
)


def no_profiles_hint(directory: Path) -> str:
    """What `profiles list` says when it finds none: where it looked, and how to add one."""
    where = directory.resolve()
    missing = "" if where.is_dir() else ", which does not exist"
    return (f"no profiles: none in {where} (profiles.directory{missing}) and none in the "
            f"database; put a profile's YAML file there (`callwatch profiles check` validates it)")


@profiles_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@pass_app
def profiles_export(app: App, directory: Path) -> None:
    """Write the profiles made in the database (on the web, by the bot) as YAML files in
    DIRECTORY, one per profile (`profiles check DIRECTORY` accepts them). Profiles from
    files are not written: git has them."""
    from tracker.rules.sources import export_profiles

    app.store()
    written = export_profiles(app.engine, directory)
    for path in written:
        click.echo(str(path))
    click.echo(f"{len(written)} profile{'s' if len(written) != 1 else ''} exported to {directory}",
               err=True)


@profiles_group.command("suggest")
@click.argument("name")
@click.option("--limit", default=10, show_default=True, help="how many words to propose")
@pass_app
def profiles_suggest(app: App, name: str, limit: int) -> None:
    """Propose exclusion words: frequent in calls dismissed for NAME, rare in kept ones."""

    from tracker.rules.feedback import suggest_exclusions
    from tracker.rules.service import load_profiles, select_profiles
    from tracker.rules.store import RulesStore

    app.store()
    [profile] = select_profiles(load_profiles(app.settings, app.engine), name)
    rules = RulesStore(app.engine)
    dismissed_ids = {call_id for _, call_id in rules.dismissed([name])}
    kept_ids = rules.matched_calls(name) - dismissed_ids
    dismissed = [c.record for c in rules.calls(dismissed_ids)] if dismissed_ids else []
    kept = [c.record for c in rules.calls(kept_ids)] if kept_ids else []
    if not dismissed:
        click.echo(f"no calls dismissed for {name} yet: dismiss some with "
                   f"`callwatch dismiss {name} CALL_ID`")
        return
    suggestions = suggest_exclusions(profile, dismissed, kept, limit=limit)
    if not suggestions:
        click.echo(f"no word stands out in the {len(dismissed)} calls dismissed for {name}")
        return
    columns = (Column("clause", "add to the query", wraps=True),
               Column("dismissed", "in dismissed"), Column("kept", "in kept"))
    print_table(columns, [{"clause": s.clause, "dismissed": f"{s.dismissed}/{s.dismissed_total}",
                           "kept": f"{s.kept}/{s.kept_total}"} for s in suggestions],
                title=f"exclusions for {name} ({len(dismissed)} dismissed, {len(kept)} kept)")


# -- match and dismiss ------------------------------------------------------------------------

@click.command("match")
@click.option("--profile", "profile_name", help="only this profile")
@click.option("--all", "everything", is_flag=True,
              help="match every stored call, not only those changed since the last match run")
@format_option("json")
@pass_app
def match_command(app: App, profile_name: str | None, everything: bool, fmt: str | None) -> None:
    """Rank calls against profiles, with the reasons for each match.

    By default each profile looks at the calls changed since its last match run (every
    call the first time); --all re-matches everything. Dismissed calls never come back.
    "new" marks a match not announced yet. Looking changes no alert: the matches are
    not recorded, so the next run alerts them as if this command had never run.
    """

    from tracker.rules.service import match_stored

    app.store()
    matches = match_stored(app.engine, app.settings, app.now(), profile=profile_name,
                           everything=everything)
    if not matches and not everything:  # an empty answer says how to get a full one
        click.echo(match_all_hint(profile_name), err=True)
    if fmt == "json":
        echo_json([match_as_json(m) for m in matches])
        return
    columns: tuple[Column, ...] = MATCH_COLUMNS
    if profile_name is not None:  # one profile: its name in the title, not in every row
        columns = tuple(Column(c.key, c.header, priority=9) if c.key == "profile" else c
                        for c in columns)
    print_table(columns, [
        {"profile": m.profile, "score": str(m.score), "call": m.call_id,
         "new": "new" if m.new else "", "status": m.call.status.value,
         "deadline": utc_minute(m.next_deadline), "day": utc_day(m.next_deadline),
         "title": m.call.title, "why": m.explanation}
        for m in matches
    ], fmt=fmt, title=f"{len(matches)} matches" + (f" for {profile_name}" if profile_name else "")
       + ", best first (times in UTC)")


#: `match`: at 80 columns the call, its profile (or its deadline, for one profile) and title
MATCH_COLUMNS = (
    Column("profile", "profile", priority=1),
    Column("score", "score", priority=4),
    Column("call", "call"),
    Column("new", "new", priority=5),
    Column("status", "status", priority=6),
    Column("deadline", "next deadline", priority=2, short=Column("day", "deadline")),
    Column("title", "title", wraps=True),
    Column("why", "why", priority=3, wraps=True, min_width=20),
)


def match_all_hint(profile: str | None) -> str:
    """What `match` says when the calls changed since the last match run match nothing."""
    whose = f"{profile}'s" if profile else "each profile's"
    again = f"callwatch match --all --profile {profile}" if profile else "callwatch match --all"
    return (f"no new matches: only the calls changed since {whose} last match run were "
            f"matched; `{again}` matches every stored call")


@click.command("dismiss")
@click.argument("profile_name", metavar="PROFILE")
@click.argument("call_id")
@pass_app
def dismiss_command(app: App, profile_name: str, call_id: str) -> None:
    """Mark CALL_ID not relevant for PROFILE: it will never be matched for it again."""
    from tracker.rules.service import load_profiles, select_profiles
    from tracker.rules.store import RulesStore

    store = app.store()
    select_profiles(load_profiles(app.settings, app.engine), profile_name)
    store.get_call(call_id)
    if RulesStore(app.engine).dismiss(profile_name, call_id, app.now()):
        click.echo(f"dismissed {call_id} for {profile_name}")
    else:
        click.echo(f"{call_id} was already dismissed for {profile_name}")
