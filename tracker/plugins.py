"""Finding plugins: sources (``callwatch.sources``) and channels (``callwatch.channels``)."""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

from tracker.errors import ConfigError
from tracker.ports import ChannelPlugin, SourcePlugin

GROUP = "callwatch.sources"
CHANNEL_GROUP = "callwatch.channels"

#: The channels callwatch ships, as pyproject.toml registers them, in the order of their
#: sections in defaults.toml. Read as well as the entry points so that a checkout whose
#: installed metadata predates a channel (an editable install not reinstalled) still has
#: every built-in channel; names, not imports: the core does not import the adapters.
BUILTIN_CHANNELS: dict[str, str] = {
    "console": "notifiers.console:PLUGIN",
    "telegram": "notifiers.telegram:PLUGIN",
    "email": "notifiers.email:PLUGIN",
    "webhook": "notifiers.webhook:PLUGIN",
    "apprise": "notifiers.apprise:PLUGIN",
    "slack": "notifiers.slack:PLUGIN",
    "teams": "notifiers.teams:PLUGIN",
}


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


@functools.cache
def channel_plugins() -> dict[str, ChannelPlugin]:
    """Every channel by name: the built-ins in their order, then installed ones by name.

    Two plugins with one name is an error, unless both name the same ``module:attribute``
    (a built-in found through its entry point too).
    """
    targets = dict(BUILTIN_CHANNELS)
    for entry in sorted(entry_points(group=CHANNEL_GROUP), key=lambda e: e.name):
        if entry.name in targets and targets[entry.name] != entry.value:
            raise ConfigError(f"two plugins register the channel {entry.name!r}", key=CHANNEL_GROUP)
        targets.setdefault(entry.name, entry.value)
    plugins: dict[str, ChannelPlugin] = {}
    for name, target in targets.items():
        plugin = EntryPoint(name=name, value=target, group=CHANNEL_GROUP).load()
        if not isinstance(plugin, ChannelPlugin) or plugin.name != name:
            raise ConfigError(f"{target} is not the ChannelPlugin {name!r}", key=CHANNEL_GROUP)
        plugins[name] = plugin
    return plugins
