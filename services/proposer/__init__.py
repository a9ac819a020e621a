"""Proposer: owns each job's tree search; records evaluations and chooses the next configuration."""
