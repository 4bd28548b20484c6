"""Reviewing what a config exposes: the lock file, `castproxy diff`, drift at serve time, CI output.

`lockfile` writes and reads cast.lock (digests of the published tool definitions), `sources` builds
the same records from a config, a git revision or the lock, `changes` (with `schemas`) turns two of
them into classified changes, `report` prints those, `drift` guards `serve`, `ci` formats `validate`.
"""
