"""A grid fit of 50 real COSMOS2020 galaxies at their spectroscopic redshifts."""

import numpy as np

from mephisto_sed.catalog import read_catalog
from mephisto_sed.config import read_pcigale_ini
from mephisto_sed.gridfit import fit_catalog


def test_grid_fit_of_50_cosmos_galaxies(cosmos_dir, capsys):
    cat = read_catalog(cosmos_dir / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt", on_unknown="skip")
    cat = cat.select(slice(0, 50))
    # The COSMOS team's own grid, thinned so the test stays fast on two cores.
    cfg = read_pcigale_ini(cosmos_dir / "pcigale_zbin_2p50_3p00.ini")
    p = cfg.params
    cfg = cfg.with_values(
        "sfhdelayed",
        tau_main=p["sfhdelayed"]["tau_main"][::2],
        age_main=p["sfhdelayed"]["age_main"][::2],
        tau_burst=[50.0],
        age_burst=[20.0],
        f_burst=[0.0, 0.1],
    )
    cfg = cfg.with_values("nebular", logU=p["nebular"]["logU"][::3], zgas=[0.004, 0.02])
    cfg = cfg.with_values("bc03", metallicity=[0.004, 0.02])
    res = fit_catalog(cat, cfg, progress=False, with_sed=False).table
    chi2 = np.asarray(res["best.reduced_chi_square"])
    assert len(res) == 50 and np.all(np.isfinite(chi2))
    logm = np.log10(res["bayes.stellar.m_star"])
    assert np.all((logm > 7) & (logm < 12.5))
    median = float(np.median(chi2))
    with capsys.disabled():
        print(f"\nCOSMOS 50 galaxies: median reduced chi2 = {median:.2f}, median log M* = {np.median(logm):.2f}")
    assert median < 5
