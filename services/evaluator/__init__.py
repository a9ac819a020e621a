"""Evaluator: judges a fit beyond one number (regimes, patterns, edges, plausibility)."""
