"""deploy/ checked without a Docker engine or a cluster: the compose file and every Kubernetes
manifest against their published schemas, every entrypoint against the package, every metric a
dashboard queries against what the services really export, the autoscalers against the bus.
(NATS permissions run on a real nats-server: tests/test_deploy_nats.py.)"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from services.common.access import ACCESS, ROLES_WITH_USERS, SETUP_USER, password_variable
from services.common.bus import STREAM_WORK, SUBJECT
from services.common.telemetry import METRICS
from services.platform import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
K8S_VERSION = "1.30.0"
ROLE_MODULES = {
    "gateway": "gateway",
    **{r: f"services.{r}" for r in ("proposer", "executor", "evaluator", "distiller")},
}


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _manifests() -> list[tuple[Path, dict]]:
    out = []
    for path in sorted((DEPLOY / "k8s").rglob("*.yaml")):
        if path.parent.name == "helm" or path.name == "kustomization.yaml":
            continue
        out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def _dockerfile_stages() -> dict[str, list[str]]:
    """stage name -> its lines (continuations joined)."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    stages: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line.strip(), re.I)
        if m:
            current = m.group(2) or f"stage{len(stages)}"
            stages[current] = [line.strip()]
        elif current and line.strip() and not line.lstrip().startswith("#"):
            stages[current].append(line.strip())
    return stages


def _exec_form(stage: list[str], instruction: str) -> list[str] | None:
    """The last ENTRYPOINT/CMD of a stage, or of the stage it is built FROM."""
    for line in reversed(stage):
        if line.upper().startswith(instruction + " "):
            return json.loads(line[len(instruction) :].strip())
    return None


