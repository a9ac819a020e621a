"""Photometric redshifts in grid fits: injected mocks without their redshift come back at it, P(z)
is a distribution whose summary photo-z catalogues use, sources with a redshift are untouched, and
the CLI takes CIGALE's -1."""

from __future__ import annotations

import numpy as np
import pytest

from mephisto_sed.catalog import read_catalog
from mephisto_sed.config import Configuration
from mephisto_sed.gridfit import fit_catalog, fixed_redshift
from mephisto_sed.mock import make_mock_catalog
from mephisto_sed.photoz import DEFAULT_GRID, pz_summary, redshift_grid

from .conftest import BROAD_BANDS

MODS = {
    "sfhdelayed": {
        "tau_main": [100.0, 1000.0, 5000.0],
        "age_main": [300.0, 1000.0, 3000.0],
        "f_burst": [0.0],
        "age_burst": [20.0],
        "tau_burst": [50.0],
    },
    "bc03": {"imf": [1], "metallicity": [0.02]},
    "nebular": {"logU": [-2.0]},
    "dustatt_modified_starburst": {"E_BV_lines": [0.0, 0.2, 0.5]},
    "redshifting": {"redshift": [None]},
}


@pytest.fixture(scope="module")
def mocks():
    cfg = Configuration.from_modules(MODS, additionalerror=0.05)
    cat, truth = make_mock_catalog(cfg, list(BROAD_BANDS), 16, seed=1, z_range=(0.2, 4.0))
    return cfg, cat, truth


def test_mocks_without_their_redshift_come_back_at_it(mocks):
    cfg, cat, truth = mocks
    cat = cat.select(np.arange(len(cat)))  # a copy: the fixture is shared
    z_true = np.asarray(truth["redshift"], float)
    cat.redshift[:8] = np.nan  # half photo-z, half at their spectroscopic redshift
    res = fit_catalog(cat, cfg, with_sed=False, progress=False)
    t = res.table
    photo = t[:8]
    dz = np.abs(np.asarray(photo["best.universe.redshift"]) - z_true[:8]) / (1 + z_true[:8])
    assert np.median(dz) < 0.02 and np.all(dz < 0.1), dz
    bayes = np.asarray(photo["bayes.universe.redshift"])
    err = np.asarray(photo["bayes.universe.redshift_err"])
    assert np.all(np.abs(bayes - z_true[:8]) / (1 + z_true[:8]) < 0.1) and np.all(err < 0.3)
    lo, hi = np.asarray(photo["photoz.z_lo68"]), np.asarray(photo["photoz.z_hi68"])
    assert np.all(lo <= photo["photoz.z_peak"]) and np.all(photo["photoz.z_peak"] <= hi)
    # P(z) per source: on the grid, normalised, peaked where the column says
    for fit in res.fits[:8]:
        z, p = fit.pz
        assert np.allclose(z, DEFAULT_GRID) and p.sum() == pytest.approx(1.0)
        assert z[np.argmax(p)] == pytest.approx(fit.row["photoz.z_peak"])
        assert fit.model_redshift == pytest.approx(fit.row["best.universe.redshift"])
    # the others were fitted at their own redshift, as if alone
    alone = fit_catalog(cat.select(slice(8, 16)), cfg, with_sed=False, progress=False).table
    assert np.allclose(t["best.chi_square"][8:], alone["best.chi_square"])
    assert np.all(np.isnan(np.asarray(t["photoz.z_peak"][8:], float)))
    assert all(f.pz is None for f in res.fits[8:])


def test_pz_summary_flags_two_peaks_and_brackets_one():
    z = DEFAULT_GRID
    one = np.exp(-0.5 * ((z - 2.0) / 0.05) ** 2)
    s = pz_summary(z, one)
    assert s["z_peak"] == pytest.approx(2.0, abs=0.03) and not s["multimodal"]
    assert s["z_lo68"] == pytest.approx(1.95, abs=0.03) and s["z_hi68"] == pytest.approx(2.05, abs=0.03)
    two = one + 0.5 * np.exp(-0.5 * ((z - 0.4) / 0.03) ** 2)  # a low-z interloper solution
    assert pz_summary(z, two)["multimodal"]
    close = one + 0.5 * np.exp(-0.5 * ((z - 2.15) / 0.03) ** 2)  # a shoulder, not another solution
    assert not pz_summary(z, close)["multimodal"]
    assert np.isnan(pz_summary(z, np.zeros_like(z))["z_peak"])


