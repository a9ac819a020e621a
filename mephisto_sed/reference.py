"""Independent reference: photometry of the same physical model from ``bagpipes.model_galaxy``.

Used by the tests and by ``mephisto-sed bench engine`` (``max_rel_diff_vs_bagpipes``).
The mapping between the two vocabularies is explicit here; bagpipes uses a flat ΛCDM
cosmology (H0 = 70, Ωm = 0.3), so comparisons run the engine with the same one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.cosmology import FlatLambdaCDM

from .config import Configuration
from .filters import get_filter
from .model_grid import ModelGrid

BAGPIPES_COSMOLOGY = FlatLambdaCDM(H0=70.0, Om0=0.3)


@dataclass
class ReferenceCase:
    """One physical model in both vocabularies."""

    name: str
    redshift: float
    tau_myr: float
    age_myr: float
    metallicity: float  # absolute Z
    logU: float | None = None  # nebular emission when set
    ebv_s: float = 0.0  # Calzetti E(B-V) of the stellar continuum (and, here, of the gas)
    dust_emission: bool = False

    def config(self) -> Configuration:
        mods: dict[str, dict[str, Any]] = {
            "sfhdelayed": {"tau_main": self.tau_myr, "age_main": self.age_myr, "f_burst": 0.0},
            "bc03": {"imf": 1, "metallicity": self.metallicity},
        }
        if self.logU is not None:
            mods["nebular"] = {"logU": self.logU, "zgas": self.metallicity}
        mods["dustatt_calzleit"] = {"E_BVs_young": self.ebv_s, "E_BVs_old_factor": 1.0}
        if self.dust_emission:
            mods["dl2014"] = {"qpah": 2.5, "umin": 1.0, "alpha": 2.0, "gamma": 0.01}
        mods["redshifting"] = {"redshift": self.redshift}
        return Configuration.from_modules(mods)

    def bagpipes_components(self) -> dict[str, Any]:
        comp: dict[str, Any] = {
            "redshift": self.redshift,
            "delayed": {
                "age": self.age_myr / 1e3,
                "tau": self.tau_myr / 1e3,
                "massformed": 10.0,
                "metallicity": self.metallicity / 0.02,
            },
        }
        if self.logU is not None:
            comp["nebular"] = {"logU": self.logU}
        if self.ebv_s > 0 or self.dust_emission:
            comp["dust"] = {
                "type": "Calzetti",
                "Av": 4.05 * self.ebv_s,
                "eta": 1.0,
                "qpah": 2.5,
                "umin": 1.0,
                "gamma": 0.01,
            }
        return comp


def _write_filters(bands: list[str], folder: Path) -> list[str]:
    paths = []
    for b in bands:
        f = get_filter(b)
        p = folder / f"{b}.dat"
        np.savetxt(p, np.column_stack([f.wavelength, f.transmission]))
        paths.append(str(p))
    return paths


def bagpipes_photometry(case: ReferenceCase, bands: list[str]) -> np.ndarray:
    """bagpipes fluxes in mJy for 10^10 M☉ formed."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import bagpipes  # heavy: loads every grid on import

    # bagpipes' default sampling (R = 100 across the filters) is itself only good to a few per
    # cent in medium bands and near breaks; R = 1000 gives its converged answer.
    bagpipes.config.R_phot = 1000.0
    bagpipes.config.R_other = 100.0
    with tempfile.TemporaryDirectory() as tmp:
        filt_list = _write_filters(bands, Path(tmp))
        model = bagpipes.model_galaxy(case.bagpipes_components(), filt_list=filt_list, phot_units="mujy")
        return np.asarray(model.photometry, dtype=float) / 1e3


def engine_photometry(case: ReferenceCase, bands: list[str]) -> np.ndarray:
    """Our fluxes in mJy for 10^10 M☉ formed, same cosmology as bagpipes."""
    cfg = case.config()
    grid = ModelGrid(cfg, bands, cosmology=BAGPIPES_COSMOLOGY)
    chunks = list(grid.iter_chunks(case.redshift))
    assert len(chunks) == 1 and len(chunks[0]) == 1
    return chunks[0].fluxes[0] * 1e10


DEFAULT_CASES = (
    ReferenceCase("stars z=0.5", 0.5, tau_myr=1000.0, age_myr=5000.0, metallicity=0.02),
    ReferenceCase("stars z=2", 2.0, tau_myr=300.0, age_myr=1000.0, metallicity=0.008),
    ReferenceCase(
        "stars+dust z=1", 1.0, tau_myr=2000.0, age_myr=3000.0, metallicity=0.02, ebv_s=0.2, dust_emission=True
    ),
    ReferenceCase(
        "stars+nebular+dust mid-IR z=0.1",
        0.1,
        tau_myr=3000.0,
        age_myr=8000.0,
        metallicity=0.02,
        logU=-3.0,
        ebv_s=0.3,
        dust_emission=True,
    ),
    ReferenceCase("stars+nebular z=3", 3.0, tau_myr=500.0, age_myr=500.0, metallicity=0.004, logU=-2.5),
    ReferenceCase("stars+nebular z=6.5", 6.5, tau_myr=100.0, age_myr=300.0, metallicity=0.004, logU=-2.0),
    ReferenceCase(
        "stars+nebular+dust z=8",
        8.0,
        tau_myr=50.0,
        age_myr=200.0,
        metallicity=0.004,
        logU=-2.0,
        ebv_s=0.1,
        dust_emission=True,
    ),
)

REFERENCE_BANDS = (
    "cfht.megacam.u",
    "subaru.suprime.g",
    "subaru.suprime.r",
    "subaru.suprime.i",
    "subaru.suprime.z",
    "subaru.suprime.IB427",
    "subaru.suprime.IB574",
    "subaru.suprime.IB827",
    "paranal.vircam.Y",
    "paranal.vircam.J",
    "paranal.vircam.H",
    "paranal.vircam.Ks",
    "spitzer.irac.I1",
    "spitzer.irac.I2",
    "hst.acs.wfc.F814W",
    "jwst.nircam.F090W",
    "jwst.nircam.F115W",
    "jwst.nircam.F150W",
    "jwst.nircam.F200W",
    "jwst.nircam.F277W",
    "jwst.nircam.F356W",
    "jwst.nircam.F444W",
    "jwst.miri.F770W",
    "jwst.miri.F1800W",
    "spitzer.mips.24",
    "wise.W3",
)


def compare(
    case: ReferenceCase, bands: list[str] | tuple[str, ...] = REFERENCE_BANDS, min_flux_fraction: float = 1e-3
) -> dict[str, Any]:
    """Relative differences per band (bands with flux > min_flux_fraction × the brightest)."""
    bands = list(bands)
    ours = engine_photometry(case, bands)
    ref = bagpipes_photometry(case, bands)
    keep = ref > min_flux_fraction * ref.max()
    rel = np.where(keep, ours / np.where(ref > 0, ref, 1.0) - 1.0, np.nan)
    return {
        "case": case.name,
        "bands": bands,
        "ours": ours,
        "bagpipes": ref,
        "rel_diff": rel,
        "max_abs_rel_diff": float(np.nanmax(np.abs(rel))),
    }
