"""deploy/*.yaml: valid against the Kubernetes JSON schemas (shipped offline by kubernetes-validate), and
the ConfigMap's agent config is one the agent accepts."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from margay.agent.settings import AgentSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.30.0"
DOCS = [(p.name, i, d) for p in sorted(DEPLOY.glob("*.yaml"))
        for i, d in enumerate(yaml.safe_load_all(p.read_text())) if d]


@pytest.mark.parametrize(("name", "index", "doc"), DOCS, ids=[f"{n}#{i}-{d['kind']}" for n, i, d in DOCS])
def test_manifest_is_valid_kubernetes(name: str, index: int, doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_pieces_fit_together(tmp_path: Path) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, _, d in DOCS}
    for needed in [("DaemonSet", "margay-agent"), ("Deployment", "margay-server"), ("Service", "margay"),
                   ("PersistentVolumeClaim", "margay-data"), ("ConfigMap", "margay-agent"),
                   ("ServiceAccount", "margay-agent"), ("ClusterRoleBinding", "margay-agent")]:
        assert needed in kinds
    ds = next(d for _, _, d in DOCS if d["kind"] == "DaemonSet")
    host_paths = {v["hostPath"]["path"] for v in ds["spec"]["template"]["spec"]["volumes"] if "hostPath" in v}
    assert host_paths == {"/var/log/calico", "/var/lib/margay-agent"}
    cm = next(d for _, _, d in DOCS if d["kind"] == "ConfigMap")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(cm["data"]["agent.yaml"])
    s = AgentSettings.load({}, environ={"NODE_NAME": "node-a"}, config=cfg)
    assert s.server == "http://margay.margay.svc:8080" and s.node == "node-a"
    assert str(s.token_file) == "/var/run/margay/token" and s.listen == "0.0.0.0:9081"
    # Listening off loopback, the audit webhook needs its token: a Secret mounted where the setting points.
    assert str(s.webhook_token_file) == "/var/run/margay-webhook/token"
    pod = ds["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert mounts["webhook-token"] == "/var/run/margay-webhook"
    assert secrets["webhook-token"] == "margay-agent-webhook-token" and ("Secret", "margay-agent-webhook-token") in kinds
    assert 64 << 20 <= s.max_inflight_body_bytes <= 256 << 20  # the pod's memory limit is 512Mi
