"""``bench transfer``: knowledge learned on one population, tested on every population."""

import numpy as np
import pytest

from mephisto_sed.agents.bench_transfer import TransferSet, bench_transfer, pair_scores, read_uvista
from mephisto_sed.agents.execute import Source
from mephisto_sed.agents.space import SearchSpace
from mephisto_sed.config import Configuration
from mephisto_sed.mock import make_mock_catalog

from .conftest import BROAD_BANDS

UNIVERSE = {
    "sfhdelayed": {
        "tau_main": [100.0, 300.0, 1000.0, 3000.0],
        "age_main": [200.0, 500.0, 1000.0, 2000.0, 3000.0],
        "f_burst": 0.0,
    },
    "bc03": {"imf": 1, "metallicity": [0.004, 0.02]},
    "nebular": {"logU": [-3.0, -2.0], "zgas": 0.008},
    "dustatt_modified_starburst": {"E_BV_lines": [0.0, 0.1, 0.2, 0.4, 0.7], "E_BV_factor": 0.44},
    "dl2014": {"qpah": 2.5, "umin": 1.0, "alpha": 2.0, "gamma": 0.1},
    "redshifting": {"redshift": ""},
}


def test_pair_scores_count_models_and_galaxies_within_tolerance():
    """Medians over galaxies (a search that never got there counts all its models), the reduction
    with knowledge, and the fraction within tolerance in each arm."""
    without = [
        {"models_to_tolerance": 1000, "models_to_dchi2_2": 2000, "models_evaluated": 5000},
        {"models_to_tolerance": None, "models_to_dchi2_2": None, "models_evaluated": 9000},
        {"models_to_tolerance": 3000, "models_to_dchi2_2": 3000, "models_evaluated": 4000},
    ]
    with_kb = [
        {"models_to_tolerance": 500, "models_to_dchi2_2": 800, "models_evaluated": 5000},
        {"models_to_tolerance": 1500, "models_to_dchi2_2": None, "models_evaluated": 6000},
        {"models_to_tolerance": 2000, "models_to_dchi2_2": 2000, "models_evaluated": 4000},
    ]
    s = pair_scores(without, with_kb)
    assert s["median_models_without"] == 3000 and s["median_models_with"] == 1500
    assert s["reduction"] == pytest.approx(0.5)
    assert s["within_without"] == pytest.approx(2 / 3) and s["within_with"] == 1.0
    assert s["median_models_without_dchi2_2"] == 3000 and s["median_models_with_dchi2_2"] == 2000
    assert s["within_with_dchi2_2"] == pytest.approx(2 / 3)


def test_bagpipes_ultravista_catalogue_is_read_in_mjy_with_its_own_filter_curves():
    from mephisto_sed.filters import get_filter

    cat = read_uvista()
    assert len(cat) == 10 and len(cat.bands) == 12
    assert cat.flux[0, 0] == pytest.approx(4.78415e-31 * 1e26)  # erg/s/cm²/Hz -> mJy
    assert np.isnan(cat.flux[2, 5])  # -99: not observed
    assert 0.3 < np.nanmedian(cat.redshift) < 3
    ks = get_filter("bagpipes.uvista.K")
    assert 2.0e4 < ks.pivot_wavelength < 2.3e4


def _set(name: str, z: tuple[float, float], seed: int) -> TransferSet:
    space = SearchSpace.from_config(Configuration.from_modules(UNIVERSE, additionalerror=0.1), optional={})
    space.bands = list(BROAD_BANDS)
    cat, _ = make_mock_catalog(
        Configuration.from_modules(UNIVERSE, additionalerror=0.1), BROAD_BANDS, 4, seed=seed, z_range=z
    )
    sources = [Source.from_catalog(cat, i, BROAD_BANDS) for i in range(len(cat))]
    return TransferSet(name, space, sources[:2], sources[2:], None)


def test_every_pair_of_sets_is_scored_against_the_full_grid():
    """Two populations (low and high redshift): four pairs, each with both arms on the same test
    galaxies, and the arm without knowledge shared by every training set."""
    sets = [_set("low_z", (0.3, 0.6), 1), _set("high_z", (2.0, 2.5), 2)]
    out = bench_transfer(sets, max_models=3_000, progress=False)
    assert [(p["train"], p["test"]) for p in out["pairs"]] == [
        ("low_z", "low_z"),
        ("low_z", "high_z"),
        ("high_z", "low_z"),
        ("high_z", "high_z"),
    ]
    for p in out["pairs"]:
        assert {"train", "test", "reduction", "within_without", "within_with"} <= set(p)
        assert p["same_population"] == (p["train"] == p["test"])
        without = p["per_source"]["without_knowledge"]
        assert [r["id"] for r in without] == [s.id for s in sets[[s.name for s in sets].index(p["test"])].test]
        for r in without + p["per_source"]["with_knowledge"]:
            assert r["agent_chi2"] >= r["reference_chi2"] - 1e-6  # the full grid holds every model searched
            reached = r["models_to_tolerance"]
            assert reached is None or reached <= r["models_evaluated"]
    same_test = [p for p in out["pairs"] if p["test"] == "low_z"]
    assert same_test[0]["per_source"]["without_knowledge"] == same_test[1]["per_source"]["without_knowledge"]
    assert out["min_reduction"] == min(p["reduction"] for p in out["pairs"])
