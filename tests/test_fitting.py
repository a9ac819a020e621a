"""χ² conventions, upper limits and injection–recovery on mock galaxies with known truth."""

import numpy as np
import pytest

from mephisto_sed.config import Configuration
from mephisto_sed.engine import ModelGrid
from mephisto_sed.fitting import FitAccumulator, SourceData
from mephisto_sed.gridfit import fit_catalog
from mephisto_sed.mock import make_mock_catalog

from .conftest import BROAD_BANDS

MOCK_CONFIG = {
    "sfhdelayed": {
        "tau_main": [100.0, 300.0, 1000.0, 3000.0],
        "age_main": [300.0, 1000.0, 2000.0, 4000.0],
        "f_burst": 0.0,
    },
    "bc03": {"imf": 1, "metallicity": [0.004, 0.02]},
    "nebular": {"logU": [-3.0, -2.0], "zgas": 0.008},
    "dustatt_modified_starburst": {"E_BV_lines": [0.0, 0.1, 0.2, 0.3, 0.5, 0.7], "E_BV_factor": 0.44},
    "dl2014": {"qpah": 2.5, "umin": 1.0, "alpha": 2.0, "gamma": 0.1},
    "redshifting": {"redshift": ""},
}


def test_noise_free_model_is_recovered_exactly():
    cfg = Configuration.from_modules(MOCK_CONFIG, additionalerror=0.0)
    grid = ModelGrid(cfg, BROAD_BANDS)
    chunks = list(grid.iter_chunks(1.2))
    target = chunks[5]
    obs = target.fluxes[3] * 3e10
    data = SourceData(obs[None, :], 0.05 * obs[None, :], np.zeros((1, obs.size), bool), additionalerror=0.0)
    acc = FitAccumulator(data)
    for ch in chunks:
        acc.add(ch)
    best = acc.best[0]
    assert best.chi2 == pytest.approx(0.0, abs=1e-12)
    assert best.props["stellar.m_star"] == pytest.approx(3e10 * target.props["stellar.m_star"][3], rel=1e-9)
    assert acc.n_models == grid.n_models(1.2)


def test_chi2_scale_and_additional_error_follow_cigale():
    f_model = np.array([[1.0, 2.0, 4.0]])
    obs = np.array([[2.2, 3.8, 8.1]])
    err = np.array([[0.1, 0.2, 0.4]])
    data = SourceData(obs, err, np.zeros_like(obs, bool), additionalerror=0.1)
    chi2, scale = FitAccumulator(data).chi2(f_model)
    s2 = err**2 + (0.1 * obs) ** 2
    s_ref = np.sum(obs * f_model / s2) / np.sum(f_model**2 / s2)
    assert scale[0, 0] == pytest.approx(s_ref)
    assert chi2[0, 0] == pytest.approx(np.sum((obs - s_ref * f_model) ** 2 / s2))


def test_upper_limits_penalise_models_above_the_limit():
    f_models = np.array([[1.0, 1.0, 0.1], [1.0, 1.0, 5.0]])  # second model violates the limit
    obs = np.array([[1.0, 1.0, 0.5]])
    err = np.array([[0.1, 0.1, 0.2]])
    lim = np.array([[False, False, True]])
    chi2, scale = FitAccumulator(SourceData(obs, err, lim, additionalerror=0.0)).chi2(f_models)
    assert scale[0, 0] == pytest.approx(1.0)  # limits do not set the scale (noscaling)
    assert chi2[0, 1] > chi2[0, 0] + 25


def test_injection_recovery_of_mock_galaxies():
    """≥50 mocks with realistic noise: median |Δlog M*| ≤ 0.1 dex and ≥90% of true parameters
    inside the 2σ Bayesian interval."""
    cfg = Configuration.from_modules(MOCK_CONFIG, additionalerror=0.05)
    cat, truth = make_mock_catalog(cfg, BROAD_BANDS, 60, seed=7, z_range=(0.2, 3.5))
    res = fit_catalog(cat, cfg, progress=False, with_sed=False).table
    dlogm = np.log10(res["bayes.stellar.m_star"]) - truth["log_mstar"]
    assert np.median(np.abs(dlogm)) <= 0.1
    pairs = {
        "stellar.m_star": "stellar.m_star",
        "sfh.sfr": "sfh.sfr",
        "sfh.age_main": "sfhdelayed.age_main",
        "sfh.tau_main": "sfhdelayed.tau_main",
        "attenuation.E_BV_lines": "dustatt_modified_starburst.E_BV_lines",
        "stellar.metallicity": "bc03.metallicity",
        "nebular.logU": "nebular.logU",
        "dust.luminosity": "dust.luminosity",
    }
    inside = []
    for est, true_key in pairs.items():
        mean, err, true = res[f"bayes.{est}"], res[f"bayes.{est}_err"], truth[true_key]
        inside.append(np.abs(mean - true) <= 2 * err + 1e-6 * np.abs(true))
    frac = np.mean(np.concatenate(inside))
    assert frac >= 0.9, f"only {frac:.0%} of true parameters inside 2σ"
