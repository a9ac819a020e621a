"""Executor: fits every model of a configuration to a source (mephisto_sed's grid engine)."""
