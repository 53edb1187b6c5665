"""Canonical programme names, their aliases and the portal's frameworkProgramme codes.

Profiles, config and every source speak of programmes by these canonical names, so a
profile that says "Horizon Europe" matches a portal topic (code 43108390), an ECCP mirror
and an EIT call alike. Codes come from the portal's facet table (see
shared/sources/ft_portal.md §1.6); "Interreg" and "Cohesion Policy" have no portal code.

EU external action has codes of its own: the portal's type-2 rows (calls for proposals
published through PROSPECT) carry 111111 "EU External Action - Prospect (RELEX-PROSPECT)",
and 47376280 "EU External Action - eGrants (RELEX2027)" and 45876777 NDICI - Global Europe
are its other entries in the facet table (labels as the public TypeScript adapter that the
notes cite copied that table on 6 Oct 2026). ``EXTERNAL_ACTION`` names that family;
``family_portal_codes`` gives its codes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

#: the family of the portal's type-2 calls (EU external action, published through PROSPECT)
EXTERNAL_ACTION = "EU External Action"


@dataclass(frozen=True)
class Programme:
    """One EU funding programme as callwatch names it."""

    name: str
    aliases: tuple[str, ...] = ()
    portal_codes: tuple[str, ...] = ()
    family: str | None = None  # a policy family, e.g. Interreg belongs to Cohesion Policy
    notes: str = field(default="", compare=False)


PROGRAMMES: tuple[Programme, ...] = (
    Programme("Horizon Europe", ("HORIZON", "Horizon", "HE", "EIC", "ERC", "MSCA"), ("43108390",)),
    Programme("Digital Europe", ("DIGITAL", "Digital Europe Programme", "DEP"), ("43152860",)),
    Programme("Single Market Programme", ("SMP", "SMP-COSME", "SMP-FOOD", "COSME", "Euroclusters"),
              ("43252476",)),
    Programme("EU4Health", ("EU4H",), ("43332642",)),
    Programme("LIFE", ("LIFE Programme",), ("43252405",)),
    Programme("Connecting Europe Facility", ("CEF",), ("43251567",)),
    Programme("Erasmus+", ("Erasmus", "ERASMUS+", "EPLUS"), ("43353764",)),
    Programme("Creative Europe", ("CREA",), ("43251814",)),
    Programme("Innovation Fund", ("INNOVFUND",), ("43089234",)),
    Programme("Interregional Innovation Investments", ("I3",), ("44416173",)),
    Programme("EMFAF", ("European Maritime, Fisheries and Aquaculture Fund",), ("43392145",)),
    Programme("CERV", ("Citizens, Equality, Rights and Values",), ("43251589",)),
    Programme("European Defence Fund", ("EDF",), ("44181033",)),
    Programme("Euratom", ("EURATOM",), ("43298916",)),
    Programme("ESF+", ("European Social Fund Plus",), ("43254019",)),
    Programme("Research Fund for Coal and Steel", ("RFCS",), ("43252449",)),
    Programme("Union Civil Protection Mechanism", ("UCPM",), ("43298203",)),
    Programme("Just Transition Mechanism", ("JTM",), ("44773066",)),
    Programme("Union Anti-Fraud Programme", ("EUAF",), ("43251842",)),
    Programme("Internal Security Fund", ("ISF",), ("43252368",)),
    Programme("Asylum, Migration and Integration Fund", ("AMIF",), ("43251447",)),
    Programme("Justice Programme", ("JUST",), ("43252386",)),
    Programme("European Solidarity Corps", ("ESC",), ("43254037",)),
    Programme(EXTERNAL_ACTION,
              ("External Action", "EU External Action - Prospect", "RELEX-PROSPECT", "PROSPECT",
               "RELEX2027", "RELEX"),
              ("111111", "47376280")),
    Programme("NDICI - Global Europe",
              ("NDICI", "Global Europe", "NDICI-Global Europe",
               "Neighbourhood, Development and International Cooperation Instrument"),
              ("45876777",), family=EXTERNAL_ACTION),
    Programme("EIT", ("European Institute of Innovation and Technology",)),
    Programme("Interreg", ("INTERREG", "European Territorial Cooperation"), family="Cohesion Policy"),
    Programme("Cohesion Policy", ("ERDF", "Cohesion Fund", "Cohesion")),
    Programme("Cascade funding", ("FSTP", "Financial Support to Third Parties")),
)

_BY_KEY: dict[str, Programme] = {}
for _programme in PROGRAMMES:
    for _name in (_programme.name, *_programme.aliases):
        _BY_KEY[_name.casefold()] = _programme
_BY_CODE = {code: p for p in PROGRAMMES for code in p.portal_codes}


def lookup(name: str) -> Programme | None:
    """The programme called ``name`` (canonical or alias, any case), or None."""
    return _BY_KEY.get(name.strip().casefold())


def by_portal_code(code: str) -> Programme | None:
    """The programme with the portal's frameworkProgramme ``code``, or None."""
    return _BY_CODE.get(code.strip())


def family_portal_codes(name: str) -> tuple[str, ...]:
    """The portal codes of the programme ``name`` and of every programme in its family."""
    programme = lookup(name)
    if programme is None:
        return ()
    members = [p for p in PROGRAMMES if p is programme or p.family == programme.name]
    return tuple(dict.fromkeys(code for p in members for code in p.portal_codes))


def canonical(name: str) -> str:
    """The canonical name for ``name``; raise ValueError with a suggestion if unknown."""
    programme = lookup(name)
    if programme is None:
        raise ValueError(unknown_programme_message(name))
    return programme.name


def unknown_programme_message(name: str) -> str:
    """'unknown programme "Horizn Europe"; did you mean "Horizon Europe"?'."""
    candidates = [p.name for p in PROGRAMMES] + [a for p in PROGRAMMES for a in p.aliases]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(name.casefold(), [c.casefold() for c in candidates], n=1)
    message = f"unknown programme {name!r}"
    if close:
        suggestion = lookup(close[0])
        message += f"; did you mean {suggestion.name if suggestion else close[0]!r}?"
    return message
