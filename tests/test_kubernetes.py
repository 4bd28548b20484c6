"""deploy/kubernetes: every manifest parses, and the essentials hold (probes, config mounted as a folder,
secrets wired to what cast.yaml references, non-root, two replicas on Redis). The ConfigMap's cast.yaml
is loaded with the real config loader, fed the Secret's values."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

from castproxy.config.loader import load_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
EXAMPLES = ("single", "redis-replicas")


def _documents(path: Path) -> list[dict]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text()) if doc is not None]


def _example(name: str) -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted((DEPLOY / name).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _documents(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def _castproxy_container(objects: dict) -> dict:
    pod = objects[("Deployment", "castproxy")]["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "castproxy")


def test_every_manifest_parses_and_names_its_kind():
    paths = sorted(DEPLOY.rglob("*.yaml"))
    assert len(paths) >= 10
    for path in paths:
        for doc in _documents(path):
            assert doc.get("apiVersion") and doc.get("kind"), path
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], path


@pytest.mark.parametrize("example", EXAMPLES)
def test_kustomization_lists_every_manifest(example):
    listed = set(_documents(DEPLOY / example / "kustomization.yaml")[0]["resources"])
    present = {p.name for p in (DEPLOY / example).glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("example", EXAMPLES)
def test_probes_ports_and_service(example):
    objects = _example(example)
    container = _castproxy_container(objects)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8080}
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    service = objects[("Service", "castproxy")]
    pod_labels = objects[("Deployment", "castproxy")]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("example", EXAMPLES)
def test_config_is_mounted_as_a_folder_so_updates_reach_the_pod(example):
    objects = _example(example)
    container = _castproxy_container(objects)
    pod = objects[("Deployment", "castproxy")]["spec"]["template"]["spec"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/castproxy")
    assert "subPath" not in mount and mount.get("readOnly") is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = objects[("ConfigMap", volume["configMap"]["name"])]
    assert "cast.yaml" in config_map["data"]
    assert container["args"] == ["-c", "/etc/castproxy/cast.yaml"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_runs_as_non_root_with_a_read_only_root(example):
    objects = _example(example)
    pod = objects[("Deployment", "castproxy")]["spec"]["template"]["spec"]
    container = _castproxy_container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    for kind_name, obj in objects.items():
        if kind_name[0] == "Deployment":
            assert obj["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, kind_name


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_secret_reference_in_cast_yaml_is_provided(example, tmp_path):
    objects = _example(example)
    container = _castproxy_container(objects)
    secret = objects[("Secret", "castproxy-secrets")]["stringData"]
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "castproxy-secrets" and ref["key"] in secret, item
            env[item["name"]] = secret[ref["key"]]
    text = objects[("ConfigMap", "castproxy-config")]["data"]["cast.yaml"]
    assert set(re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", text)) <= env.keys()
    path = tmp_path / "cast.yaml"
    path.write_text(text)
    loaded = load_config(path, environ=env)  # raises ConfigError with FILE:LINE:COL if the example is wrong
    assert loaded.public_url == "https://mcp.example.com"
    assert "test-oauth" in loaded.config.workspaces


def test_single_keeps_sqlite_on_the_volume():
    objects = _example("single")
    config = YAML(typ="safe").load(StringIO(objects[("ConfigMap", "castproxy-config")]["data"]["cast.yaml"]))
    assert config["store"] == {"backend": "sqlite", "path": "/var/lib/castproxy/state.db"}
    deployment = objects[("Deployment", "castproxy")]
    assert deployment["spec"]["replicas"] == 1
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] in {name for kind, name in objects if kind ==
                                                                       "PersistentVolumeClaim"}


def test_redis_example_runs_two_replicas_on_the_shared_store():
    objects = _example("redis-replicas")
    assert objects[("Deployment", "castproxy")]["spec"]["replicas"] == 2
    config = YAML(typ="safe").load(StringIO(objects[("ConfigMap", "castproxy-config")]["data"]["cast.yaml"]))
    assert config["store"]["backend"] == "redis"
    redis_url = objects[("Secret", "castproxy-secrets")]["stringData"]["REDIS_URL"]
    host = urlsplit(redis_url).hostname
    assert ("Service", host) in objects and ("Deployment", host) in objects
    assert objects[("PodDisruptionBudget", "castproxy")]["spec"]["minAvailable"] == 1
