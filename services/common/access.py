"""Who may touch what on NATS: each role's subjects, consumers and key-value buckets.

One table (``ACCESS``) says what every role does on the bus; the services bind only the buckets
it lists, and ``nats_permissions`` turns it into the nats-server ``permissions`` block of that
role's user (deploy/nats/auth.conf and the Helm values are generated from it by
``scripts/gen_deploy.py``; tests/test_deploy_nats.py runs the platform under those users on a
real nats-server and checks that each one is refused everything else).

JetStream is driven by subjects, so least privilege is a list of subjects: publishing into a
stream is a publish on its subject; a pull consumer is ``$JS.API.CONSUMER.{INFO,CREATE}`` and
``MSG.NEXT`` for that one durable plus its ``$JS.ACK`` subjects; reading a bucket is a
``STREAM.INFO``/``DIRECT.GET``/``MSG.GET`` on its stream, writing it a publish on ``$KV.<bucket>``.
Replies come to a per-role inbox prefix (``_INBOX_<role>``), so no role can read another's replies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .bus import (
    ALERTS,
    DLQ,
    EVENTS,
    KV_DISTILLED,
    KV_IDEMPOTENCY,
    KV_JOBS,
    KV_NODES,
    KV_SEARCH,
    KV_SPACES,
    KV_SPECS,
    RPC_KNOWLEDGE,
    STREAM_ALERTS,
    STREAM_DLQ,
    STREAM_EVENTS,
    STREAM_WORK,
    SUBJECT,
)

JS_API = "$JS.API"
SETUP_USER = "setup"  # creates streams and buckets (python -m services.setup); no role may
ROLES_WITH_USERS = ("gateway", "proposer", "executor", "evaluator", "distiller", "pipeline", "operator")
USERS = (SETUP_USER, *ROLES_WITH_USERS)
ACCOUNT = "MEPHISTO"


@dataclass(frozen=True)
class Access:
    """What one role does on the bus."""

    consumers: tuple[tuple[str, str, str], ...] = ()  # (stream, durable, filter subject)
    publishes: tuple[str, ...] = ()  # subjects published into streams (wildcards allowed)
    reads: tuple[str, ...] = ()  # buckets read
    writes: tuple[str, ...] = ()  # buckets written (and read)
    requests: tuple[str, ...] = ()  # core request/reply subjects it asks on
    serves: tuple[str, ...] = ()  # core request/reply subjects it answers (queue group)
    watches: tuple[str, ...] = ()  # streams read through ephemeral ordered consumers
    extra_publish: tuple[str, ...] = ()  # raw API subjects (the gateway's DLQ tools)
    extra_subscribe: tuple[str, ...] = ()

    @property
    def buckets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.reads + self.writes))


def _work(role: str, key: str) -> tuple[str, str, str]:
    return (STREAM_WORK, f"mephisto-{role}", SUBJECT[key])


ACCESS: dict[str, Access] = {
    "gateway": Access(
        consumers=((STREAM_ALERTS, "mephisto-alerts", f"{ALERTS}.>"), (STREAM_DLQ, "mephisto-gateway-dlq", f"{DLQ}.>")),
        publishes=(SUBJECT["advance"], f"{EVENTS}.>", f"{DLQ}.>"),
        writes=(KV_SPECS, KV_JOBS, KV_SPACES, KV_IDEMPOTENCY),
        requests=(RPC_KNOWLEDGE,),
        watches=(STREAM_EVENTS,),  # WatchJob
        extra_publish=(
            # a work message that JetStream gave up on is read, dead-lettered and removed
            f"{JS_API}.STREAM.MSG.GET.{STREAM_WORK}",
            f"{JS_API}.STREAM.MSG.DELETE.{STREAM_WORK}",
        ),
        extra_subscribe=(f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM_WORK}.*",),
    ),
    "proposer": Access(
        consumers=(_work("proposer", "advance"),),
        publishes=(SUBJECT["execute"], SUBJECT["distill"], f"{EVENTS}.>", f"{DLQ}.proposer"),
        reads=(KV_SPECS, KV_SPACES),
        writes=(KV_JOBS, KV_SEARCH, KV_NODES),
        requests=(RPC_KNOWLEDGE,),
    ),
    "executor": Access(
        consumers=(_work("executor", "execute"),),
        publishes=(SUBJECT["evaluate"], f"{DLQ}.executor"),
        reads=(KV_SPACES,),
    ),
    "evaluator": Access(
        consumers=(_work("evaluator", "evaluate"),),
        publishes=(SUBJECT["advance"], f"{DLQ}.evaluator"),
        reads=(KV_SPACES,),
    ),
    "distiller": Access(
        consumers=(_work("distiller", "distill"),),
        publishes=(f"{DLQ}.distiller",),
        reads=(KV_SPECS, KV_SPACES, KV_SEARCH, KV_NODES),
        writes=(KV_DISTILLED,),
        serves=(RPC_KNOWLEDGE,),
    ),
    # an observatory's alert broker (Rubin-style alerts): may publish alerts and nothing else
    "pipeline": Access(publishes=(f"{ALERTS}.>",)),
    # a person or dashboard reading progress events and dead letters (services.platform.read_stream)
    "operator": Access(
        watches=(STREAM_EVENTS, STREAM_DLQ),
        extra_publish=(f"{JS_API}.STREAM.INFO.{STREAM_EVENTS}", f"{JS_API}.STREAM.INFO.{STREAM_DLQ}"),
    ),
}


def inbox_prefix(role: str) -> str:
    return f"_INBOX_{role}"


def _bucket_read(bucket: str) -> list[str]:
    s = f"KV_{bucket}"
    return [
        f"{JS_API}.STREAM.INFO.{s}",
        f"{JS_API}.DIRECT.GET.{s}",
        f"{JS_API}.DIRECT.GET.{s}.>",
        f"{JS_API}.STREAM.MSG.GET.{s}",
    ]


def nats_permissions(role: str) -> dict[str, object]:
    """The nats-server ``permissions`` block for ``role``'s user: allow-lists only."""
    if role == SETUP_USER:
        return {
            "publish": {"allow": [f"{JS_API}.INFO", f"{JS_API}.STREAM.INFO.*", f"{JS_API}.STREAM.CREATE.*"]},
            "subscribe": {"allow": [f"{inbox_prefix(SETUP_USER)}.>"]},
        }
    a = ACCESS[role]
    pub: list[str] = list(a.publishes) + list(a.requests)
    for stream, durable, filt in a.consumers:
        pub += [
            f"{JS_API}.CONSUMER.INFO.{stream}.{durable}",
            f"{JS_API}.CONSUMER.CREATE.{stream}.{durable}",
            f"{JS_API}.CONSUMER.CREATE.{stream}.{durable}.{filt}",
            f"{JS_API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
            f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    for bucket in a.buckets:
        pub += _bucket_read(bucket)
    for bucket in a.writes:
        pub.append(f"$KV.{bucket}.>")
    for stream in a.watches:  # ordered consumers: create, delete, flow-control replies
        pub += [
            f"{JS_API}.CONSUMER.CREATE.{stream}",
            f"{JS_API}.CONSUMER.CREATE.{stream}.>",
            f"{JS_API}.CONSUMER.DELETE.{stream}.>",
            f"$JS.FC.{stream}.>",
        ]
    pub += a.extra_publish
    sub = [f"{inbox_prefix(role)}.>", *a.serves, *a.extra_subscribe]
    perms: dict[str, object] = {
        "publish": {"allow": list(dict.fromkeys(pub))},
        "subscribe": {"allow": list(dict.fromkeys(sub))},
    }
    if a.serves:
        perms["allow_responses"] = True  # answer requests on their reply subjects, once each
    return perms


def password_variable(user: str) -> str:
    """The environment variable that holds ``user``'s NATS password (nats-server reads it too)."""
    return f"MEPHISTO_NATS_{user.upper()}_PASSWORD"


def nats_auth_conf(header: str = "") -> str:
    """nats-server's ``accounts`` block: one user per role with its permissions; each password is
    read by nats-server from the environment variable :func:`password_variable` names."""
    lines = ([f"# {header}"] if header else []) + ["accounts {", f"  {ACCOUNT} {{", "    jetstream: enabled"]
    lines.append("    users: [")
    for user in USERS:
        perms = json.dumps(nats_permissions(user), indent=2).replace("\n", "\n        ")
        lines += [
            "      {",
            f"        user: {user}",
            f"        password: ${password_variable(user)}",
            f"        permissions: {perms}",
            "      }",
        ]
    lines += ["    ]", "  }", "}", ""]
    return "\n".join(lines)