def test_the_ini_decides_fixed_or_free_redshifts():
    listed = Configuration.from_modules({**MODS, "redshifting": {"redshift": [0.5, 1.0, 1.5]}})
    assert fixed_redshift(listed) is None and list(redshift_grid(listed)) == [0.5, 1.0, 1.5]
    one = Configuration.from_modules({**MODS, "redshifting": {"redshift": [1.2]}})
    assert fixed_redshift(one) == 1.2
    assert np.array_equal(redshift_grid(Configuration.from_modules(MODS)), DEFAULT_GRID)


def test_catalogues_keep_sources_without_a_redshift_only_for_photoz(tmp_path):
    path = tmp_path / "cat.txt"
    path.write_text(
        "# id redshift cfht.megacam.u cfht.megacam.u_err subaru.suprime.r subaru.suprime.r_err\n"
        "a -1 0.01 0.001 0.02 0.002\nb nan 0.01 0.001 0.02 0.002\nc 1.5 0.01 0.001 0.02 0.002\n"
    )
    strict = read_catalog(path)
    assert list(strict.ids) == ["c"] and {r.source for r in strict.rejected} == {"a", "b"}
    assert "photometric" in strict.rejected[1].reason
    free = read_catalog(path, photoz=True)
    assert list(free.ids) == ["a", "b", "c"] and np.isnan(free.redshift[:2]).all() and free.redshift[2] == 1.5


def test_grid_on_the_command_line_writes_pz_files_and_plots(tmp_path, mocks):
    from mephisto_sed.cli import main
    from mephisto_sed.config import write_pcigale_ini

    cfg, cat, truth = mocks
    sub = cat.select(np.arange(3))  # a copy
    sub.redshift[:2] = -1.0  # CIGALE's "no redshift"
    sub.write_cigale(tmp_path / "cat.txt")
    listed = Configuration.from_modules(
        {**MODS, "redshifting": {"redshift": [round(z, 2) for z in np.arange(0.1, 4.51, 0.05)]}}, additionalerror=0.05
    )
    write_pcigale_ini(listed, tmp_path / "pcigale.ini")
    out = tmp_path / "out"
    assert main(["grid", str(tmp_path / "cat.txt"), "--config", str(tmp_path / "pcigale.ini"), "--out", str(out)]) == 0
    from astropy.table import Table

    t = Table.read(out / "results.csv")
    assert np.isfinite(t["best.universe.redshift"][:2]).all() and np.isfinite(t["photoz.z_peak"][:2]).all()
    for i in sub.ids[:2]:
        pz = Table.read(out / f"{i}_pz.csv")
        assert len(pz) == 89 and pz["pz"].sum() == pytest.approx(1.0) and (out / f"{i}.png").exists()
    assert not (out / f"{sub.ids[2]}_pz.csv").exists()


def test_the_agents_find_the_redshift_of_a_source_without_one():
    """A first look over every redshift, then the tree search at the peak of P(z)."""
    from mephisto_sed.agents.agentfit import agent_fit_catalog
    from mephisto_sed.agents.search import Budget

    from .test_agents import BASE, _space

    cfg = Configuration.from_modules(BASE, additionalerror=0.05)
    cat, truth = make_mock_catalog(cfg, list(BROAD_BANDS), 2, seed=4, z_range=(0.5, 3.0))
    cat.redshift[0] = np.nan
    res = agent_fit_catalog(cat, _space(), budget=Budget(max_models=30_000), progress=False)
    t = res.table
    z_true = float(truth["redshift"][0])
    assert np.isnan(t["redshift"][0]) and t["redshift"][1] == pytest.approx(truth["redshift"][1])
    z = float(t["best.universe.redshift"][0])
    assert abs(z - z_true) / (1 + z_true) < 0.05, (z, z_true)
    assert t["photoz.z_lo68"][0] <= t["photoz.z_peak"][0] <= t["photoz.z_hi68"][0]
    assert t["models_evaluated"][0] > t["photoz.first_look_models"][0] > 0
    assert res.searches[0].source.redshift == pytest.approx(z)  # the search ran at the photometric redshift
    assert t["best.reduced_chi_square"][0] < 3


def test_a_line_list_without_ly_alpha_leaves_it_out_and_nothing_else():
    from mephisto_sed.model_grid import ModelGrid

    bands = ["subaru.suprime.IB427", "subaru.suprime.r", "paranal.vircam.Ks"]
    base = {**MODS, "redshifting": {"redshift": [2.5]}}
    seds = {}
    for lines in ("", "Ly-alpha & H-alpha", "H-alpha & H-beta"):
        cfg = Configuration.from_modules({**base, "nebular": {**base["nebular"], "line_list": lines}})
        model = {m: {k: v[0] for k, v in cfg.params[m].items()} for m in cfg.modules}
        seds[lines] = ModelGrid(cfg, bands).sed(model, 2.5).fluxes
    assert np.array_equal(seds[""], seds["Ly-alpha & H-alpha"])  # empty or with Lyα: as before
    lya_free = seds["H-alpha & H-beta"]
    assert lya_free[0] < 0.9 * seds[""][0]  # IB427 holds Lyα at z = 2.5
    assert np.allclose(lya_free[1:], seds[""][1:])


