"""castproxy: one YAML file turns REST APIs into MCP servers, behind an OAuth layer."""

__version__ = "0.1.0"
