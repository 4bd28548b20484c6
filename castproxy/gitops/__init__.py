"""Reviewing what a config exposes: the lock file, `castproxy diff`, drift at serve time, CI output."""
