"""The platform's role services: thin wiring (gRPC + NATS JetStream) around mephisto_sed's agents."""
