"""Replay of the European Cluster Collaboration Platform's call inventory on 127.0.0.1.

Serves the stored (written) inventory pages (``/search-results?type=eccp_calls&page=N``) and every
``detail_<slug>.html`` in the fixture directory as ``/content/<slug>``, so the real eccp
source walks it through its ``list_url`` setting, as it walks the live site.
"""

from __future__ import annotations

from pathlib import Path

from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.sites import FixtureSite


class EccpSite(FixtureSite):
    """The inventory in ``directory``: ``list_page<N>*.html`` and ``detail_<slug>.html``."""

    LIST_PATH = "/search-results"

    def __init__(self, directory: Path) -> None:
        routes: dict[str, Path | Reply] = {}
        for page in sorted(directory.glob("list_page*.html")):
            number = page.stem.removeprefix("list_page").split("_")[0]
            routes[f"{self.LIST_PATH}?type=eccp_calls&page={number}"] = page
        for detail in directory.glob("detail_*.html"):
            routes[f"/content/{detail.stem.removeprefix('detail_')}"] = detail
        super().__init__(routes)

    @property
    def list_url(self) -> str:
        return f"{self.url}{self.LIST_PATH}?type=eccp_calls&page=0"
