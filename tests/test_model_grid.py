"""The engine's fast path (matrices over the whole grid) against its slow path (one full
spectrum), energy balance, SFH normalisation and the AGN fraction definition."""

import numpy as np
import pytest

from mephisto_sed.config import Configuration
from mephisto_sed.model_grid import ModelGrid, model_from_params
from mephisto_sed.physics import sfh
from mephisto_sed.physics.grids import age_bin_edges, store

from .conftest import BROAD_BANDS

BANDS = BROAD_BANDS + ["jwst.miri.F770W", "spitzer.mips.24"]


def _config(**extra):
    mods = {
        "sfhdelayed": {
            "tau_main": [200.0, 2000.0],
            "age_main": [300.0, 1500.0],
            "f_burst": [0.0, 0.1],
            "tau_burst": 20.0,
            "age_burst": 30.0,
        },
        "bc03": {"imf": 1, "metallicity": [0.004, 0.02], "separation_age": 10},
        "nebular": {"logU": [-3.3, -2.1], "zgas": [0.0012, 0.02], "f_esc": [0.0, 0.1, 0.9], "f_dust": [0.0, 0.2]},
        "dustatt_modified_starburst": {
            "E_BV_lines": [0.05, 0.6],
            "E_BV_factor": 0.44,
            "uv_bump_amplitude": [0.0, 2.0],
            "powerlaw_slope": [-0.3],
            "Ext_law_emission_lines": [1, 3],
        },
        "dl2014": {"qpah": [1.12, 3.9], "umin": [0.5, 7.0], "alpha": 2.0, "gamma": [0.02, 0.3]},
        "redshifting": {"redshift": ""},
    }
    mods.update(extra)
    return Configuration.from_modules(mods)


def _check_fast_equals_slow(cfg, z, n_checks=12, seed=0):
    grid = ModelGrid(cfg, BANDS)
    rng = np.random.default_rng(seed)
    chunks = list(grid.iter_chunks(z))
    assert sum(len(c) for c in chunks) == grid.n_models(z)
    for ci in rng.choice(len(chunks), size=min(n_checks, len(chunks)), replace=False):
        ch = chunks[ci]
        k = int(rng.integers(len(ch)))
        from mephisto_sed.likelihood import _model_params

        model = model_from_params(cfg, _model_params(ch, k))
        sed = grid.sed(model, z)
        np.testing.assert_allclose(ch.fluxes[k], sed.fluxes, rtol=1e-6, atol=1e-30)
        assert ch.props["dust.luminosity"][k] == pytest.approx(sed.props["dust.luminosity"], rel=1e-6)
        assert ch.props["stellar.m_star"][k] == pytest.approx(sed.props["stellar.m_star"], rel=1e-9)


@pytest.mark.parametrize("z", [0.05, 1.3, 6.8])
def test_fast_path_equals_full_spectrum(z):
    _check_fast_equals_slow(_config(), z)


def test_fast_path_equals_full_spectrum_with_agn_and_calzleit():
    base = _config().params
    mods = {
        "sfhdelayed": base["sfhdelayed"],
        "bc03": base["bc03"],
        "nebular": base["nebular"],
        "dustatt_calzleit": {"E_BVs_young": [0.1, 0.5], "E_BVs_old_factor": [0.44, 1.0]},
        "dl2014": base["dl2014"],
        "agn": {"fracAGN": [0.1, 0.6], "EBV": [0.0, 0.5], "covering_factor": [0.3, 0.7], "temperature": 150.0},
        "redshifting": {"redshift": ""},
    }
    _check_fast_equals_slow(Configuration.from_modules(mods), 2.1)
    mods["agn"]["lambda_fracAGN"] = "0.1/1.0"  # fraction of the rest 0.1-1 µm luminosity
    _check_fast_equals_slow(Configuration.from_modules(mods), 2.1, seed=3)


