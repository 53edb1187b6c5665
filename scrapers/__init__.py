"""Sources of funding calls: one module per source, each a plugin of the `callwatch.sources` group."""
