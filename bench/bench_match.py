"""Benchmark: 10,000 profiles against 5,000 calls, set-based matcher versus one pair at a time.

Generates realistic calls (titles, keywords and summaries from EU programme vocabulary,
programmes, statuses, deadlines, budgets, places, audiences) and profiles (queries with
phrases, wildcards and exclusions, and every filter), from a fixed seed. Runs
``match_calls`` (inverted index over bitsets) and the test oracle ``match_naive`` (every
profile against every call, ``tests/rules_oracle.py``) in the same run, checks they return
the same matches, and prints the times and the machine. Targets (issue 4): fast under 5 s,
at least 20 times faster than naive. The fast matcher runs ``--repeat`` times (default 3)
and the best time counts: on a shared machine other work only ever adds time, and the fast
run is short enough to feel it.

    .venv/bin/python bench/bench_match.py                      # the full comparison
    .venv/bin/python bench/bench_match.py --naive-profiles 500 # naive on a sample, scaled

With ``--naive-profiles N`` the naive matcher runs on the first N profiles only and its
time is scaled linearly to all profiles (it is linear: each pair costs the same on
average); the output says so.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import describe, peak_rss_mib
from tests.rules_oracle import match_naive
from tracker.models import CallRecord, CallStatus
from tracker.rules.matcher import match_calls
from tracker.rules.profiles import Profile

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

TOPICS: dict[str, list[str]] = {
    "energy": ["hydrogen", "renewable hydrogen", "electrolysers", "fuel cells", "energy storage",
               "batteries", "solar photovoltaics", "offshore wind", "smart grids", "heat pumps",
               "district heating", "biomethane", "energy efficiency", "power-to-X", "geothermal",
               "hydrogen valleys", "ammonia", "grid flexibility", "energy communities",
               "thermal storage", "tidal energy", "bioenergy", "perovskite", "demand response",
               "building renovation", "energy poverty", "e-fuels", "interconnectors"],
    "digital": ["artificial intelligence", "AI", "machine learning", "data spaces", "cloud",
                "edge computing", "cybersecurity", "robotics", "high-performance computing",
                "quantum", "5G", "semiconductors", "digital twins", "blockchain", "IoT",
                "large language models", "computer vision", "chips", "6G", "photonics",
                "European digital innovation hubs", "testing and experimentation facilities",
                "open source", "digital skills", "trustworthy AI", "federated learning",
                "smart manufacturing", "virtual worlds"],
    "agrifood": ["agri-food", "precision agriculture", "irrigation", "soil health", "food safety",
                 "olive oil", "wine", "short supply chains", "aquaculture", "fisheries",
                 "organic farming", "food processing", "pesticides", "livestock", "agroecology",
                 "plant protein", "food waste", "pollinators", "animal welfare", "vertical farming",
                 "dairy", "food security", "rural areas", "agroforestry", "nutrition",
                 "cork", "honey", "fertilisers"],
    "health": ["cancer", "vaccines", "antimicrobial resistance", "medical devices", "e-health",
               "rare diseases", "mental health", "clinical trials", "diagnostics", "pandemic",
               "personalised medicine", "ageing", "dementia", "cardiovascular", "genomics",
               "health data", "telemedicine", "obesity", "diabetes", "pharmaceuticals",
               "microbiome", "radiotherapy", "nursing", "hospitals", "paediatric", "biobanks"],
    "mobility": ["electric vehicles", "charging infrastructure", "aviation", "rail", "shipping",
                 "urban mobility", "autonomous driving", "sustainable fuels", "logistics", "ports",
                 "zero-emission trucks", "cycling", "inland waterways", "airports", "drones",
                 "connected vehicles", "road safety", "public transport", "freight corridors",
                 "battery swapping", "maritime", "hyperloop", "car sharing", "tyres"],
    "circular": ["circular economy", "recycling", "critical raw materials", "textiles", "plastics",
                 "bio-based", "waste", "water reuse", "construction", "packaging",
                 "remanufacturing", "eco-design", "industrial symbiosis", "mining", "steel",
                 "cement", "chemicals", "biorefineries", "product passports", "repair",
                 "e-waste", "composites", "microplastics", "wood"],
    "climate": ["climate adaptation", "biodiversity", "nature-based solutions", "wildfires",
                "flood", "carbon capture", "air quality", "oceans", "forests", "drought",
                "wetlands", "peatlands", "coastal erosion", "heatwaves", "methane",
                "carbon removals", "restoration", "invasive species", "glaciers", "permafrost",
                "urban greening", "climate services", "sea level rise", "pollution"],
    "culture": ["cultural heritage", "creative industries", "media", "music", "tourism",
                "audiovisual", "museums", "architecture", "design", "video games",
                "literature", "translation", "performing arts", "festivals", "journalism",
                "libraries", "fashion", "New European Bauhaus", "crafts", "film"],
    "space": ["space", "satellite", "Earth observation", "Galileo", "Copernicus", "launchers",
              "space weather", "in-orbit servicing", "space debris", "defence",
              "secure connectivity", "space situational awareness", "microgravity", "rovers",
              "ground segment", "navigation", "spaceports", "small satellites"],
    "society": ["migration", "democracy", "gender equality", "social inclusion", "youth",
                "education", "vocational training", "disinformation", "citizenship",
                "employment", "social economy", "housing", "disability", "Roma",
                "volunteering", "sport", "civil protection", "security research", "border management"],
}
FILLER = [
    "innovation", "demonstration", "pilot", "value", "chain", "regions", "SMEs", "cross-border",
    "deployment", "resilience", "skills", "uptake", "competitiveness", "partnership",
    "interregional", "investment", "ecosystem", "cooperation", "research", "actions", "support",
    "measures", "pathway", "market", "scale-up", "stakeholders", "capacity", "building",
    "transition", "industrial", "European", "Union", "framework", "solutions", "approaches",
    "impact", "expected", "outcomes", "activities", "consortium", "projects", "contribute", "to",
    "the", "and", "of", "in", "for", "with", "by", "through", "develop", "test", "validate",
]
PROGRAMMES = ["Horizon Europe"] * 8 + ["Digital Europe"] * 3 + ["Single Market Programme"] * 2 + [
    "Interreg", "Interreg", "Cohesion Policy", "LIFE", "Innovation Fund", "EU4Health",
    "Creative Europe", "Erasmus+", "Connecting Europe Facility", "EMFAF", "European Defence Fund",
    "Interregional Innovation Investments", "Cascade funding", None]
ACTION_TYPES = ["HORIZON-RIA", "HORIZON-IA", "HORIZON-CSA", "DIGITAL-SIMPLE", "SMP-COSME-GFS",
                "LIFE-SAP", "HORIZON-EIC", None, None]
COUNTRIES = ["ES", "PT", "FR", "IT", "DE", "PL", "DK", "EL", "NL", "BE", "AT", "CZ", "RO", "SE"]
REGIONS = ["ES24", "ES30", "ES43", "PT18", "PT11", "FRK2", "ITC4", "PL82", "DK04", "EL30", "RO11"]
AUDIENCES = ["SMEs", "Clusters", "Research organisations", "Universities", "Public authorities",
             "Start-ups", "NGOs"]


def _topic_terms(rng: random.Random, topic: str, count: int) -> list[str]:
    return rng.sample(TOPICS[topic], min(count, len(TOPICS[topic])))


def make_calls(rng: random.Random, count: int) -> list[CallRecord]:
    calls: list[CallRecord] = []
    for i in range(count):
        topics = rng.sample(list(TOPICS), rng.choice([1, 1, 2]))
        terms = [t for topic in topics for t in _topic_terms(rng, topic, rng.randint(2, 5))]
        title_words = rng.sample(terms, min(2, len(terms))) + rng.sample(FILLER, rng.randint(3, 7))
        rng.shuffle(title_words)
        summary = " ".join(rng.choice(FILLER) if rng.random() < 0.8 else rng.choice(terms)
                           for _ in range(rng.randint(60, 160)))
        deadlines = tuple(NOW + timedelta(days=rng.randint(-60, 500), hours=rng.randint(0, 23))
                          for _ in range(rng.choice([0, 1, 1, 1, 2])))
        places = rng.sample(COUNTRIES, rng.randint(1, 4)) if rng.random() < 0.3 else []
        regions = rng.sample(REGIONS, rng.randint(1, 3)) if rng.random() < 0.15 else []
        calls.append(CallRecord(
            source="bench", native_id=f"CALL-{i:05d}", title=" ".join(title_words).capitalize(),
            status=rng.choice([CallStatus.OPEN] * 5 + [CallStatus.FORTHCOMING] * 3
                              + [CallStatus.CLOSED] * 2),
            programme=rng.choice(PROGRAMMES), summary=summary,
            url=f"https://example.invalid/calls/{i}", deadlines=deadlines,
            budget_eur=rng.choice([None, rng.randint(50, 40_000) * 1_000]),
            action_type=rng.choice(ACTION_TYPES), keywords=tuple(rng.sample(terms, min(len(terms), 6))),
            countries=tuple(places), regions=tuple(regions),
            audience=tuple(rng.sample(AUDIENCES, rng.randint(1, 2))) if rng.random() < 0.4 else (),
        ))
    return calls


def _query_term(rng: random.Random, term: str) -> str:
    if " " in term or "-" in term:
        return f'"{term}"' if rng.random() < 0.7 else f'"{term}*"'
    if len(term) > 6 and rng.random() < 0.3:
        return term[: rng.randint(5, len(term) - 1)] + "*"
    return term


def make_profiles(rng: random.Random, count: int) -> list[Profile]:
    profiles: list[Profile] = []
    for i in range(count):
        topic = rng.choice(list(TOPICS))
        positive = [_query_term(rng, t) for t in _topic_terms(rng, topic, rng.randint(2, 6))]
        query = "(" + " OR ".join(positive) + ")"
        if rng.random() < 0.2:  # narrow with a second topic
            other = rng.choice(list(TOPICS))
            query += " AND (" + " OR ".join(_query_term(rng, t) for t in _topic_terms(rng, other, 3)) + ")"
        if rng.random() < 0.5:
            excluded = [_query_term(rng, t) for t in _topic_terms(rng, rng.choice(list(TOPICS)), 2)]
            query += " AND NOT (" + " OR ".join(excluded) + ")"
        fields: dict[str, Any] = {"name": f"profile-{i:05d}", "query": query,
                                  "min_score": rng.choice([1, 1, 2, 3])}
        if rng.random() < 0.5:
            fields["programmes"] = sorted({p for p in rng.sample(PROGRAMMES, 3) if p})
        if rng.random() < 0.2:
            fields["exclude_programmes"] = ["European Defence Fund"]
        if rng.random() < 0.3:
            fields["action_types"] = rng.sample(["RIA", "IA", "CSA"], rng.randint(1, 2))
        if rng.random() < 0.5:
            low = rng.choice([0, 7, 14, 30])
            fields["deadline"] = {"min_days": low, "max_days": low + rng.choice([90, 180, 365])}
        if rng.random() < 0.3:
            fields["budget_eur"] = {"min": rng.choice([100_000, 500_000, 1_000_000])}
        if rng.random() < 0.6:
            fields["countries"] = rng.sample(COUNTRIES + REGIONS, rng.randint(1, 2))
        if rng.random() < 0.3:
            fields["audience"] = rng.sample(["sme", "cluster", "start-up", "university"], 1)
        profiles.append(Profile.model_validate(fields))
    return profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--naive-profiles", type=int, default=None,
                        help="run the naive matcher on this many profiles and scale its time")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--repeat", type=int, default=3,
                        help="run the fast matcher this many times and keep the best (a shared "
                             "machine's other work only ever adds time)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    calls = make_calls(rng, args.calls)
    profiles = make_profiles(rng, args.profiles)
    print(f"machine: {describe()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; load average {os.getloadavg()[0]:.2f}")
    print(f"data: {len(calls)} calls, {len(profiles)} profiles, seed {args.seed}")

    times = []
    for _ in range(max(args.repeat, 1)):
        start = time.perf_counter()
        fast = match_calls(calls, profiles, NOW)
        times.append(time.perf_counter() - start)
    fast_seconds = min(times)
    print(f"fast (set-based): best {fast_seconds:.2f} s of {len(times)} "
          f"({', '.join(f'{t:.2f}' for t in times)}), {len(fast)} matches, "
          f"peak RSS {peak_rss_mib():.0f} MiB")

    sample = profiles if args.naive_profiles is None else profiles[: args.naive_profiles]
    start = time.perf_counter()
    naive = match_naive(calls, sample, NOW)
    naive_seconds = time.perf_counter() - start
    scale = len(profiles) / len(sample)
    naive_total = naive_seconds * scale
    label = "" if scale == 1 else f" on {len(sample)} profiles, scaled x{scale:.1f}"
    print(f"naive (one pair at a time): {naive_total:.1f} s{label}, {len(naive)} matches; "
          f"load average now {os.getloadavg()[0]:.2f}")

    names = {p.name for p in sample}
    same = [m for m in fast if m.profile in names] == naive
    print(f"same matches: {'yes' if same else 'NO'}")
    print(f"speed-up: {naive_total / fast_seconds:.0f}x")
    ok = same and fast_seconds < 5 and naive_total / fast_seconds >= 20
    print("targets (fast < 5 s, >= 20x naive): " + ("met" if ok else "NOT met"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