def test_an_anomaly_at_a_wrong_catalogue_redshift_names_the_redshift_that_fits():
    """Issue 16 item 7: a galaxy at z = 0.8 given as z = 3 is unexplained there; before it is called
    an anomaly of physics the search tries every other redshift and names the one that fits. A
    source explained at its redshift is not tried elsewhere."""
    from mephisto_sed.agents.agentfit import result_row
    from mephisto_sed.agents.execute import Source
    from mephisto_sed.agents.policy import ExpertPolicy
    from mephisto_sed.agents.search import Budget, search

    from .test_agents import BASE, _space

    cfg = Configuration.from_modules(BASE, additionalerror=0.05)
    cat, truth = make_mock_catalog(cfg, list(BROAD_BANDS), 1, seed=2, z_range=(0.8, 0.8))
    right = Source.from_catalog(cat, 0, list(BROAD_BANDS))
    wrong = Source(right.id, 3.0, right.bands, right.flux, right.err, right.upper_limit)
    res = search(wrong, _space(), ExpertPolicy(), Budget(max_models=20_000))
    assert res.anomaly and "another redshift fits better" in res.anomaly_reason, res.anomaly_reason
    row = result_row(res)
    assert abs(row["other_redshift.z"] - 0.8) / 1.8 < 0.1 and row["other_redshift.better"]
    assert row["other_redshift.chi2"] < res.best.chi2 - 9
    assert row["models_evaluated"] == res.models_evaluated + row["other_redshift.models"]
    assert row["redshift"] == 3.0  # the catalogue's redshift stays the one the search ran at
    fine = search(right, _space(), ExpertPolicy(), Budget(max_models=20_000))
    assert not fine.anomaly and not any(k.startswith("other_redshift.") for k in result_row(fine))


def test_photoz_tries_ly_alpha_at_case_b_and_without_and_keeps_the_one_that_fits():
    """Lyα emitters and continuum galaxies at z ≈ 2.5–3 seen in medium bands that hold the line:
    each comes back at its redshift with the Lyα choice it was made with."""
    from mephisto_sed.photoz import lya_variants

    bands = [*BROAD_BANDS, "subaru.suprime.IB427", "subaru.suprime.IB464", "subaru.suprime.IB484"]
    base = {**MODS, "nebular": {"logU": [-2.0], "zgas": [0.008]}}
    cats, truth_lya = [], []
    for lya, cfg in lya_variants(Configuration.from_modules(base, additionalerror=0.05)):
        # young and dust-free, where the line is strong: behind E(B-V) = 0.5 Case-B Lyα is
        # attenuated to nothing and the two choices are the same model
        young = cfg.with_values("sfhdelayed", age_main=[300.0], tau_main=[1000.0])
        young = young.with_values("dustatt_modified_starburst", E_BV_lines=[0.0])
        cat, truth = make_mock_catalog(young, bands, 4, seed=3, z_range=(2.5, 3.0), snr=30.0)
        cats.append((cat, truth))
        truth_lya += [lya] * len(cat)
    assert truth_lya == [1.0] * 4 + [0.0] * 4
    fit_cfg = Configuration.from_modules(base, additionalerror=0.05)
    for (cat, truth), lya in zip(cats, (1.0, 0.0)):
        free = cat.select(np.arange(len(cat)))
        free.redshift[:] = np.nan
        res = fit_catalog(free, fit_cfg, with_sed=True, progress=False)
        t = res.table
        z_true = np.asarray(truth["redshift"], float)
        dz = np.abs(np.asarray(t["best.universe.redshift"], float) - z_true) / (1 + z_true)
        assert np.all(dz < 0.05), (lya, dz)
        assert np.all(np.asarray(t["best.photoz.lya_case_b"], float) == lya), (lya, t["best.photoz.lya_case_b"])
        p = np.asarray(t["bayes.photoz.lya_case_b"], float)
        assert np.all(p > 0.5) if lya else np.all(p < 0.5), p
        # the best SED is the chosen variant's: its fluxes are the best model's
        for fit in res.fits:
            assert np.allclose(fit.sed.fluxes * fit.best.scale, fit.best.fluxes, rtol=1e-6)


