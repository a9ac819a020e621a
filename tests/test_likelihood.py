"""χ² conventions, upper limits and injection–recovery on mock galaxies with known truth."""

import numpy as np
import pytest

from mephisto_sed.config import Configuration
from mephisto_sed.gridfit import fit_catalog
from mephisto_sed.likelihood import LOG_FLOOR, FitAccumulator, SourceData
from mephisto_sed.mock import make_mock_catalog
from mephisto_sed.model_grid import ModelGrid

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


def test_upper_limit_term_is_normalised_and_unit_free():
    """Sawicki (2012): a satisfied limit costs ≈ 0, a model exactly at the limit 2 ln 2, and χ² is the
    same whatever the flux unit (the old √(π/2) σ form added -2 ln(√(2π) σ) per limit)."""
    f_models = np.array([[1.0, 1.0, 1e-6], [1.0, 1.0, 0.5]])  # third band: far below / at the limit
    obs = np.array([[1.0, 1.0, 0.5]])
    err = np.array([[0.1, 0.1, 0.02]])
    lim = np.array([[False, False, True]])
    chi2, _ = FitAccumulator(SourceData(obs, err, lim, additionalerror=0.0)).chi2(f_models)
    assert chi2[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert chi2[0, 1] == pytest.approx(2 * np.log(2), rel=1e-9)
    in_ujy, _ = FitAccumulator(SourceData(obs * 1e3, err * 1e3, lim, additionalerror=0.0)).chi2(f_models * 1e3)
    np.testing.assert_allclose(in_ujy, chi2, rtol=1e-9, atol=1e-9)
    # a limit violated by 40σ stays finite (log Φ, not log of an underflowed 1 + erf)
    bad, _ = FitAccumulator(SourceData(obs, err, lim, additionalerror=0.0)).chi2(np.array([[1.0, 1.0, 1.3]]))
    assert np.isfinite(bad[0, 0]) and bad[0, 0] > 1000


def test_residuals_use_the_sigma_of_chi2(tmp_path):
    """The residual columns and the plot divide by the σ χ² uses (catalogue error ⊕ additionalerror ×
    flux): Σ residual² over the detections equals the best χ²."""
    cfg = Configuration.from_modules(MOCK_CONFIG, additionalerror=0.1)
    cat, _ = make_mock_catalog(cfg, BROAD_BANDS, 3, seed=3, snr=40.0)
    res = fit_catalog(cat, cfg, progress=False, with_sed=False)
    for row in res.table:
        r = np.array([row[f"residual.{b}"] for b in res.bands])
        assert np.nansum(r**2) == pytest.approx(row["best.chi_square"], rel=1e-6)
        assert "additionalerror" in res.table[f"residual.{res.bands[0]}"].description


def test_grid_reports_sfr_averages_and_plausibility_warnings():
    """A 3 Myr burst's instantaneous SFR is many times its 100 Myr average: the grid reports both
    averages (CIGALE's names) and says so in ``warnings``; a main-sequence galaxy gets none."""
    burst = dict(MOCK_CONFIG)
    burst["sfhdelayed"] = {"tau_main": 1000.0, "age_main": 1000.0, "f_burst": 0.2, "age_burst": 3.0, "tau_burst": 50.0}
    cfg = Configuration.from_modules(burst, additionalerror=0.1)
    cat, _ = make_mock_catalog(cfg, BROAD_BANDS, 1, seed=1, z_range=(1.0, 1.5))
    row = fit_catalog(cat, cfg, progress=False, with_sed=False).table[0]
    assert row["bayes.sfh.sfr"] > 5 * row["bayes.sfh.sfr100Myrs"] > 0
    assert row["bayes.sfh.sfr10Myrs"] > row["bayes.sfh.sfr100Myrs"]
    assert "100 Myr average" in row["warnings"]
    quiet = dict(MOCK_CONFIG)
    quiet["sfhdelayed"] = {"tau_main": 3000.0, "age_main": 2000.0, "f_burst": 0.0}
    cfg = Configuration.from_modules(quiet, additionalerror=0.1)
    cat, _ = make_mock_catalog(cfg, BROAD_BANDS, 1, seed=1, z_range=(1.0, 1.5))
    assert fit_catalog(cat, cfg, progress=False, with_sed=False).table[0]["warnings"] == ""


def _fit_by_model(chunk: int, model: int, mass: float, err_frac: float, seed: int, **kw):
    """A source made from one model of MOCK_CONFIG's grid at z = 1.2, fitted chunk by chunk; with
    each chunk, its finite models and their χ² and scales, for model-by-model references."""
    chunks = list(ModelGrid(Configuration.from_modules(MOCK_CONFIG, additionalerror=0.1), BROAD_BANDS).iter_chunks(1.2))
    truth = chunks[chunk].fluxes[model] * mass
    err = err_frac * truth
    obs = truth + np.random.default_rng(seed).normal(0.0, err)
    data = SourceData(obs[None, :], err[None, :], np.zeros((1, obs.size), bool), additionalerror=0.1)
    acc = FitAccumulator(data, **kw)
    per_chunk = []
    for ch in chunks:
        acc.add(ch)
        chi2, scale = acc.chi2(ch.fluxes)
        ok = np.isfinite(chi2[0])
        per_chunk.append((ch, ok, chi2[0][ok], scale[0][ok]))
    return acc, per_chunk


def test_log_estimates_are_the_weighted_mean_of_the_log():
    """``bayes.stellar.m_star_log`` (CIGALE's ``_log`` variables) is the likelihood-weighted mean and σ
    of log10 M* over every model, computed here model by model; it is not the log of the linear mean."""
    acc, per_chunk = _fit_by_model(7, 2, 2e10, 0.15, seed=1)
    chi2 = np.concatenate([c for _, _, c, _ in per_chunk])
    logm = np.concatenate([np.log10(sc * ch.props["stellar.m_star"][ok]) for ch, ok, _, sc in per_chunk])
    # the floor is on the SFR in M☉/yr; per M☉ formed, many old histories lie far below it
    log_sfr = np.concatenate(
        [np.log10(np.maximum(sc * ch.props["sfh.sfr100Myrs"][ok], LOG_FLOOR)) for ch, ok, _, sc in per_chunk]
    )
    w = np.exp(-(chi2 - chi2.min()) / 2)
    mean = np.sum(w * logm) / w.sum()
    sd = np.sqrt(np.sum(w * (logm - mean) ** 2) / w.sum())
    row = acc.results()[0]
    assert row["bayes.stellar.m_star_log"] == pytest.approx(mean, abs=1e-9)
    assert row["bayes.stellar.m_star_log_err"] == pytest.approx(sd, rel=1e-6)
    assert row["bayes.sfh.sfr100Myrs_log"] == pytest.approx(np.sum(w * log_sfr) / w.sum(), abs=1e-9)
    assert sd > 0.05  # a real spread: the log of the linear mean lies above the mean of the log
    assert np.log10(row["bayes.stellar.m_star"]) > mean + 0.1 * sd**2
    for key in ("sfh.sfr", "sfh.sfr10Myrs", "sfh.sfr100Myrs"):
        assert np.isfinite(row[f"bayes.{key}_log"]) and row[f"bayes.{key}_log_err"] >= 0


def test_mean_log_mass_at_each_parameter_value_is_computed_model_by_model():
    """``log_mass_by_value``: the likelihood-weighted mean log10 M* at each value of a block parameter
    (one per chunk: the metallicity) and of an SFH parameter (one per model: the age), computed here
    model by model. The agents read from it which parameters the mass depends on."""
    acc, per_chunk = _fit_by_model(5, 3, 3e10, 0.1, seed=2, track_marginals=True)
    chi2s = [c for _, _, c, _ in per_chunk]
    logs = [np.log10(sc * ch.props["stellar.m_star"][ok]) for ch, ok, _, sc in per_chunk]
    metal = [np.full(ok.sum(), ch.params["stellar"]["metallicity"]) for ch, ok, _, _ in per_chunk]
    age = [ch.props["sfh.age_main"][ok] for ch, ok, _, _ in per_chunk]
    chi2, logm = np.concatenate(chi2s), np.concatenate(logs)
    w = np.exp(-(chi2 - chi2.min()) / 2)
    by_value = acc.log_mass_by_value(0)
    for key, values in (("stellar.metallicity", np.concatenate(metal)), ("sfh.age_main", np.concatenate(age))):
        got = dict((v, lm) for v, lm in by_value[key])
        assert sorted(got) == sorted(set(values.tolist()))
        for v, lm in got.items():
            sel = values == v
            assert lm == pytest.approx(np.sum(w[sel] * logm[sel]) / w[sel].sum(), abs=1e-9), (key, v)
    ages = [lm for _, lm in by_value["sfh.age_main"]]
    assert max(ages) - min(ages) > 0.1  # older populations: more mass for the same light