# -- generated files ------------------------------------------------------------------------------
def test_generated_deploy_files_are_current():
    proc = subprocess.run(
        [sys.executable, "scripts/gen_deploy.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- compose --------------------------------------------------------------------------------------
def test_compose_file_validates_against_the_compose_spec(tmp_path):
    cmd = [_bin("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    ok = subprocess.run([*cmd, str(COMPOSE)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "compose.yml"  # the validator does refuse a wrong file
    broken.write_text("services:\n  x:\n    image: 3\n    ports: {a: b}\n    restart: sometimes\n")
    assert subprocess.run([*cmd, str(broken)], capture_output=True).returncode != 0


def test_compose_wires_every_role_with_its_own_user_and_an_existing_image_stage():
    compose, stages = _compose(), _dockerfile_stages()
    services = compose["services"]
    nodes = [services[f"nats-{i}"] for i in (1, 2, 3)]  # a three-node cluster, one name each
    nats_env = nodes[0]["environment"]
    assert {password_variable(u) for u in (SETUP_USER, *ROLES_WITH_USERS)} == set(nats_env) - {"NATS_SERVER_NAME"}
    assert [n["environment"].pop("NATS_SERVER_NAME") for n in nodes] == ["nats-1", "nats-2", "nats-3"]
    assert all(n["environment"] == nats_env and "/etc/nats/cluster.conf" in n["command"] for n in nodes)
    assert services["nats-setup"]["environment"]["MEPHISTO_NATS_REPLICAS"] == "3"
    for name, svc in services.items():
        if "build" in svc:
            assert svc["build"]["target"] in stages, name
            assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), (name, src)
    for role in ROLE_MODULES:
        env = services[role]["environment"]
        assert env["NATS_USER"] == role and env["MEPHISTO_NATS_SETUP"] == "0"
        # the password it sends is the one nats-server expects for that user
        assert env["NATS_PASSWORD"] == nats_env[password_variable(role)]
        assert env["MEPHISTO_METRICS_PORT"] == "9464"
    assert services["nats-setup"]["environment"]["NATS_USER"] == SETUP_USER
    # cpu profile: the expert policy; gpu profile: Triton with a GPU reserved, proposers on it
    assert services["proposer"]["profiles"] == ["cpu"] and "MEPHISTO_LLM_URL" not in services["proposer"]["environment"]
    assert services["proposer-llm"]["profiles"] == ["gpu"] and services["triton"]["profiles"] == ["gpu"]
    assert "triton:8001" in services["proposer-llm"]["environment"]["MEPHISTO_LLM_URL"]
    gpu = services["triton"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["driver"] == "nvidia"
    assert any("triton_models/" in v for v in services["triton"]["volumes"])
    assert "COMPOSE_PROFILES=cpu" in (ROOT / ".env").read_text()
    # traces go to the collector's OTLP receiver, which sends them on to Jaeger
    collector = yaml.safe_load((DEPLOY / "otel" / "collector.yaml").read_text())
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    assert services["executor"]["environment"]["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://otel-collector:4317"
    for pipe in collector["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipe.get(kind, [])) <= set(collector.get(kind, {})), kind
    assert collector["exporters"]["otlp/jaeger"]["endpoint"].split(":")[0] in services


# -- images ---------------------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_pinned_and_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = _dockerfile_stages()
    assert len(stages) >= 3
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base  # an exact release, not a moving tag
    assert ":latest" not in text
    for name, lines in stages.items():
        src = lines[0].split()[1]
        assert src in ("${PYTHON_IMAGE}", *stages), (name, src)
    runtime = stages["runtime"]
    assert any(line.startswith("USER 10001") for line in runtime)
    assert not any(line.startswith("USER") and "root" in line for stage in stages.values() for line in stage)
    assert any("--constraint constraints.txt" in line for line in stages["build"])
    assert stages["build"][0].split()[1] == "${PYTHON_IMAGE}" and "pip wheel" in " ".join(stages["build"])


def test_constraints_pin_every_runtime_dependency():
    pins = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (DEPLOY / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["llm"]
    for req in wanted:
        name = re.match(r"[A-Za-z0-9_.\-]+", req).group(0).lower().replace("_", "-")
        assert name in pins, (
            f"{name} is not pinned in deploy/constraints.txt (python scripts/gen_deploy.py --constraints)"
        )


def _entrypoints() -> dict[str, list[str]]:
    """Every command an image, compose or a manifest starts, by where it is written."""
    stages = _dockerfile_stages()
    out = {f"Dockerfile:{name}": _exec_form(lines, "ENTRYPOINT") for name, lines in stages.items()}
    for name, lines in stages.items():
        for line in lines:
            m = re.match(r"HEALTHCHECK .*?CMD (\[.*\])$", line)
            if m:
                out[f"Dockerfile:{name} HEALTHCHECK"] = json.loads(m.group(1))
    for path, doc in _manifests():
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if "command" in c and c["image"].startswith("mephisto-sed/"):
                out[f"{path.name}:{c['name']}"] = c["command"]
    return {k: v for k, v in out.items() if v}


def test_every_entrypoint_is_a_command_the_package_has():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entries = _entrypoints()
    assert {"Dockerfile:executor", "Dockerfile:gateway", "Dockerfile:setup", "executor.yaml:executor"} <= set(entries)
    modules = set()
    for where, argv in entries.items():
        if argv[0] == "python":
            assert argv[1] == "-m", where
            assert importlib.util.find_spec(argv[2]) is not None, (where, argv)
            modules.add(argv[2])
        else:
            assert argv[0] in scripts, (where, argv)
    assert modules >= set(ROLE_MODULES.values()) | {"services.setup", "services.healthcheck"}
    for module in sorted(modules - {"services.healthcheck"}):  # each starts and explains itself
        proc = subprocess.run(
            [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0 and "usage:" in proc.stdout, (module, proc.stderr[-500:])
    # the stage an image is built for runs the role it is named after
    stages = _dockerfile_stages()
    for role, module in ROLE_MODULES.items():
        assert _exec_form(stages[role], "ENTRYPOINT") == ["python", "-m", module]


def test_healthcheck_command_tells_serving_from_down(tmp_path):
    import asyncio

    from services.common.grpc_server import start_server

    async def go() -> tuple[int, int]:
        server, port, _ = await start_server("127.0.0.1", 0, [], ["mephisto.v1.Executor"])
        cmd = [sys.executable, "-m", "services.healthcheck", f"127.0.0.1:{port}"]
        up = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT)
        await up.wait()
        await server.stop(None)
        down = await asyncio.create_subprocess_exec(*cmd, "--timeout", "1", cwd=ROOT)
        await down.wait()
        return up.returncode, down.returncode

    assert asyncio.run(go()) == (0, 1)


# -- Kubernetes -----------------------------------------------------------------------------------
def test_every_kubernetes_manifest_validates_against_the_kubernetes_schema():
    docs = _manifests()
    kinds = {d["kind"] for _, d in docs}
    assert {"Deployment", "Service", "Job", "Secret", "ConfigMap", "ScaledObject", "Namespace"} <= kinds
    for _, doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked against the bus below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    bad = json.loads(json.dumps(next(d for _, d in docs if d["kind"] == "Deployment")))
    bad["spec"]["replica"] = 2  # a typo the validator must catch
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_kustomizations_list_existing_files_and_patch_what_exists():
    for kfile in (DEPLOY / "k8s").rglob("kustomization.yaml"):
        k = yaml.safe_load(kfile.read_text())
        for res in k["resources"]:
            assert (kfile.parent / res).exists(), (kfile, res)
    base = yaml.safe_load((DEPLOY / "k8s" / "base" / "kustomization.yaml").read_text())
    images = {i["name"] for i in base["images"]}
    used = {
        c["image"].split(":")[0]
        for _, d in _manifests()
        for c in _containers(d)
        if c["image"].startswith("mephisto-sed/")
    }
    assert used <= images
    gpu = yaml.safe_load((DEPLOY / "k8s" / "overlays" / "gpu" / "kustomization.yaml").read_text())
    (patch,) = gpu["patches"]
    target = next(
        d for _, d in _manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == patch["target"]["name"]
    )
    (op,) = yaml.safe_load(patch["patch"])
    assert op["path"] == "/spec/template/spec/containers/0/env/-" and isinstance(_containers(target)[0]["env"], list)
    assert op["value"]["name"] == "MEPHISTO_LLM_URL"


def _containers(doc: dict) -> list[dict]:
    return doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def test_deployments_use_their_own_nats_user_grpc_probes_and_limits():
    docs = _manifests()
    secret = next(d for _, d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "mephisto-nats-users")
    assert set(secret["stringData"]) == {SETUP_USER, *ROLES_WITH_USERS}
    for role in ROLE_MODULES:
        dep = next(d for _, d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == role)
        (c,) = _containers(dep)
        env = {e["name"]: e for e in c["env"]}
        assert env["NATS_USER"]["value"] == role
        assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mephisto-nats-users", "key": role}
        assert c["readinessProbe"]["grpc"]["port"] == c["ports"][0]["containerPort"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert c["securityContext"]["runAsNonRoot"] and not c["securityContext"]["allowPrivilegeEscalation"]
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == "9464"
    values = yaml.safe_load((DEPLOY / "k8s" / "helm" / "nats-values.yaml").read_text())
    assert values["config"]["cluster"]["replicas"] == 3 and values["config"]["jetstream"]["enabled"]
    users = values["config"]["merge"]["accounts"]["MEPHISTO"]["users"]
    assert {u["user"] for u in users} == set(secret["stringData"])
    setup_job = next(d for _, d in docs if d["kind"] == "Job")
    env = {e["name"]: e.get("value") for e in _containers(setup_job)[0]["env"]}
    assert env["NATS_USER"] == SETUP_USER and env["MEPHISTO_NATS_REPLICAS"] == "3"


def test_autoscalers_watch_the_consumers_the_workers_really_use():
    scaled = [d for _, d in _manifests() if d["kind"] == "ScaledObject"]
    deployments = {d["metadata"]["name"] for _, d in _manifests() if d["kind"] == "Deployment"}
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled} == {"proposer", "executor", "evaluator", "distiller"}
    for s in scaled:
        role = s["spec"]["scaleTargetRef"]["name"]
        assert role in deployments and s["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= s["spec"]["minReplicaCount"] <= s["spec"]["maxReplicaCount"]
        (trigger,) = s["spec"]["triggers"]
        assert trigger["type"] == "nats-jetstream"
        meta = trigger["metadata"]
        (consumer,) = ACCESS[role].consumers
        assert (meta["stream"], meta["consumer"]) == consumer[:2] and meta["stream"] == STREAM_WORK
        assert consumer[2] in SUBJECT.values()
        assert meta["account"] == "MEPHISTO" and "MEPHISTO {" in (DEPLOY / "nats" / "auth.conf").read_text()
        assert meta["natsServerMonitoringEndpoint"].endswith(":8222") and int(meta["lagThreshold"]) > 0


# -- metrics --------------------------------------------------------------------------------------
EXPORT = textwrap.dedent(
    """
    import sys, urllib.request
    from services.common import telemetry
    port = int(sys.argv[1])
    telemetry.setup("mephisto-check", metrics_port=port)
    for name, (kind, _, _) in telemetry.METRICS.items():
        if kind in ("counter", "updown"):
            telemetry.add(name, 1, role="executor")
        elif kind == "histogram":
            telemetry.record(name, 12.0, role="executor")
    telemetry.register_lag(lambda: [("executor", 3)])
    print(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
    """
)


@pytest.fixture(scope="module")
def exported_names() -> set[str]:
    """Metric names as the services' Prometheus endpoint really writes them (one of each recorded)."""
    proc = subprocess.run(
        [sys.executable, "-c", EXPORT, str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.split("{")[0].split(" ")[0] for line in proc.stdout.splitlines() if line.startswith("mephisto_")}
    assert len(names) >= len(METRICS)
    return names


def _queried(expr: str) -> set[str]:
    return set(re.findall(r"\bmephisto_[A-Za-z_]+", expr))


def _dashboard_exprs() -> list[str]:
    boards = [json.loads(p.read_text()) for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")]
    for _, doc in _manifests():  # the same dashboard shipped to Kubernetes as a ConfigMap
        if doc["kind"] == "ConfigMap" and doc["metadata"]["labels"].get("grafana_dashboard") == "1":
            boards += [json.loads(v) for v in doc["data"].values()]
    assert len(boards) >= 2
    return [t["expr"] for b in boards for p in b["panels"] for t in p["targets"]]


def test_every_metric_a_dashboard_queries_is_one_the_services_export(exported_names):
    exprs = _dashboard_exprs()
    queried = set().union(*map(_queried, exprs))
    assert queried, "no metric queried"
    unknown = queried - exported_names
    assert not unknown, f"dashboards query metrics nobody exports: {sorted(unknown)}"
    # and every metric the services export is on the dashboard
    bases = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in queried}
    for name in METRICS:
        assert any(b.startswith(name.replace(".", "_")) for b in bases), f"{name} is on no dashboard"


def test_dashboard_covers_what_an_operator_asked_for_and_uses_the_provisioned_datasource():
    board = json.loads((DEPLOY / "grafana" / "dashboards" / "mephisto.json").read_text())
    titles = " | ".join(p["title"].lower() for p in board["panels"])
    for want in (
        "sources",
        "queue lag",
        "models",
        "tokens",
        "cost",
        "p50 / p99",
        "redeliveries",
        "dead letters",
        "anomalies",
    ):
        assert want in titles, want
    sources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text())
    uids = {d["uid"] for d in sources["datasources"]}
    assert all(p["datasource"]["uid"] in uids for p in board["panels"])
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml").read_text())
    mount = next(v for v in _compose()["services"]["grafana"]["volumes"] if "dashboards:" in v)
    assert mount.split(":")[1] == provider["providers"][0]["options"]["path"]
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (sd,) = prom["scrape_configs"][0]["dns_sd_configs"]
    assert sd["port"] == 9464 and set(ROLE_MODULES) <= set(sd["names"])


def test_compose_publishes_on_localhost_and_the_roles_refuse_its_dev_credentials(tmp_path):
    """The compose defaults are public (dev-token, dev-<user>): every port is published on
    127.0.0.1 unless MEPHISTO_BIND_ADDRESS says otherwise, and a role or the gateway given one
    of those credentials exits at once with the reason, unless MEPHISTO_ALLOW_DEV_CREDENTIALS=1."""
    import signal
    import sys

    for name, svc in _compose()["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("${MEPHISTO_BIND_ADDRESS:-127.0.0.1}:"), (name, port)
        env = svc.get("environment", {})
        if "NATS_PASSWORD" in env:
            assert env["MEPHISTO_ALLOW_DEV_CREDENTIALS"] == "${MEPHISTO_ALLOW_DEV_CREDENTIALS:-0}", name
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MEPHISTO_", "NATS_"))}
    unreachable = ["--nats", "nats://127.0.0.1:9"]
    cases = [
        (["-m", "gateway"], {"MEPHISTO_TOKENS": "good-token-1,dev-token"}, "gateway token 2"),
        (["-m", "services.executor"], {"NATS_USER": "executor", "NATS_PASSWORD": "dev-executor"}, "NATS_PASSWORD"),
        (
            ["-m", "services.setup", "--wait", "0"],
            {"NATS_USER": "setup", "NATS_PASSWORD": "dev-setup"},
            "NATS_PASSWORD",
        ),
    ]
    for args, env, named in cases:
        proc = subprocess.run(
            [sys.executable, *args, *unreachable], env={**base, **env}, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode != 0 and f"{named}: a published development default" in proc.stderr, proc.stderr
    allowed = subprocess.Popen(
        [sys.executable, "-m", "services.executor", *unreachable],
        env={**base, "NATS_USER": "executor", "NATS_PASSWORD": "dev-executor", "MEPHISTO_ALLOW_DEV_CREDENTIALS": "1"},
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in allowed.stderr:  # allowed: it goes on to connect
        if "connecting to NATS" in line:
            break
    allowed.send_signal(signal.SIGTERM)
    assert allowed.wait(60) == 0
