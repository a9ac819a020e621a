"""Where a piece of knowledge applies: the redshift and the rest-frame wavelengths the photometry
covered. A rule or an outcome learned on one galaxy informs another only where both are alike —
the same redshift window as outcomes (Δz ≤ 0.15 (1 + z)) and rest-frame coverage that overlaps by
at least half (in log λ) — so knowledge from an unlike population leaves a search exactly as it
would run without knowledge."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Domain", "COVERAGE_OVERLAP", "REDSHIFT_WINDOW"]

REDSHIFT_WINDOW = 0.15  # Δz / (1 + z) within which two galaxies count as at the same redshift
COVERAGE_OVERLAP = 0.5  # shared fraction of the two rest-frame ranges (log λ) for alike photometry


@dataclass(frozen=True)
class Domain:
    redshift: float
    rest_min_um: float  # bluest band with a measurement, rest frame (µm)
    rest_max_um: float  # reddest

    @classmethod
    def of(cls, source: Any) -> Domain | None:
        """The domain of a ``Source`` (None without a finite redshift or any measured band)."""
        from ..filters import get_filter

        z = float(source.redshift)
        measured = [b for b, f in zip(source.bands, source.flux) if np.isfinite(f)]
        if not math.isfinite(z) or z < 0 or not measured:
            return None
        pivots = [get_filter(b).pivot_wavelength / 1e4 / (1 + z) for b in measured]
        return cls(z, float(min(pivots)), float(max(pivots)))

    def as_list(self) -> list[float]:
        return [self.redshift, self.rest_min_um, self.rest_max_um]

    @classmethod
    def from_list(cls, values: Any) -> Domain:
        z, lo, hi = (float(v) for v in values)
        return cls(z, lo, hi)

    def alike(self, other: Domain) -> bool:
        """Same redshift window and rest-frame coverage overlapping by ≥ ``COVERAGE_OVERLAP``."""
        if abs(self.redshift - other.redshift) > REDSHIFT_WINDOW * (1 + other.redshift):
            return False
        lo, hi = math.log(max(self.rest_min_um, other.rest_min_um)), math.log(min(self.rest_max_um, other.rest_max_um))
        span = math.log(max(self.rest_max_um, other.rest_max_um)) - math.log(min(self.rest_min_um, other.rest_min_um))
        return span > 0 and (hi - lo) / span >= COVERAGE_OVERLAP
