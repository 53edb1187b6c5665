"""Finding source plugins through the ``callwatch.sources`` entry-point group."""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from tracker.errors import ConfigError
from tracker.ports import SourcePlugin

GROUP = "callwatch.sources"


@functools.cache
def source_plugins() -> dict[str, SourcePlugin]:
    """Every installed source plugin by kind; two plugins with one kind is an error."""
    plugins: dict[str, SourcePlugin] = {}
    for entry in entry_points(group=GROUP):
        plugin = entry.load()
        if not isinstance(plugin, SourcePlugin):
            raise ConfigError(f"entry point {entry.value} is not a SourcePlugin", key=GROUP)
        if plugin.kind in plugins:
            raise ConfigError(f"two plugins register the source kind {plugin.kind!r}", key=GROUP)
        plugins[plugin.kind] = plugin
    return plugins
