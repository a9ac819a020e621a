"""Band-flux operators: matrices that turn rest-frame luminosity densities into observed
fluxes in mJy through real filter curves, with redshift, IGM and distance folded in.

Convention (photon-counting detectors, as CIGALE): <f_ν> = ∫ f_λ T λ dλ / (c ∫ T/λ dλ).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
from astropy.cosmology import FLRW, WMAP7

from .filters import FilterCurve, get_filter
from .physics.grids import C_AA, L_SUN
from .physics.igm import igm_transmission

MPC_CM = 3.0856775814913673e24
TEN_PC_CM = 3.0856775814913673e19
ERG_TO_MJY = 1e26  # erg/s/cm²/Hz -> mJy
DEFAULT_COSMOLOGY: FLRW = WMAP7  # CIGALE's cosmology


def luminosity_distance_cm(redshift: float, cosmology: FLRW = DEFAULT_COSMOLOGY) -> float:
    """Luminosity distance; 10 pc at z = 0 (CIGALE's convention for rest-frame fits)."""
    if redshift <= 0:
        return TEN_PC_CM
    return float(cosmology.luminosity_distance(redshift).value) * MPC_CM


def age_of_universe_myr(redshift: float, cosmology: FLRW = DEFAULT_COSMOLOGY) -> float:
    return float(cosmology.age(redshift).to_value("Myr"))


@lru_cache(maxsize=256)
def _fine_filter(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Filter resampled to ≤0.05% steps in λ, with trapezoid weights T λ dλ / (c ∫T/λ dλ)."""
    f: FilterCurve = get_filter(name)
    lo, hi = f.wavelength_range
    n = max(int(np.log(hi / lo) / 5e-4) + 2, f.wavelength.size)
    w = np.unique(np.concatenate([np.geomspace(lo, hi, n), f.wavelength]))
    t = np.interp(w, f.wavelength, f.transmission)
    dw = np.gradient(w)
    norm = C_AA * np.sum(t / w * dw)
    return w, t * w * dw / norm


_MATRIX_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
MATRIX_CACHE_SIZE = 64  # ~1.8 MB each for the BC03 grid and 31 bands


def _cached(kind: str, fn: Any, wave: np.ndarray, redshift: float, bands: list[str], cosmology: FLRW) -> np.ndarray:
    """Band matrices are the same for every step of a source (and every source at the same
    redshift): keep the last few, read-only. A search's executor fits many configurations at one z;
    the IGM and filter resampling in them were ~10 % of its time."""
    key = (
        kind,
        hashlib.sha1(np.ascontiguousarray(wave).tobytes()).hexdigest(),
        float(redshift),
        tuple(bands),
        id(cosmology),
    )
    out = _MATRIX_CACHE.get(key)
    if out is None:
        out = fn(wave, redshift, bands, cosmology)
        out.setflags(write=False)
        _MATRIX_CACHE[key] = out
        while len(_MATRIX_CACHE) > MATRIX_CACHE_SIZE:
            _MATRIX_CACHE.popitem(last=False)
    else:
        _MATRIX_CACHE.move_to_end(key)
    return out


def band_matrix(
    rest_wave: np.ndarray, redshift: float, bands: list[str], cosmology: FLRW = DEFAULT_COSMOLOGY
) -> np.ndarray:
    """``F[λ, band]`` (cached; read-only): see :func:`compute_band_matrix`."""
    return _cached("band", compute_band_matrix, rest_wave, redshift, bands, cosmology)


def line_matrix(
    line_wave: np.ndarray, redshift: float, bands: list[str], cosmology: FLRW = DEFAULT_COSMOLOGY
) -> np.ndarray:
    """``FL[line, band]`` (cached; read-only): see :func:`compute_line_matrix`."""
    return _cached("line", compute_line_matrix, line_wave, redshift, bands, cosmology)


def compute_band_matrix(
    rest_wave: np.ndarray, redshift: float, bands: list[str], cosmology: FLRW = DEFAULT_COSMOLOGY
) -> np.ndarray:
    """``F[λ, band]``: mJy per (L☉/Å) of a rest-frame L_λ sampled on ``rest_wave``.

    The model is linearly interpolated between grid points; IGM is applied at each filter sample.
    """
    dl = luminosity_distance_cm(redshift, cosmology)
    scale = L_SUN * ERG_TO_MJY / (4 * np.pi * dl**2 * (1 + redshift))
    out = np.zeros((rest_wave.size, len(bands)))
    for j, name in enumerate(bands):
        w_obs, weight = _fine_filter(name)
        w_rest = w_obs / (1 + redshift)
        weight = weight * igm_transmission(w_rest, redshift) * scale
        inside = (w_rest > rest_wave[0]) & (w_rest < rest_wave[-1])
        w_rest, weight = w_rest[inside], weight[inside]
        i = np.searchsorted(rest_wave, w_rest) - 1
        frac = (w_rest - rest_wave[i]) / (rest_wave[i + 1] - rest_wave[i])
        np.add.at(out[:, j], i, weight * (1 - frac))
        np.add.at(out[:, j], i + 1, weight * frac)
    return out


def compute_line_matrix(
    line_wave: np.ndarray, redshift: float, bands: list[str], cosmology: FLRW = DEFAULT_COSMOLOGY
) -> np.ndarray:
    """``FL[line, band]``: mJy per L☉ of an unresolved line at rest ``line_wave`` (Å)."""
    dl = luminosity_distance_cm(redshift, cosmology)
    scale = L_SUN * ERG_TO_MJY / (4 * np.pi * dl**2)
    obs = line_wave * (1 + redshift)
    igm = igm_transmission(line_wave, redshift)
    out = np.zeros((line_wave.size, len(bands)))
    for j, name in enumerate(bands):
        f = get_filter(name)
        w, t = f.wavelength, f.transmission
        norm = C_AA * np.trapezoid(t / w, w)
        out[:, j] = np.interp(obs, w, t, left=0.0, right=0.0) * obs / norm * scale * igm
    return out


def window_column(rest_wave: np.ndarray, dwave: np.ndarray, lo_um: float, hi_um: float) -> np.ndarray:
    """Weights integrating L_λ (L☉/Å) over a rest-frame window in µm: gives L☉."""
    w = rest_wave / 1e4
    return np.where((w >= lo_um) & (w <= hi_um), dwave, 0.0)
