"""AtlasHub: a self-hosted backend platform that runs as one daemon per machine."""

__version__ = "0.1.0"
