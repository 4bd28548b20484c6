"""Selecting a workspace's operations (`select`) and searching them (`index`, `words`, `meta`).

The tools a workspace exposes come from `select.select`; in `discovery: search` mode they are
reached through three meta-tools (`meta`) backed by an in-memory full-text index (`index`).
"""