def test_the_agents_first_look_over_redshift_tries_ly_alpha_both_ways():
    """The agents' photo-z first look fits Lyα at Case B and without, as the grid does: Lyα
    emitters and continuum galaxies come back at their redshift, each with its choice."""
    from dataclasses import replace

    from mephisto_sed.agents.execute import Source
    from mephisto_sed.agents.photoz_search import first_look_over_redshift
    from mephisto_sed.agents.space import SearchSpace
    from mephisto_sed.photoz import lya_variants

    bands = [*BROAD_BANDS, "subaru.suprime.IB427", "subaru.suprime.IB464", "subaru.suprime.IB484"]
    base = {**MODS, "nebular": {"logU": [-2.0], "zgas": [0.008]}}
    space = SearchSpace.from_config(Configuration.from_modules(base, bands=bands, additionalerror=0.05), optional={})
    for lya, cfg in lya_variants(Configuration.from_modules(base, additionalerror=0.05)):
        young = cfg.with_values("sfhdelayed", age_main=[300.0], tau_main=[1000.0])
        young = young.with_values("dustatt_modified_starburst", E_BV_lines=[0.0])
        cat, truth = make_mock_catalog(young, bands, 2, seed=3, z_range=(2.5, 3.0), snr=30.0)
        for i in range(len(cat)):
            src = replace(Source.from_catalog(cat, i, bands), redshift=float("nan"))
            look = first_look_over_redshift(space, src)
            z_true = float(truth["redshift"][i])
            assert abs(look.best_z - z_true) / (1 + z_true) < 0.05, (lya, look.best_z, z_true)
            assert look.summary["photoz.lya_case_b"] == lya, (lya, z_true)


def test_without_nebular_emission_there_is_one_photoz_variant():
    from mephisto_sed.photoz import lya_variants

    no_neb = {m: v for m, v in MODS.items() if m != "nebular"}
    assert [lya for lya, _ in lya_variants(Configuration.from_modules(no_neb))] == [None]
    listed = {**MODS, "nebular": {"logU": [-2.0], "line_list": "H-alpha & Ly-alpha & H-beta"}}
    (one, with_lya), (zero, without) = lya_variants(Configuration.from_modules(listed))
    assert (one, zero) == (1.0, 0.0)
    assert with_lya.raw_module_params["nebular"]["line_list"] == "Ly-alpha & H-alpha & H-beta"
    assert without.raw_module_params["nebular"]["line_list"] == "H-alpha & H-beta"


def test_bench_photoz_reports_the_grid_and_the_agents_first_look(cosmos_dir):
    """`mephisto-sed bench photoz` on a few COSMOS spec-z galaxies: the photo-z community's measures
    for the grid and, asked, for the agents' first look, each against the spectroscopic z."""
    from mephisto_sed.bench_photoz import bench_photoz

    cat = cosmos_dir / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt"
    out = bench_photoz(cat, n=2, lrd=False, progress=False, n_agents=1, full_grid_outliers=True)
    assert out["n"] == 2 and out["models_per_source"] > out["models_per_source_fixed_z"] > 0
    assert 0 <= out["where_models_fit_at_zspec"]["fraction_of_sample"] <= 1
    full = out["outliers_full_grid_at_zspec"]
    assert full["n"] == round(2 * out["outlier_fraction"]) and full["reference_models"] > 1e7
    assert 0 <= full["preferring_their_photoz_by_dchi2_9"] <= 1
    for measures in (out, out["bayes"], out["agents_first_look"]):
        assert measures["sigma_nmad"] >= 0 and 0 <= measures["outlier_fraction"] <= 1
        assert abs(measures["bias"]) < 1
    agents = out["agents_first_look"]
    assert agents["n"] == 1 and agents["models_per_source"] > 0 and 0 <= agents["frac_best_with_lya"] <= 1


def test_photoz_measures_where_the_models_fit_at_the_spectroscopic_z():
    """The grid's photo-z apart from galaxies no model explains at their spectroscopic z, and the
    share of outliers the data prefer elsewhere by Δχ² ≥ 9 (worked case)."""
    from astropy.table import Table

    from mephisto_sed.bench_photoz import where_models_fit

    z_spec = np.array([2.6, 2.7, 2.8, 2.9])
    free = Table({"best.universe.redshift": [2.61, 0.3, 0.25, 2.9], "best.chi_square": [20.0, 30.0, 40.0, 10.0]})
    # the second galaxy fits well at z_spec (an outlier the likelihood is to blame for, Δχ² 2), the
    # third no model at z_spec explains (χ²_red 12, Δχ² 200 for its z = 0.25)
    fixed = Table({"best.reduced_chi_square": [1.0, 1.2, 12.0, 0.5], "best.chi_square": [21.0, 32.0, 240.0, 10.0]})
    out = where_models_fit(free, fixed, z_spec)
    assert out["fraction_of_sample"] == 0.75 and out["n"] == 3
    assert out["outlier_fraction"] == pytest.approx(1 / 3)
    assert out["outliers_preferring_their_photoz_by_dchi2_9"] == 0.5
