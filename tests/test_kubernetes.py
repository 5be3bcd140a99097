"""The Kubernetes example (examples/kubernetes) is valid offline: every manifest the
kustomization lists passes the Kubernetes API schemas (kubernetes-validate, strict: no
unknown fields), and it is wired as documented: one worker Deployment per pool, pinned
to that pool's nodes, requesting its GPUs from the device plugin, holding the worker
token only; the server migrates before it serves; every Service selects pods that
exist; every ``hpo`` command line parses against the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "examples" / "kubernetes"
VERSION = "1.30.0"  # a version clusters run now; the fields used are older than it
POOL_LABEL = "hpo.dev/pool"


def _documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "hpo"
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((KUBE / name).read_text()) if d]
    return docs


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] == kind]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _workers() -> list[dict[str, Any]]:
    return [
        d
        for d in _of_kind("Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/name") == "hpo-worker"
    ]


@pytest.mark.parametrize("doc", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_passes_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {error.message} at {error.path}")


def test_one_worker_deployment_per_pool_pinned_to_its_nodes_with_its_own_gpus() -> None:
    workers = _workers()
    pools = [w["metadata"]["labels"][POOL_LABEL] for w in workers]
    assert len(pools) >= 2 and len(set(pools)) == len(pools)
    for worker in workers:
        pool = worker["metadata"]["labels"][POOL_LABEL]
        spec = _pod(worker)
        assert spec["nodeSelector"] == {POOL_LABEL: pool}
        (container,) = spec["containers"]
        env = _env(container)
        assert env["HPO_WORKER_POOL"] == pool
        gpus = container["resources"]["limits"]["nvidia.com/gpu"]
        assert isinstance(gpus, int) and gpus >= 1
        # the worker token only: HTTP to the server, never the database
        assert "HPO_DATABASE_URL" not in env and "HPO_API_TOKEN" not in env
        assert env["HPO_WORKER_TOKEN"]["secretKeyRef"]["key"] == "worker-token"
        assert env["HPO_SERVER_URL"] == "http://hpo-server:8765"
        labels = worker["spec"]["template"]["metadata"]["labels"]
        assert worker["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_server_migrates_first_and_every_service_selects_pods_that_exist() -> None:
    (server,) = [d for d in _of_kind("Deployment") if d["metadata"]["name"] == "hpo-server"]
    spec = _pod(server)
    assert [c["args"] for c in spec["initContainers"]] == [["db", "upgrade"]]
    assert server["spec"]["replicas"] == 1  # one scheduler numbers the trials
    pods = [
        w["spec"]["template"]["metadata"]["labels"]
        for w in _of_kind("Deployment") + _of_kind("StatefulSet")
    ]
    for service in _of_kind("Service"):
        selector = service["spec"]["selector"].items()
        assert any(selector <= labels.items() for labels in pods), service["metadata"]["name"]
    secrets = {
        v["secretKeyRef"]["key"]
        for d in _of_kind("Deployment") + _of_kind("StatefulSet")
        for c in _pod(d).get("initContainers", []) + _pod(d)["containers"]
        for v in _env(c).values()
        if isinstance(v, dict) and "secretKeyRef" in v
    }
    # the keys the kustomization's comment tells the operator to create
    assert secrets == {"api-token", "worker-token", "postgres-password"}


def test_every_hpo_command_line_parses_against_the_cli() -> None:
    from hpo.cli.main import app

    root: Any = typer.main.get_command(app)
    lines = []
    for d in _of_kind("Deployment"):
        for c in _pod(d).get("initContainers", []) + _pod(d)["containers"]:
            if c["image"] == "hpo-service":
                lines.append(c["args"])
    assert len(lines) >= 4
    for argv in lines:
        cmd, rest = root, list(argv)
        while rest and hasattr(cmd, "commands") and rest[0] in cmd.commands:
            cmd = cmd.commands[rest.pop(0)]
        assert not hasattr(cmd, "commands"), f"hpo {' '.join(argv)} names a group"
        cmd.make_context(f"hpo {' '.join(argv)}", rest)  # raises on an unknown option
