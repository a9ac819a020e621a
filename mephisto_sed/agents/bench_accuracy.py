"""``mephisto-sed bench accuracy``: are the agent's physical estimates as right as the full grid's?

Injection–recovery on mocks whose truths lie *between* the grid's nodes (continuous draws of the
SFH, attenuation and nebular parameters; metallicity on BC03's own values), observed with
depth-limited noise plus a scatter of ``additionalerror`` × flux (10 %: the calibration and
template systematics CIGALE's ``additionalerror`` stands for, so the fit's error model is the
mocks' own), faint bands turned into 3σ upper limits. The catalogue's errors carry the depth term
only, as a survey's do; the fit adds the rest in quadrature. The
same mocks go through ``fit`` (the agent's search, budgeted) and ``grid`` (every model of the
same universe). Printed per method, on the log estimates (``bayes.stellar.m_star_log``...):
median |Δlog M*|, |Δlog SFR₁₀₀|, |Δ E(B−V)_lines| and the coverage of the ±1σ and ±2σ intervals
of log M* (68 % and 95 % expected), with the coverage of the linear mean ± σ beside. Real COSMOS2020 galaxies
are added when ``../shared/data`` is here: there the reference is the full COSMOS grid's own
``bayes.*`` (no truth is known), and the agent's mass is compared with it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from astropy.table import Table
from tqdm.auto import tqdm

from ..catalog import Catalog
from ..filters import get_filter
from ..gridfit import fit_catalog
from ..mock import BROAD_BANDS
from ..model_grid import ModelGrid
from ..photometry import age_of_universe_myr
from .agentfit import agent_fit_catalog
from .search import Budget
from .space import SearchSpace, default_space

BANDS = BROAD_BANDS
REDSHIFTS = (0.5, 1.0, 1.5, 2.0, 3.0)
DEPTH_AB = {"optical": 26.0, "nir": 24.5, "irac": 24.0}  # 5σ depths, COSMOS-like


def _depth(band: str) -> float:
    lam = get_filter(band).pivot_wavelength
    return DEPTH_AB["optical"] if lam < 1.0e4 else DEPTH_AB["nir"] if lam < 3.0e4 else DEPTH_AB["irac"]


def draw_truth(space: SearchSpace, z: float, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """A model of ``space``'s base modules (``sfhdelayed``, ``bc03``, ``nebular``,
    ``dustatt_modified_starburst``) with continuous parameters between the ladder nodes, inside
    each ladder's range: a realistic population rather than the grid's own nodes."""
    cfg = space.to_config(space.reference_state())
    model = {m: {k: v[0] for k, v in p.items()} for m, p in cfg.params.items()}
    ladders = space.ladders

    def between(module: str, param: str, lo: float, hi: float, log: bool = False) -> float:
        ladder = ladders[module][param]
        lo, hi = max(lo, min(ladder)), min(hi, max(ladder))
        if hi <= lo:
            return float(lo)
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if log else float(rng.uniform(lo, hi))

    sfh = model["sfhdelayed"]
    sfh["tau_main"] = between("sfhdelayed", "tau_main", 100.0, 5000.0, log=True)
    sfh["age_main"] = between("sfhdelayed", "age_main", 100.0, min(8000.0, 0.9 * age_of_universe_myr(z)), log=True)
    bursty = rng.random() < 0.4 and max(ladders["sfhdelayed"]["f_burst"]) > 0
    sfh["f_burst"] = between("sfhdelayed", "f_burst", 0.02, 0.3) if bursty else 0.0
    sfh["age_burst"] = between("sfhdelayed", "age_burst", 5.0, 50.0, log=True)
    sfh["tau_burst"] = between("sfhdelayed", "tau_burst", 5.0, 100.0, log=True)
    metals = [v for v in ladders["bc03"]["metallicity"] if 0.004 <= v <= 0.02] or ladders["bc03"]["metallicity"]
    model["bc03"]["metallicity"] = float(rng.choice(metals))  # BC03's own values: no interpolation
    neb = model["nebular"]
    neb["logU"] = between("nebular", "logU", -3.5, -1.5)
    zgas = ladders["nebular"]["zgas"]
    neb["zgas"] = float(rng.choice(zgas[1:3] if len(zgas) > 3 else zgas))
    model["dustatt_modified_starburst"]["E_BV_lines"] = between("dustatt_modified_starburst", "E_BV_lines", 0.0, 0.6)
    return model


def make_mocks(space: SearchSpace, n: int, seed: int = 0) -> tuple[Catalog, Table]:
    """``n`` mocks spread over :data:`REDSHIFTS`, log M* uniform in [9, 11]."""
    rng = np.random.default_rng(seed)
    grid = ModelGrid(space.to_config(space.reference_state()), BANDS)
    sigma_depth = np.array([10 ** (-0.4 * (_depth(b) - 16.4)) / 5 for b in BANDS])  # mJy (AB 16.4 = 1 mJy)
    rows, fluxes, errs, limits = [], [], [], []
    for k in range(n):
        z = REDSHIFTS[k % len(REDSHIFTS)]
        model = draw_truth(space, z, rng)
        sed = grid.sed(model, z)
        log_m = float(rng.uniform(9.0, 11.0))
        scale = 10**log_m / sed.props["stellar.m_star"]
        true = sed.fluxes * scale
        scatter = np.sqrt(sigma_depth**2 + (space.additionalerror * true) ** 2)
        obs = true + rng.normal(0.0, scatter)
        sigma = sigma_depth
        faint = obs < 2 * sigma
        obs = np.where(faint, 3 * sigma, obs)  # a 3σ upper limit where the band is not detected
        rows.append(
            {
                "id": f"mock{k:03d}",
                "redshift": z,
                "log_mstar": log_m,
                "log_sfr100": float(np.log10(max(sed.props["sfr100Myrs"] * scale, 1e-6))),
                "E_BV_lines": model["dustatt_modified_starburst"]["E_BV_lines"],
                "n_limits": int(faint.sum()),
            }
        )
        fluxes.append(obs)
        errs.append(sigma)
        limits.append(faint)
    cat = Catalog(
        np.array([r["id"] for r in rows]),
        np.array([r["redshift"] for r in rows]),
        list(BANDS),
        np.array(fluxes),
        np.array(errs),
        np.array(limits),
        source_file="mock",
    )
    return cat, Table(rows=rows)


def _scores(t: Table, truth: Table) -> dict[str, float]:
    """Accuracy and coverage in log (``bayes.*_log``, CIGALE's log estimates: an M* posterior is
    close to Gaussian in log, and a credible interval of it is what an astronomer quotes); the
    coverage of the linear mean ± σ beside it."""
    logm, logm_err = (
        np.asarray(t["bayes.stellar.m_star_log"], float),
        np.asarray(t["bayes.stellar.m_star_log_err"], float),
    )
    true_logm = np.asarray(truth["log_mstar"], float)
    m, m_err = np.asarray(t["bayes.stellar.m_star"], float), np.asarray(t["bayes.stellar.m_star_err"], float)
    sfr = np.asarray(t["bayes.sfh.sfr100Myrs_log"], float)
    ebv = np.asarray(t["bayes.attenuation.E_BV_lines"], float)
    return {
        "median_abs_dlogm": float(np.nanmedian(np.abs(logm - true_logm))),
        "median_abs_dlogsfr100": float(np.nanmedian(np.abs(sfr - truth["log_sfr100"]))),
        "median_abs_debv": float(np.nanmedian(np.abs(ebv - truth["E_BV_lines"]))),
        "coverage_68": float(np.mean(np.abs(logm - true_logm) <= logm_err)),
        "coverage_95": float(np.mean(np.abs(logm - true_logm) <= 2 * logm_err)),
        "coverage_68_linear": float(np.mean(np.abs(m - 10**true_logm) <= m_err)),
        "coverage_95_linear": float(np.mean(np.abs(m - 10**true_logm) <= 2 * m_err)),
        "median_log_mstar_err": float(np.nanmedian(logm_err)),
    }


def bench_accuracy(
    n: int = 100,
    max_models: int = 190_000,
    n_real: int = 20,
    seed: int = 0,
    progress: bool = True,
    space: SearchSpace | None = None,
    max_estimate_models: int = Budget.max_estimate_models,
) -> dict[str, Any]:
    """Injection–recovery through ``fit`` and ``grid`` on the same mocks, plus real galaxies.
    ``space``: the universe both search (default: the built-in one, 48 million models)."""
    t0 = time.perf_counter()
    space = space or default_space()
    space.bands = list(BANDS)
    cat, truth = make_mocks(space, n, seed)
    grid_t = fit_catalog(cat, space.to_config(space.reference_state()), with_sed=False, progress=progress).table
    t_grid = time.perf_counter() - t0
    budget = Budget(max_models=max_models, max_estimate_models=max_estimate_models)
    agent = agent_fit_catalog(cat, space, budget=budget, progress=progress)
    agent_t = agent.table
    t_agent = time.perf_counter() - t0 - t_grid
    g, a = _scores(grid_t, truth), _scores(agent_t, truth)
    out: dict[str, Any] = {
        "benchmark": "accuracy",
        "mocks": n,
        "bands": len(BANDS),
        "redshifts": list(REDSHIFTS),
        "additionalerror": space.additionalerror,
        "max_estimate_models": max_estimate_models,
    }
    out.update({f"grid_{k}": v for k, v in g.items()})
    out.update({f"agent_{k}": v for k, v in a.items()})
    out["agent_minus_grid_dlogm"] = a["median_abs_dlogm"] - g["median_abs_dlogm"]
    out["grid_models_per_source"] = int(np.median(grid_t["models_evaluated"]))
    out["agent_models_per_source"] = int(np.median(agent_t["models_evaluated"]))
    out["agent_estimate_models_per_source"] = int(np.median(agent_t["estimate.models"]))
    out["agent_estimate_complete"] = float(np.mean(agent_t["estimate.complete"]))
    out["mock_upper_limits_per_source"] = float(np.mean(truth["n_limits"]))
    out["seconds_grid"], out["seconds_agent"] = t_grid, t_agent
    if n_real > 0:
        out.update(_real_galaxies(n_real, budget, progress))
    out["seconds"] = time.perf_counter() - t0
    return out


def _real_galaxies(n: int, budget: Budget, progress: bool) -> dict[str, Any]:
    """COSMOS2020 galaxies: the agent's log M* against the full COSMOS grid's (the same cached
    reference grid as ``bench search``: it costs ~2 min a source on two cores). The grid is the
    reference only where the agent's answer has the grid's physics: a search that ends in a module
    the grid lacks (an AGN, another attenuation law) with a better χ² is counted apart."""
    from .bench_search import DEFAULT_CATALOG, _cache_path, benchmark_sources, reference_chi2
    from .policy import ExpertPolicy
    from .search import search

    if not DEFAULT_CATALOG.is_file():
        return {"real": "skipped: ../shared/data/cosmos2020_specz is absent"}
    space, sources, _, catalog, ini = benchmark_sources(None, None, n, 0)
    ref = reference_chi2(space, sources, _cache_path(ini, catalog), progress)
    grid_modules = set(space.reference_state().modules)
    same: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    for src in tqdm(sources, desc="COSMOS: agent", unit="src", disable=not progress):
        res = search(src, space, ExpertPolicy(), budget)
        est = {**res.best.execution.row, **res.estimate}
        r = ref[src.id]
        d = est["bayes.stellar.m_star_log"] - r["m_star_log"]
        record = {
            "id": src.id,
            "dlogm": float(d),
            "inside_grid_1sigma": bool(abs(d) <= r["m_star_log_err"]),
            "grid_inside_agent_1sigma": bool(abs(d) <= est["bayes.stellar.m_star_log_err"]),
            "dchi2": float(res.best.chi2 - r["chi2"]),
            "modules": sorted(set(res.best.state.modules) - grid_modules),
            "estimate_complete": bool(est.get("estimate.complete", False)),
        }
        (other if set(res.best.state.modules) != grid_modules else same).append(record)
    return {
        "real_galaxies": n,
        "real_same_physics": len(same),
        "real_median_abs_dlogm_vs_full_grid": float(np.median([abs(r["dlogm"]) for r in same])) if same else None,
        "real_frac_inside_full_grid_1sigma": float(np.mean([r["inside_grid_1sigma"] for r in same])) if same else None,
        "real_frac_full_grid_inside_agent_1sigma": (
            float(np.mean([r["grid_inside_agent_1sigma"] for r in same])) if same else None
        ),
        # every galaxy, other physics included (there the grid is not the reference)
        "real_median_abs_dlogm_all": float(np.median([abs(r["dlogm"]) for r in same + other])),
        "real_other_physics": other,
        "real_per_source": same,
    }
