"""Errors shared across parts."""


class ConfigError(ValueError):
    """A configuration value is wrong; the message names its YAML path, e.g. ``scrape.timeout``."""
