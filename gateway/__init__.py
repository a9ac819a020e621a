"""The public face: gRPC API for observatory pipelines (bearer tokens, validation, limits, TLS),
alert ingestion from NATS, and failed-job bookkeeping from the dead-letter subjects."""
