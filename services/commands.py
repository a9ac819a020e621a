"""The platform's commands, registered into `mephisto-sed` from this side (entry point
``mephisto_sed.commands`` in pyproject.toml): ``up``, ``submit``, ``bench platform`` and
``bench chaos``. The science core never imports the platform; heavy imports wait for use."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from mephisto_sed.catalog import read_catalog
from mephisto_sed.cli import (
    add_agent_args,
    cosmos_default,
    example_catalog_path,
    knowledge_path,
    load_catalog,
    search_space,
)
from mephisto_sed.settings import DEFAULT_KNOWLEDGE, settings

PLATFORM_DATA_DIR = "~/.local/share/mephisto-sed/platform"  # `up`'s NATS store, credentials and logs


def cmd_up(args: argparse.Namespace) -> int:
    """The whole platform on this machine until Ctrl-C (services live outside the core package)."""
    from services.common.settings import token_from_env
    from services.platform import run_up

    token = args.token or token_from_env()
    knowledge = knowledge_path(args)  # the store `fit` and `knowledge list` use, not a second one
    return run_up(args.data_dir, args.port, args.executors, token, knowledge, args.nats_port, out=_say)


def _say(message: str) -> None:
    print(message, flush=True)


def _token(args: argparse.Namespace) -> str:
    """The bearer token: --token, else $MEPHISTO_TOKEN, else the first line of --token-file."""
    from pathlib import Path

    if args.token or settings().token:
        return args.token or settings().token
    path = Path(args.token_file).expanduser()
    if not path.is_file():
        raise SystemExit(f"error: no token: give --token-file, set MEPHISTO_TOKEN, or start `up` ({path} is missing)")
    return path.read_text().strip()


def cmd_submit(args: argparse.Namespace) -> int:
    from pathlib import Path

    import grpc

    from gateway.client import GatewayClient, catalog_requests, run_catalog, write_outputs
    from mephisto_sed.api.v1 import mephisto_pb2 as pb

    cat = load_catalog(args)
    space = search_space(args, cat)
    ini = Path(args.config).read_text() if args.config else ""
    if args.llm:
        print("error: the platform's LLM is configured on the proposers (MEPHISTO_LLM_URL)", file=sys.stderr)
        return 2
    budget = pb.Budget(
        max_models=args.max_models, max_steps=args.max_steps, max_seconds=args.max_seconds, max_tokens=args.max_tokens
    )
    reqs = catalog_requests(cat, space.bands, budget, args.seed, ini, args.idempotency_key or "")
    client = GatewayClient(args.gateway, _token(args), args.ca)
    try:
        sub = run_catalog(client, reqs, watch=args.watch, progress=not args.quiet, timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2
    finally:
        client.close()
    out = write_outputs(sub, cat, space, args.out, plots=not args.no_plots)
    print(
        f"wrote {out}/results.csv: {len(sub.results)} done, {len(sub.failed)} failed, "
        f"{sum(r.anomaly for r in sub.results)} anomalies, {sub.seconds:.1f} s"
    )
    return 0 if not sub.failed else 1


def _bench_platform(args: argparse.Namespace) -> dict:
    from mephisto_sed.agents.search import Budget

    from .bench_platform import bench_platform

    cat = read_catalog(args.catalog or cosmos_default(), on_unknown="skip").select(slice(0, args.n))
    budget = Budget(max_models=args.max_models, max_steps=args.max_steps)
    return bench_platform(cat, budget=budget, executors=args.executors, progress=not args.json)


def _bench_chaos(args: argparse.Namespace) -> dict:
    from mephisto_sed.api.v1 import mephisto_pb2 as pb

    from .bench_chaos import bench_chaos

    cat = read_catalog(args.catalog or example_catalog_path(), on_unknown="skip").select(slice(0, args.n))
    budget = pb.Budget(max_models=args.max_models, max_steps=args.max_steps)
    return bench_chaos(cat, budget, seed=args.seed, progress=not args.json)


def _bench_compose(args: argparse.Namespace) -> dict:
    from mephisto_sed.api.v1 import mephisto_pb2 as pb

    from .bench_compose import bench_compose

    cat = read_catalog(args.catalog or cosmos_default(), on_unknown="skip").select(slice(0, args.n))
    return bench_compose(cat, pb.Budget(max_models=args.max_models, max_steps=args.max_steps))


def register(sub: argparse._SubParsersAction, benchmarks: dict[str, Callable[[argparse.Namespace], dict]]) -> None:
    up = sub.add_parser("up", help="start the platform here: nats-server, the four services and the gateway")
    up.add_argument("--port", type=int, default=50051, help="gateway gRPC port")
    up.add_argument(
        "--nats-port", type=int, default=0, help="embedded nats-server port (0 = free); NATS_URL = use yours"
    )
    up.add_argument("--executors", type=int, default=1, help="executor replicas")
    up.add_argument(
        "--token", help="gateway bearer token (default: $MEPHISTO_TOKENS, else a random one kept in DATA_DIR/token)"
    )
    up.add_argument("--data-dir", default=PLATFORM_DATA_DIR, help="NATS store, credentials (mode 0600), logs")
    up.add_argument("--knowledge", help=f"knowledge folder (default: $MEPHISTO_KNOWLEDGE or {DEFAULT_KNOWLEDGE})")
    up.set_defaults(func=cmd_up)

    sm = sub.add_parser("submit", help="submit a catalogue to a running gateway and write the fit outputs")
    add_agent_args(sm)
    sm.add_argument("--gateway", default="127.0.0.1:50051", help="HOST:PORT")
    sm.add_argument("--token", help="bearer token (visible in ps: prefer $MEPHISTO_TOKEN or --token-file)")
    sm.add_argument(
        "--token-file", default=f"{PLATFORM_DATA_DIR}/token", help="file holding the token (default: the one `up` made)"
    )
    sm.add_argument("--ca", help="CA certificate (PEM) when the gateway uses TLS")
    sm.add_argument("--watch", action="store_true", help="stream each job's steps")
    sm.add_argument("--out", default="out-platform")
    sm.add_argument("--max-steps", type=int, default=80)
    sm.add_argument("--max-seconds", type=float, default=300.0)
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument("--idempotency-key", help="makes a retried submission return the same jobs")
    sm.add_argument("--timeout", type=float, default=24 * 3600.0, help="give up waiting after this many seconds")
    sm.add_argument("--no-plots", action="store_true")
    sm.set_defaults(func=cmd_submit)

    benchmarks["platform"] = _bench_platform
    benchmarks["chaos"] = _bench_chaos
    benchmarks["compose"] = _bench_compose
