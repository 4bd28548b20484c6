"""The admin page at /admin: what the proxy serves, how calls go, who is signed in (reads observe/ and store/)."""

__all__: list[str] = []
