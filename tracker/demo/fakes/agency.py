"""Replay of a Commission agency site in ECL markup (EISMEA, HaDEA, EIC) on 127.0.0.1.

``<prefix>_page<N>*.html`` answers ``<list_path>?page=N`` (page 0 without the parameter),
and every ``detail_<slug>.html`` answers ``<detail_base>/<slug>``, so the real ecl_pages
source reads it through its ``list_url`` setting.
"""

from __future__ import annotations

from pathlib import Path

from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.sites import FixtureSite


class EclSite(FixtureSite):
    """An agency's calls list and call pages from ``directory``."""

    def __init__(self, directory: Path, *, prefix: str = "eismea_calls",
                 list_path: str = "/funding-opportunities/calls-proposals_en",
                 detail_base: str = "/funding-opportunities/calls-proposals") -> None:
        routes: dict[str, Path | Reply] = {}
        for page in sorted(directory.glob(f"{prefix}_page*.html")):
            number = int(page.stem.removeprefix(f"{prefix}_page").split("_")[0])
            routes[list_path + (f"?page={number}" if number else "")] = page
        for detail in directory.glob("detail_*.html"):
            routes[f"{detail_base}/{detail.stem.removeprefix('detail_')}"] = detail
        super().__init__(routes)
        self.list_path = list_path

    @property
    def list_url(self) -> str:
        return self.url + self.list_path
