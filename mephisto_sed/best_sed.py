"""A source's best-fit spectrum as a table (CIGALE's ``*_best_model.fits`` columns), for the
result files and the plots alike."""

from __future__ import annotations

import numpy as np
from astropy.cosmology import FLRW
from astropy.table import Table

from .gridfit import SourceFit
from .photometry import DEFAULT_COSMOLOGY, ERG_TO_MJY, luminosity_distance_cm
from .physics.grids import C_AA, L_SUN
from .physics.igm import igm_transmission

__all__ = ["sed_table"]


def sed_table(fit: SourceFit, cosmology: FLRW = DEFAULT_COSMOLOGY) -> Table:
    """Best-fit spectrum in the observed frame: wavelength (nm), Fnu (mJy) per component,
    and rest-frame L_lambda_total (W/nm), as CIGALE's ``*_best_model.fits``."""
    if fit.sed is None:
        raise ValueError(f"source {fit.id}: no best-fit spectrum (fit failed or with_sed=False)")
    z = fit.model_redshift
    sed = fit.sed
    wave_obs = sed.wave * (1 + z)
    dl = luminosity_distance_cm(z, cosmology)
    igm = igm_transmission(sed.wave, z)
    to_mjy = fit.best.scale * L_SUN / (4 * np.pi * dl**2 * (1 + z)) * wave_obs**2 / C_AA * ERG_TO_MJY * igm
    t = Table()
    t["wavelength"] = wave_obs / 10.0
    t["wavelength"].unit = "nm"
    t["Fnu"] = sed.total * to_mjy
    t["Fnu"].unit = "mJy"
    for name, comp in sed.components.items():
        if not name.endswith("_intrinsic"):
            t[name] = comp * to_mjy
            t[name].unit = "mJy"
    t["L_lambda_total"] = sed.total * fit.best.scale * L_SUN * 1e-7 * 10.0  # W/nm
    t["L_lambda_total"].unit = "W/nm"
    t.meta["id"] = fit.id.encode("ascii", "backslashreplace").decode()  # FITS headers are ASCII
    t.meta["redshift"] = z
    return t
