"""Service settings from flags and environment variables (flags win); bad values fail fast."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


DEV_CREDENTIAL = re.compile(r"^dev-[a-z]+$")  # docker-compose.yml's defaults: dev-token, dev-gateway, ...


def refuse_dev_credentials(named: dict[str, str]) -> None:
    """Exit when a credential is one of the published development defaults, unless
    MEPHISTO_ALLOW_DEV_CREDENTIALS=1 says this is a local try."""
    if os.environ.get("MEPHISTO_ALLOW_DEV_CREDENTIALS", "0") == "1":
        return
    weak = sorted(name for name, value in named.items() if value and DEV_CREDENTIAL.match(value))
    if weak:
        raise SystemExit(
            f"{', '.join(weak)}: a published development default (dev-...); set real credentials "
            "(deploy/README.md), or MEPHISTO_ALLOW_DEV_CREDENTIALS=1 for a try on this machine only"
        )


def external_nats_url() -> str:
    """NATS_URL when the operator set one ("" when not: `up` then runs its own nats-server)."""
    return os.environ.get("NATS_URL", "")


def e2e_cache_dir() -> Path:
    """Where deploy/e2e/prepare.sh keeps docker-compose and the base image (MEPHISTO_E2E_CACHE)."""
    return Path(os.environ.get("MEPHISTO_E2E_CACHE", Path.home() / ".cache/mephisto-sed/e2e"))


def token_from_env() -> str:
    """The first of MEPHISTO_TOKENS (what `up` gives its gateway when no --token is given)."""
    return (_env_list("MEPHISTO_TOKENS") or [""])[0]


def _env_list(name: str) -> list[str]:
    return [t for t in os.environ.get(name, "").split(",") if t]


def _token_file(path: str | None) -> list[str]:
    if not path:
        return []
    try:
        with open(path) as fh:
            return [t.strip() for t in fh.read().splitlines() if t.strip()]
    except OSError as exc:
        raise SystemExit(f"--token-file {path}: {exc.strerror}") from None


@dataclass
class Settings:
    role: str
    nats_url: str = field(default_factory=lambda: os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    nats_user: str = field(default_factory=lambda: os.environ.get("NATS_USER", ""))
    nats_password: str = field(default_factory=lambda: os.environ.get("NATS_PASSWORD", ""))
    # create streams and buckets at start-up; 0 where a setup job did it and roles may not
    nats_setup: bool = field(default_factory=lambda: os.environ.get("MEPHISTO_NATS_SETUP", "1") != "0")
    # Prometheus /metrics on this port (0 = off); OTLP export is switched on by OTEL_* variables
    metrics_port: int = field(default_factory=lambda: int(_env_float("MEPHISTO_METRICS_PORT", 0)))
    grpc_host: str = field(default_factory=lambda: os.environ.get("MEPHISTO_GRPC_HOST", "127.0.0.1"))
    grpc_port: int = 0  # 0 = a free port (printed at start)
    ack_wait: float = field(default_factory=lambda: _env_float("MEPHISTO_ACK_WAIT", 30.0))
    max_deliver: int = field(default_factory=lambda: int(_env_float("MEPHISTO_MAX_DELIVER", 5)))
    concurrency: int = field(default_factory=lambda: int(_env_float("MEPHISTO_CONCURRENCY", 1)))
    knowledge_path: str = field(
        default_factory=lambda: os.environ.get(
            "MEPHISTO_KNOWLEDGE", os.path.expanduser("~/.local/share/mephisto-sed/knowledge")
        )
    )
    use_knowledge: bool = field(default_factory=lambda: os.environ.get("MEPHISTO_USE_KNOWLEDGE", "1") != "0")
    drain_seconds: float = field(default_factory=lambda: _env_float("MEPHISTO_DRAIN_SECONDS", 30.0))
    log_level: str = field(default_factory=lambda: os.environ.get("MEPHISTO_LOG_LEVEL", "INFO").upper())
    # proposer (and distiller, for wording rules): the LLM, and the larger one to escalate to
    llm_url: str = field(default_factory=lambda: os.environ.get("MEPHISTO_LLM_URL", ""))
    llm_large_url: str = field(default_factory=lambda: os.environ.get("MEPHISTO_LLM_LARGE_URL", ""))
    # executor: a request for more models than this is not a search step (a step is <= 120k, the posterior box)
    max_models_per_execute: int = field(
        default_factory=lambda: int(_env_float("MEPHISTO_MAX_MODELS_PER_EXECUTE", 1_000_000))
    )
    nats_replicas: int = field(default_factory=lambda: int(_env_float("MEPHISTO_NATS_REPLICAS", 1)))
    # bearer tokens the gRPC API accepts: the gateway's (MEPHISTO_TOKENS, at least one) or a
    # role's (MEPHISTO_ROLE_TOKENS; none = the role's own API answers UNAUTHENTICATED to all)
    tokens: list[str] = field(default_factory=list)
    max_sources: int = field(default_factory=lambda: int(_env_float("MEPHISTO_MAX_SOURCES", 1000)))
    max_message_mb: float = field(default_factory=lambda: _env_float("MEPHISTO_MAX_MESSAGE_MB", 16.0))
    tls_cert: str = field(default_factory=lambda: os.environ.get("MEPHISTO_TLS_CERT", ""))
    tls_key: str = field(default_factory=lambda: os.environ.get("MEPHISTO_TLS_KEY", ""))
    port_file: str = ""  # write the bound gRPC port here (used by `mephisto-sed up` and tests)

    @property
    def max_reply_bytes(self) -> int:
        """GetResults fills a reply up to this size (3/4 of the message limit) and names the rest."""
        return int(self.max_message_mb * 2**20 * 0.75)

    @classmethod
    def parse(cls, role: str, argv: list[str] | None = None) -> Settings:
        s = cls(role)
        env_port = os.environ.get(f"MEPHISTO_{role.upper()}_PORT", "")
        p = argparse.ArgumentParser(prog=f"python -m {'gateway' if role == 'gateway' else 'services.' + role}")
        p.add_argument("--nats", default=s.nats_url, help="NATS server URL (env NATS_URL)")
        p.add_argument("--nats-user", default=s.nats_user, help="NATS user (env NATS_USER; password: NATS_PASSWORD)")
        p.add_argument("--metrics-port", type=int, default=s.metrics_port, help="Prometheus /metrics port, 0 = off")
        p.add_argument("--host", default=s.grpc_host, help="gRPC listen address (env MEPHISTO_GRPC_HOST)")
        p.add_argument(
            "--port",
            type=int,
            default=int(env_port or 0),
            help=f"gRPC port, 0 = free (env MEPHISTO_{role.upper()}_PORT)",
        )
        p.add_argument("--ack-wait", type=float, default=s.ack_wait, help="JetStream ack wait, s (MEPHISTO_ACK_WAIT)")
        p.add_argument("--max-deliver", type=int, default=s.max_deliver, help="deliveries before dead-lettering")
        p.add_argument("--concurrency", type=int, default=s.concurrency, help="messages handled at once")
        p.add_argument("--port-file", default="", help="write the bound gRPC port to this file")
        if role == "distiller":
            p.add_argument("--knowledge", default=s.knowledge_path, help="Qdrant local folder (or QDRANT_URL)")
        variable = "MEPHISTO_TOKENS" if role == "gateway" else "MEPHISTO_ROLE_TOKENS"
        p.add_argument("--token-file", help=f"file with one accepted bearer token per line (or {variable})")
        if role == "gateway":
            p.add_argument(
                "--token",
                action="append",
                default=None,
                help="accepted bearer token (repeatable; visible in ps: prefer MEPHISTO_TOKENS or --token-file)",
            )
            p.add_argument("--max-sources", type=int, default=s.max_sources, help="sources per request")
            p.add_argument("--tls-cert", default=s.tls_cert)
            p.add_argument("--tls-key", default=s.tls_key)
        a = p.parse_args(argv)
        s.nats_url, s.grpc_host, s.grpc_port = a.nats, a.host, a.port
        s.nats_user, s.metrics_port = a.nats_user, a.metrics_port
        if s.nats_user and not s.nats_password:
            raise SystemExit(f"NATS user {s.nats_user!r} needs its password in NATS_PASSWORD")
        s.ack_wait, s.max_deliver, s.concurrency, s.port_file = a.ack_wait, a.max_deliver, a.concurrency, a.port_file
        if role == "distiller":
            s.knowledge_path = a.knowledge
        s.tokens = getattr(a, "token", None) or _token_file(a.token_file) or _env_list(variable)
        if role == "gateway":
            if not s.tokens:
                raise SystemExit("the gateway needs at least one bearer token: MEPHISTO_TOKENS or --token-file")
            s.max_sources, s.tls_cert, s.tls_key = a.max_sources, a.tls_cert, a.tls_key
            if bool(s.tls_cert) != bool(s.tls_key):
                raise SystemExit("TLS needs both --tls-cert and --tls-key")
        tokens = {f"{role} token {i + 1}": t for i, t in enumerate(s.tokens)}
        refuse_dev_credentials({"NATS_PASSWORD": s.nats_password, **tokens})
        if s.ack_wait <= 0 or s.max_deliver < 1 or s.concurrency < 1:
            raise SystemExit("--ack-wait must be > 0, --max-deliver and --concurrency >= 1")
        return s
