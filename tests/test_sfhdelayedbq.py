"""sfhdelayedbq, the SED module added by one file (mephisto_sed/sed_modules/sfhdelayedbq.py):
its physics against analytic cases, and its use by the grid fit and the agents unchanged."""

import numpy as np
import pytest

from mephisto_sed.catalog import read_catalog
from mephisto_sed.cli import example_catalog_path
from mephisto_sed.config import ConfigError, Configuration
from mephisto_sed.gridfit import fit_catalog
from mephisto_sed.physics.grids import age_bin_edges, store
from mephisto_sed.physics.sfh import sfhdelayed
from mephisto_sed.sed_modules import MODULES, SFH_MODELS
from mephisto_sed.sed_modules.sfhdelayedbq import mass

EDGES = age_bin_edges(store().ssp_ages)


def test_histories_form_one_solar_mass_and_follow_the_episode():
    tau, age = np.array([500.0, 2000.0, 3000.0]), np.array([3000.0, 5000.0, 1000.0])
    for r in (0.0, 0.3, 1.0, 5.0):
        bq = np.array([200.0, 1000.0, 50.0])
        m, info = mass(tau, age, bq, np.full(3, r), EDGES)
        assert m.sum(axis=1) == pytest.approx(1.0, rel=1e-9)
        assert np.all(m >= -1e-15)
        t_bq = age - bq
        before = t_bq * np.exp(-t_bq / tau)  # SFR just before the episode, unnormalised
        total = tau**2 - tau * (t_bq + tau) * np.exp(-t_bq / tau) + r * before * bq
        assert info["sfr"] == pytest.approx(r * before / total / 1e6, rel=1e-9)  # the ratio r_sfr
        assert info["sfr10Myrs"] == pytest.approx(info["sfr"], rel=1e-9)  # constant over the episode
    quenched, info = mass(tau, age, np.array([200.0, 1000.0, 50.0]), np.zeros(3), EDGES)
    young = EDGES[1:] <= 50.0  # bins entirely inside every episode
    assert np.all(quenched[:, young] == 0) and np.all(info["sfr"] == 0) and np.all(info["sfr100Myrs"][:2] == 0)


def test_a_one_myr_episode_at_the_same_rate_is_the_plain_delayed_history():
    tau, age = np.array([300.0, 3000.0]), np.array([2000.0, 8000.0])
    m, info = mass(tau, age, np.ones(2), np.ones(2), EDGES)
    ref, ref_info = sfhdelayed(tau, age, np.full(2, 50.0), np.full(2, 20.0), np.zeros(2), EDGES)
    assert np.abs(m - ref).max() < 1e-5 * ref.max()
    assert info["sfr100Myrs"] == pytest.approx(ref_info["sfr100Myrs"], rel=1e-3)


def test_it_is_a_registered_sfh_and_impossible_episodes_are_refused():
    assert MODULES["sfhdelayedbq"].category == "sfh" and SFH_MODELS["sfhdelayedbq"].age == "age_main"
    only_invalid = {"sfhdelayedbq": {"age_main": [500.0], "age_bq": [800.0]}, "bc03": {}, "redshifting": {}}
    from mephisto_sed.model_grid import ModelGrid

    with pytest.raises(ConfigError, match="sfhdelayedbq: no combination of its values is a valid history"):
        ModelGrid(Configuration.from_modules(only_invalid), ["sloan.sdss.r", "sloan.sdss.i", "sloan.sdss.z"])


BQ = {
    "sfhdelayedbq": {
        "tau_main": [300.0, 1000.0, 3000.0],
        "age_main": [1000.0, 2000.0, 4000.0],
        "age_bq": [50.0, 300.0],
        "r_sfr": [0.0, 0.3, 1.0, 3.0],
    },
    "bc03": {"metallicity": [0.02]},
    "nebular": {"logU": [-2.0]},
    "dustatt_modified_starburst": {"E_BV_lines": [0.0, 0.2, 0.5], "E_BV_factor": 0.44},
    "redshifting": {},
}


def test_the_grid_fit_and_the_agents_use_it_without_knowing_it():
    cat = read_catalog(example_catalog_path()).select(slice(0, 3))
    cfg = Configuration.from_modules(BQ)
    t = fit_catalog(cat, cfg, progress=False, with_sed=False).table
    assert np.all(np.isfinite(t["best.reduced_chi_square"]))
    assert np.all(np.isfinite(t["bayes.sfh.r_sfr"])) and np.all(t["bayes.stellar.m_star"] > 0)
    from mephisto_sed.agents.agentfit import agent_fit_catalog
    from mephisto_sed.agents.search import Budget
    from mephisto_sed.agents.space import SearchSpace

    space = SearchSpace.from_config(cfg, optional={})
    space.bands = list(cat.bands)
    res = agent_fit_catalog(cat.select(slice(0, 1)), space, budget=Budget(max_models=3_000), progress=False)
    row = res.table[0]
    assert row["steps"] > 1 and np.isfinite(row["bayes.sfh.age_bq"])
    assert any(s["rule"] == "scan" and "sfhdelayedbq" in s["action"] for s in res.searches[0].trace)
