"""The container side without an engine: Debian's docker-compose validates docker-compose.yml and
resolves it; .env.example documents every variable; the Dockerfile's build context installs both
console scripts with their data files; the image runs as non-root with nothing secret in it."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import yaml

from tests.services.base import REPO_ROOT

SERVICES = {"postgres", "redis", "kafka", "mongo", "minio", "chat-server-1", "chat-server-2", "chat-archive", "nginx"}
CONFIG_SOURCES = ["server/config.py", "server/__main__.py", "ai/settings.py", "archive/config.py", "archive/__main__.py"]


def compose(*args: str, password: str | None = "example-only") -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: scripts/bootstrap.sh test installs Debian's docker-compose"
    env = {"PATH": "/usr/bin:/bin", "S3_SECRET_ACCESS_KEY": "example-only-s3"}
    if password is not None:
        env["POSTGRES_PASSWORD"] = password
    return subprocess.run([exe, "--env-file", str(REPO_ROOT / ".env.example"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, env=env, timeout=60)


def resolved() -> dict[str, Any]:
    r = compose("config")
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert isinstance(doc, dict)
    return doc


def test_compose_file_validates_with_debian_docker_compose_and_needs_a_database_password() -> None:
    ok = compose("config", "-q")
    assert ok.returncode == 0, ok.stderr
    services = compose("config", "--services")
    assert set(services.stdout.split()) == SERVICES
    missing = compose("config", "-q", password=None)  # .env.example ships no password
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr


def test_compose_stack_has_health_checks_ordered_start_named_volumes_and_mounted_keys() -> None:
    doc = resolved()
    services = doc["services"]
    for name, svc in services.items():
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"
    images = {name: svc.get("image") for name, svc in services.items()}
    assert images["postgres"] == "postgres:16" and images["redis"] == "redis:7" and images["mongo"] == "mongo:7"
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", images["kafka"])
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller" and "KAFKA_ZOOKEEPER_CONNECT" not in kafka_env  # KRaft

    chat = ["chat-server-1", "chat-server-2"]
    # one image for chat-server and chat-archive, each with its own command
    assert len({images[n] for n in [*chat, "chat-archive"]}) == 1
    assert all(services[n]["command"] == ["chat-server"] for n in chat)
    assert services["chat-archive"]["command"] == ["chat-archive"]
    for n in chat:
        assert {k: v["condition"] for k, v in services[n]["depends_on"].items()} == {
            "postgres": "service_healthy", "redis": "service_healthy", "kafka": "service_healthy",
            "minio": "service_healthy"}
    assert {n: services["nginx"]["depends_on"][n]["condition"] for n in chat} == {n: "service_healthy" for n in chat}
    assert {k: v["condition"] for k, v in services["chat-archive"]["depends_on"].items()} == {
        "kafka": "service_healthy", "mongo": "service_healthy", "redis": "service_healthy"}  # the rate limits
    node_ids = {services[n]["environment"]["CHAT_NODE_ID"] for n in chat}
    assert node_ids == set(chat)

    # state lives in named volumes; only nginx is reachable from outside
    assert set(doc["volumes"]) == {"pgdata", "kafkadata", "mongodata", "filedata"}
    for name, mount in (("postgres", "/var/lib/postgresql/data"), ("kafka", "/var/lib/kafka/data"), ("mongo", "/data/db")):
        assert any(volume_mount(v) == (True, mount) for v in services[name]["volumes"]), name
    assert [n for n, svc in services.items() if svc.get("ports")] == ["nginx"]

    # the signing keys are mounted files; chat-archive only gets the public one (and the
    # file-URL secret, to hand out attachment URLs chat-server serves)
    assert {s["source"] for n in chat for s in services[n]["secrets"]} == {"jwt_private", "jwt_public", "file_url_secret"}
    assert {s["source"] for s in services["chat-archive"]["secrets"]} == {"jwt_public", "file_url_secret"}
    for n in chat:
        env = services[n]["environment"]
        assert env["JWT_PRIVATE_KEY_FILE"] == "/run/secrets/jwt_private"
        assert env["DATABASE_URL"] == "postgresql://chat:example-only@postgres:5432/chat"
    assert not any("PRIVATE" in k for k in services["chat-archive"]["environment"])


def volume_mount(v: Any) -> tuple[bool, str]:
    """(is a named volume, mount point), from the short or the long syntax."""
    if isinstance(v, str):
        source, target = v.split(":")[:2]
        return not source.startswith(("/", ".")), target
    return v["type"] == "volume", v["target"]


def env_example_names() -> tuple[set[str], set[str]]:
    """(names set in .env.example, names only mentioned in its comments)."""
    text = (REPO_ROOT / ".env.example").read_text()
    assigned = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, re.M))
    mentioned = set(re.findall(r"^#\s*([A-Z][A-Z0-9_]+)=", text, re.M)) | set(re.findall(r"\s([A-Z][A-Z0-9_]{3,})=", text))
    return assigned, mentioned - assigned


def test_env_example_documents_every_variable_the_code_and_the_compose_file_read() -> None:
    read_by_code: set[str] = set()
    for src in CONFIG_SOURCES:
        text = (REPO_ROOT / src).read_text()
        read_by_code |= set(re.findall(r"""(?:\bget|\bnumber|\breq|\bnum|e\.\w+|environ\.get)\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
    assert {"DATABASE_URL", "AI_PROVIDER", "MONGO_URL", "ARCHIVE_TTL_DAYS"} <= read_by_code  # the scan works
    assigned, mentioned = env_example_names()
    assert read_by_code - assigned - mentioned == set()

    compose_text = (REPO_ROOT / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", compose_text))
    assert interpolated - assigned == set()  # everything compose takes from .env has a documented line
    assert assigned - interpolated == set()  # and nothing documented there is ignored by compose


def dockerfile_stages() -> list[list[str]]:
    text = (REPO_ROOT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n\s*", " ", text)  # join continued lines
    stages: list[list[str]] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_builds_the_web_app_runs_as_non_root_with_a_health_check_and_bakes_no_secret() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 3
    assert stages[0][0].startswith("FROM node:") and any("npm run build" in i for i in stages[0])
    final = stages[-1]
    assert any(i.startswith("COPY --from=web") and "dist" in i for i in final)
    users = [i.split()[1] for i in final if i.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(i.startswith("HEALTHCHECK ") for i in final)
    assert final[-1] == 'CMD ["chat-server"]'
    for stage in stages:
        for i in stage:
            if i.split()[0] in ("ENV", "ARG"):
                assert not re.search(r"(KEY|SECRET|PASSWORD|TOKEN)\w*=", i.upper()), i
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".env", "secrets", "*.pem", ".git", ".venv", "**/node_modules"} <= set(ignored)


def test_the_images_build_context_installs_both_console_scripts_with_schema_and_knowledge_base(tmp_path: Path) -> None:
    """The python stage's COPY set, built the way ``pip install .`` builds it."""
    build = next(s for s in dockerfile_stages() if any(i.startswith("RUN pip install") for i in s))
    ctx = tmp_path / "context"
    ctx.mkdir()
    for instr in build:
        if instr.startswith("COPY ") and "--from" not in instr:
            *sources, _dest = instr.split()[1:]
            for src in sources:
                path = REPO_ROOT / src
                if path.is_dir():
                    shutil.copytree(path, ctx / src, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(path, ctx / src)
    r = subprocess.run([str(REPO_ROOT / ".venv/bin/pip"), "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "wheels"), str(ctx)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    wheel = next((tmp_path / "wheels").glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "chat-server = server.__main__:main" in entry_points
    assert "chat-archive = archive.__main__:main" in entry_points
    schema = (REPO_ROOT / "server/storage/schema")
    assert {f"server/storage/schema/{p.name}" for p in schema.glob("*.sql")} <= names
    assert "ai/knowledge_base.yaml" in names
    for package in ("chatcore", "server", "ai", "archive", "whatsapp_bridge"):
        assert f"{package}/__init__.py" in names
