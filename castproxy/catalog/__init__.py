"""Selecting a workspace's operations (`select`) and searching them (`index`, `words`, `meta`)."""
