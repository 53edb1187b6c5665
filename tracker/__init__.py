"""callwatch core: the call record, its history, configuration, matching and the pipeline."""

__version__ = "0.1.0"
