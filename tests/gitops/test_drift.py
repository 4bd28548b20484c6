"""The lock guard inside snapshot builds: warn serves drifted tools, enforce keeps the reviewed ones or
refuses the workspace, off ignores the lock; an enforce config without a readable lock is rejected."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from pathlib import Path

import pytest
from gitops_support import TOOLS, Project, run, spec
from support.metrics import parse

from castproxy.config.loader import load_config
from castproxy.config.problems import ConfigError
from castproxy.observe import AuditTrail, Observer
from castproxy.openapi import loader
from castproxy.serve.snapshot import Snapshot, build_snapshot


def _required_species(document: dict) -> None:
    document["components"]["schemas"]["NewPet"]["properties"]["species"] = {"type": "string"}
    document["components"]["schemas"]["NewPet"]["required"].append("species")


def build(project: Project, previous: Snapshot | None = None) -> Snapshot:
    return build_snapshot(load_config(project.config), previous=previous)


def drift_gauge(snapshot: Snapshot) -> dict[tuple[str, str], float]:
    """castproxy_lock_drift as /metrics shows it once the snapshot is served: (workspace, serving) -> value."""
    observer = Observer(AuditTrail(None))
    observer.snapshot_installed(snapshot)
    return {(labels["workspace"], labels["serving"]): value
            for (name, pairs), value in parse(observer.metrics.render().decode()).items()
            for labels in [dict(pairs)] if name == "castproxy_lock_drift"}


def listed(snapshot: Snapshot, tool: str = "createPet") -> dict:
    return next(t for t in snapshot.workspaces["pets"].listing["tools"] if t["name"] == tool)


@pytest.fixture
def locked(project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Project:
    assert run(capsys, "lock", "-c", str(project.config))[0] == 0
    monkeypatch.setenv("PETS_TOKEN", "pets-token")
    return project


def test_in_sync_is_reported_and_served(locked: Project) -> None:
    snapshot = build(locked)
    assert snapshot.drift is not None and snapshot.drift.mode == "warn"
    assert snapshot.drift.as_json()["drifted"] == []
    assert snapshot.drift.workspaces["pets"].state == "in-sync"
    assert drift_gauge(snapshot) == {("pets", "compiled"): 0}


def test_warn_logs_and_serves_the_drifted_tools(locked: Project, caplog: pytest.LogCaptureFixture) -> None:
    first = build(locked)
    locked.write(spec(_required_species))
    with caplog.at_level(logging.WARNING, logger="castproxy.gitops.drift"):
        snapshot = build(locked, previous=first)
    assert "species" in listed(snapshot)["inputSchema"]["properties"]
    drift = snapshot.drift.workspaces["pets"]  # type: ignore[union-attr]
    assert (drift.state, drift.serving) == ("drifted", "compiled")
    # The previous snapshot held the locked definitions, so the drift is told argument by argument.
    assert drift.changes == ("createPet: argument `species` added (required)",)
    record = next(r for r in caplog.records if "differ from the lock" in r.getMessage())
    assert record.fields["changes"] == list(drift.changes)  # type: ignore[attr-defined]
    assert drift_gauge(snapshot) == {("pets", "compiled"): 1}


def test_enforce_keeps_the_previous_snapshots_reviewed_tools(locked: Project) -> None:
    locked.write(server="  lock: enforce\n")
    first = build(locked)
    locked.write(spec(_required_species), server="  lock: enforce\n")
    snapshot = build(locked, previous=first)
    assert "species" not in listed(snapshot)["inputSchema"]["properties"]
    assert snapshot.workspaces["pets"].tools["createPet"] is first.workspaces["pets"].tools["createPet"]
    assert snapshot.drift.workspaces["pets"].serving == "reviewed"  # type: ignore[union-attr]
    # Settings that are not tools come from the new config (here: the timeout).
    locked.write(spec(_required_species), server="  lock: enforce\n",
                 extra_workspace="    timeout: 5s\n")
    again = build(locked, previous=snapshot)
    assert again.workspaces["pets"].timeout == 5.0
    assert "species" not in listed(again)["inputSchema"]["properties"]


def test_enforce_without_reviewed_tools_refuses_the_workspace(locked: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh process: `castproxy lock` ran elsewhere, so the reviewed spec was never parsed here.
    monkeypatch.setattr(loader, "_parsed", OrderedDict())
    locked.write(spec(_required_species), server="  lock: enforce\n")
    snapshot = build(locked)
    assert "pets" not in snapshot.workspaces
    assert "differ from cast.lock (server.lock: enforce)" in snapshot.unavailable["pets"]
    assert snapshot.drift.workspaces["pets"].serving == "none"  # type: ignore[union-attr]
    assert drift_gauge(snapshot) == {("pets", "none"): 1}


def test_enforce_rebuilds_from_the_reviewed_spec_this_process_still_holds(
    tmp_path: Path, locked: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock moves on to a config that exposes one more tool of the reviewed spec, while the spec
    on disk has drifted: neither what is compiled nor the previous snapshot matches the new lock, but
    the reviewed document (same digest as the lock's) is still parsed in memory."""
    locked.write(server="  lock: enforce\n")
    first = build(locked)  # parses the reviewed spec
    review = Project(tmp_path / "review").write(tools=[*TOOLS, "deletePet"], server="  lock: enforce\n")
    assert run(capsys, "lock", "-c", str(review.config))[0] == 0
    locked.lock.write_text(review.lock.read_text())
    locked.write(spec(_required_species), tools=[*TOOLS, "deletePet"], server="  lock: enforce\n")
    snapshot = build(locked, previous=first)
    assert sorted(snapshot.workspaces["pets"].tools) == sorted([*TOOLS, "deletePet"])
    assert "species" not in listed(snapshot)["inputSchema"]["properties"]
    assert snapshot.drift.workspaces["pets"].serving == "reviewed"  # type: ignore[union-attr]


