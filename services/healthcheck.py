"""Exit 0 when a service answers gRPC health checks with SERVING, else 1 (container health checks):

python -m services.healthcheck 127.0.0.1:50051 [--service mephisto.v1.Executor] [--ca ca.pem]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, service: str = "", ca_file: str = "", timeout: float = 3.0) -> bool:
    if ca_file:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(Path(ca_file).read_bytes()))
    else:
        channel = grpc.insecure_channel(address)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m services.healthcheck", description=__doc__.splitlines()[0])
    p.add_argument("address", help="host:port of the gRPC server")
    p.add_argument("--service", default="", help="a fully qualified service name ('' = the whole server)")
    p.add_argument("--ca", default="", help="CA certificate when the server uses TLS")
    p.add_argument("--timeout", type=float, default=3.0)
    a = p.parse_args(argv)
    ok = check(a.address, a.service, a.ca, a.timeout)
    print("SERVING" if ok else "NOT SERVING", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