def test_energy_balance():
    """Dust emission equals the luminosity removed by attenuation within 1%."""
    cfg = _config(nebular={"logU": -2.0, "zgas": 0.008, "f_esc": 0.0, "f_dust": 0.0})
    grid = ModelGrid(cfg, BANDS)
    w = store().dwave
    for model in list(cfg.iter_models())[::7]:
        sed = grid.sed(model, 0.5)
        c = sed.components
        absorbed = np.sum((c["stellar.young_intrinsic"] - c["stellar.young"]) * w)
        absorbed += np.sum((c["stellar.old_intrinsic"] - c["stellar.old"]) * w)
        absorbed += np.sum((c["nebular.continuum_intrinsic"] - c["nebular.continuum"]) * w)
        absorbed += sum(sed.lines_intrinsic.values()) - sum(sed.lines.values())
        emitted = np.sum(c["dust"] * w)
        assert absorbed > 0
        assert emitted == pytest.approx(absorbed, rel=0.01)


def test_agn_fraction_is_the_dust_luminosity_fraction():
    mods = {
        "sfhdelayed": {"tau_main": 500.0, "age_main": 1000.0},
        "bc03": {"imf": 1, "metallicity": 0.02},
        "dustatt_modified_starburst": {"E_BV_lines": 0.3},
        "dl2014": {},
        "agn": {"fracAGN": 0.4, "EBV": 0.3},
        "redshifting": {"redshift": 1.0},
    }
    cfg = Configuration.from_modules(mods)
    sed = ModelGrid(cfg, BANDS).sed(cfg.single(), 1.0)
    w = store().dwave
    agn_dust = np.sum((sed.components["agn.torus"] + sed.components["agn.polar"]) * w)
    gal_dust = np.sum(sed.components["dust"] * w)
    assert agn_dust / (agn_dust + gal_dust) == pytest.approx(0.4, rel=1e-3)


def test_sfh_mass_normalised_and_sfr_analytic():
    edges = age_bin_edges(store().ssp_ages)
    tau, age = np.array([300.0, 3000.0]), np.array([1000.0, 5000.0])
    mass, info = sfh.sfhdelayed(tau, age, np.array([50.0, 50.0]), np.array([20.0, 20.0]), np.array([0.0, 0.2]), edges)
    np.testing.assert_allclose(mass.sum(axis=1), 1.0, rtol=1e-10)
    # analytic instantaneous SFR of a delayed SFH normalised to 1 M☉: t e^{-t/τ} / ∫_0^T t e^{-t/τ} dt
    t, T = age[0], age[0]
    norm = tau[0] ** 2 - tau[0] * (T + tau[0]) * np.exp(-T / tau[0])
    assert info["sfr"][0] == pytest.approx(t * np.exp(-t / tau[0]) / norm / 1e6, rel=1e-10)
    # the burst holds f_burst of the mass, all younger than age_burst
    young = edges[:-1] < 20.0  # bins that start within the burst age
    assert mass[1, young].sum() >= 0.2


def test_models_older_than_the_universe_are_excluded():
    cfg = Configuration.from_modules(
        {
            "sfhdelayed": {"tau_main": 500.0, "age_main": [500.0, 5000.0]},
            "bc03": {"imf": 1},
            "redshifting": {"redshift": ""},
        }
    )
    grid = ModelGrid(cfg, BANDS)
    assert grid.n_models(0.5) == 2
    assert grid.n_models(3.0) == 1  # the Universe is ~2.2 Gyr old at z = 3
    with pytest.raises(ValueError, match="redshift"):
        next(grid.iter_chunks(float("nan")))


def test_chunking_bounds_memory_and_changes_nothing(monkeypatch):
    import mephisto_sed.model_grid as model_grid

    cfg = _config()
    z = 1.3
    ref = ModelGrid(cfg, BANDS)
    ref_flux = np.concatenate([c.fluxes for c in ref.iter_chunks(z)])
    monkeypatch.setattr(model_grid, "SFH_CHUNK", 3)
    monkeypatch.setattr(model_grid, "SFH_CACHE_LIMIT", 0)  # recompute SFHs per slice, keep nothing
    small = ModelGrid(cfg, BANDS)
    assert small._sfh_cache is None
    chunks = list(small.iter_chunks(z))
    assert max(len(c) for c in chunks) <= 3
    flux = np.concatenate([c.fluxes for c in chunks])
    # same models, in another order: compare sorted rows
    order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(order(flux), order(ref_flux), rtol=1e-10)
