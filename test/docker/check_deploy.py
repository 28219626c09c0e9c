"""Check docker/docker-compose.yml and docker/Dockerfile without a Docker engine.

    python check_deploy.py compose SCHEMA   validate the compose file against the
                                            Compose Specification schema, then the
                                            deployment rules below; exit 1 on findings
    python check_deploy.py settings         print the server settings (-c name=value)
                                            and POSTGRES_DB of the image, one per line,
                                            for test/docker/check's throwaway cluster

Deployment rules (issue 6): every service has a healthcheck; every depends_on
waits for service_healthy; every service has a stop_grace_period; PostgreSQL
stops with SIGINT (fast shutdown) in the image and in compose; Geth serves
GraphQL over HTTP and accepts the host name the database uses for it; the
image is built with scripts/install and preloads pg_cron for the database it
creates.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value, env: dict):
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        cur = env.get(name)
        if op in (":-", "-"):
            if cur is None or (op == ":-" and cur == ""):
                return interpolate(arg, env)
            return cur
        if op in (":?", "?"):
            if cur is None or (op == ":?" and cur == ""):
                raise ValueError(f"required variable {name} is missing: {arg}")
            return cur
        return cur or ""

    return _VAR.sub(sub, value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, cur = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def image_settings() -> tuple[dict, dict]:
    """The image's CMD '-c name=value' settings and its ENV."""
    settings, env = {}, {}
    for ins, args in dockerfile_instructions():
        if ins == "CMD":
            cmd = json.loads(args)
            for i, word in enumerate(cmd):
                if word == "-c" and i + 1 < len(cmd):
                    k, _, v = cmd[i + 1].partition("=")
                    settings[k] = v
        elif ins == "ENV":
            for tok in shlex.split(args):
                k, _, v = tok.partition("=")
                env[k] = v
    return settings, env


def check_compose(schema_path: str) -> list[str]:
    import jsonschema
    import yaml

    findings: list[str] = []
    raw = yaml.safe_load(COMPOSE.read_text())
    # A required variable that is unset must stop `docker compose up`.
    try:
        interpolate(raw, {})
        findings.append("compose: POSTGRES_PASSWORD is not required (${POSTGRES_PASSWORD:?...})")
    except ValueError:
        pass
    doc = interpolate(raw, {"POSTGRES_PASSWORD": "x"})
    schema = json.loads(Path(schema_path).read_text())
    validator = jsonschema.Draft7Validator(schema)
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.path) or "(top)"
        findings.append(f"compose schema: {where}: {err.message}")

    services = doc.get("services") or {}
    for name, svc in services.items():
        hc = svc.get("healthcheck") or {}
        if not hc.get("test") or hc.get("disable"):
            findings.append(f"service {name}: no healthcheck")
        if "stop_grace_period" not in svc:
            findings.append(f"service {name}: no stop_grace_period")
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            findings.append(f"service {name}: depends_on is a list; use condition: service_healthy")
        else:
            for dep, spec in deps.items():
                if (spec or {}).get("condition") != "service_healthy":
                    findings.append(f"service {name}: depends_on {dep} does not wait for service_healthy")
                if dep not in services:
                    findings.append(f"service {name}: depends_on unknown service {dep}")

    pg = services.get("postgres")
    geth = services.get("geth")
    if pg is None or geth is None:
        findings.append("compose: services 'postgres' and 'geth' are both required")
        return findings

    # PostgreSQL: fast shutdown, built from the Dockerfile with scripts/install
    if pg.get("stop_signal") != "SIGINT":
        findings.append("service postgres: stop_signal must be SIGINT (fast shutdown)")
    build = pg.get("build") or {}
    if (ROOT / "docker" / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve() != DOCKERFILE:
        findings.append("service postgres: must be built from docker/Dockerfile")
    if "geth" not in (pg.get("depends_on") or {}):
        findings.append("service postgres: must depend on geth")

    # Geth: GraphQL over HTTP, reachable under the host name the endpoint uses
    cmd = geth.get("command")
    words = shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])
    opts = {}
    for i, w in enumerate(words):
        if w.startswith("--"):
            k, eq, v = w.partition("=")
            opts[k] = v if eq else (words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else "")
    for flag in ("--http", "--graphql", "--datadir"):
        if flag not in opts:
            findings.append(f"service geth: command lacks {flag}")
    endpoint = (pg.get("environment") or {}).get("ETHWHALE_ENDPOINT", "")
    host = urlsplit(endpoint).hostname or ""
    if not endpoint.endswith("/graphql") or host not in services:
        findings.append(f"service postgres: ETHWHALE_ENDPOINT {endpoint!r} is not a service's /graphql URL")
    vhosts = [h.strip() for h in opts.get("--graphql.vhosts", "localhost").split(",")]
    if host and host not in vhosts and "*" not in vhosts:
        findings.append(f"service geth: --graphql.vhosts {vhosts} lacks {host!r}: Geth would answer 403")
    if opts.get("--http.addr", "127.0.0.1") in ("127.0.0.1", "localhost"):
        findings.append("service geth: --http.addr must listen beyond localhost for the postgres service")
    datadir = opts.get("--datadir", "")
    if not any(str(v).split(":")[1:2] == [datadir] for v in geth.get("volumes") or []):
        findings.append(f"service geth: the data directory {datadir!r} is not on a volume")

    # The image: scripts/install, SIGINT, pg_cron preloaded for its database
    ins = dockerfile_instructions()
    if not any(i == "RUN" and re.search(r"(^|\s|/)scripts/install(\s|$)", a) for i, a in ins):
        findings.append("Dockerfile: the extension is not built with scripts/install")
    if ("STOPSIGNAL", "SIGINT") not in ins:
        findings.append("Dockerfile: STOPSIGNAL must be SIGINT (fast shutdown)")
    if not any(i == "COPY" and "docker-entrypoint-initdb.d/" in a for i, a in ins):
        findings.append("Dockerfile: no init script in /docker-entrypoint-initdb.d")
    settings, env = image_settings()
    if "pg_cron" not in settings.get("shared_preload_libraries", ""):
        findings.append("Dockerfile: CMD does not preload pg_cron")
    db = (pg.get("environment") or {}).get("POSTGRES_DB", env.get("POSTGRES_DB", "postgres"))
    if settings.get("cron.database_name") != db:
        findings.append(f"Dockerfile: cron.database_name {settings.get('cron.database_name')!r} "
                        f"is not the database compose creates ({db!r})")
    return findings


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "settings":
        settings, env = image_settings()
        for k, v in settings.items():
            print(f"-c {k}={v}")
        print(f"POSTGRES_DB={env.get('POSTGRES_DB', 'postgres')}")
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "compose":
        findings = check_compose(sys.argv[2])
        for f in findings:
            print(f"FINDING: {f}")
        print(f"{os.path.relpath(COMPOSE, ROOT)}, {os.path.relpath(DOCKERFILE, ROOT)}: "
              f"{len(findings)} finding(s)")
        return 1 if findings else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