def test_enforce_refuses_a_workspace_that_is_not_in_the_lock(locked: Project) -> None:
    locked.write(server="  lock: enforce\n", extra_workspace=(
        "  more:\n    openapi: spec.json\n    tools: [getPet]\n"))
    snapshot = build(locked)
    assert sorted(snapshot.workspaces) == ["pets"]
    assert "it is not in cast.lock" in snapshot.unavailable["more"]
    assert snapshot.drift.workspaces["more"].state == "not-locked"  # type: ignore[union-attr]


def test_enforce_needs_a_readable_lock(locked: Project) -> None:
    locked.write(server="  lock: enforce\n")
    locked.lock.write_text("version: 1\nworkspaces: [\n")
    with pytest.raises(ConfigError) as caught:
        build(locked)
    assert str(caught.value.problems[0]).startswith(f"{locked.lock}:")
    locked.lock.unlink()
    with pytest.raises(ConfigError) as caught:
        build(locked)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line) == (str(locked.config), 3)
    assert "server.lock is enforce, but there is no lock file cast.lock" in problem.message


def test_warn_with_an_unreadable_lock_serves_and_says_so(locked: Project) -> None:
    locked.lock.write_text("not: [a lock\n")
    snapshot = build(locked)
    assert "pets" in snapshot.workspaces
    assert snapshot.drift is not None and snapshot.drift.problem and "cast.lock:" in snapshot.drift.problem


def test_off_and_no_lock_read_nothing(locked: Project) -> None:
    locked.write(server="  lock: off\n")
    locked.lock.write_text("garbage: [")
    assert build(locked).drift is None
    locked.write(server="  lock: warn\n")
    locked.lock.unlink()
    assert build(locked).drift is None


def test_report_json_for_readyz(locked: Project) -> None:
    locked.write(spec(_required_species))
    body = build(locked).drift.as_json()  # type: ignore[union-attr]
    assert body == {
        "file": str(locked.lock),
        "mode": "warn",
        "drifted": ["pets"],
        "workspaces": {"pets": {"state": "drifted", "serving": "compiled", "changes": [
            "createPet: definition changed (the old one is not known here, so neither is the class)"]}},
    }
    json.dumps(body)
