"""Persistent state behind one interface: SQLite (embedded) and Redis (replicas), encryption at rest."""
