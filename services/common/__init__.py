"""Plumbing shared by every service and the gateway: settings, NATS topology and workers, gRPC
servers, telemetry, and conversions between the protobuf contract and mephisto_sed objects."""
