"""The cigale engine: real pcigale.ini + observation files, round-tripped; run where installed."""

import shutil

import numpy as np
import pytest

from mephisto_sed.catalog import read_catalog
from mephisto_sed.cigale_engine import fit_with_cigale, prepare_cigale_run
from mephisto_sed.config import ConfigError, Configuration, read_pcigale_ini


def _cosmos(cosmos_dir, n=5):
    cat = read_catalog(cosmos_dir / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt", on_unknown="skip")
    return cat.select(slice(0, n))


@pytest.mark.parametrize(
    "ini", ["pcigale_zbin_0p00_0p25.ini", "pcigale_zbin_2p50_3p00.ini", "pcigale_zbin_4p00_9p00.ini"]
)
def test_cosmos_configs_round_trip_through_cigale_files(cosmos_dir, tmp_path, ini):
    cat = _cosmos(cosmos_dir)
    cfg = read_pcigale_ini(cosmos_dir / ini)
    path = prepare_cigale_run(cat, cfg, tmp_path)
    back = read_pcigale_ini(path)
    assert back.modules == cfg.modules
    assert back.params == cfg.params
    assert back.additionalerror == cfg.additionalerror
    assert back.bands == [b for b in cfg.bands if b in cat.bands]  # the 31 bands with curves
    assert "stellar.m_star" in back.extra["analysis_params"]["variables"]
    obs = read_catalog(tmp_path / back.data_file)
    assert list(obs.ids) == list(cat.ids)
    np.testing.assert_allclose(obs.flux, cat.flux[:, [cat.bands.index(b) for b in obs.bands]])


def test_modules_without_cigale_counterpart_are_refused(cosmos_dir, tmp_path):
    cfg = Configuration.from_modules(
        {
            "sfhdelayed": {},
            "bc03": {"imf": 1},
            "dustatt_modified_starburst": {},
            "dl2014": {},
            "agn": {},
            "redshifting": {},
        }
    )
    with pytest.raises(ConfigError, match="agn"):
        prepare_cigale_run(_cosmos(cosmos_dir), cfg, tmp_path)


@pytest.mark.skipif(shutil.which("pcigale") is None, reason="pcigale (CIGALE) is not installed here")
def test_cigale_run_reads_back_into_results(cosmos_dir, tmp_path):
    cat = _cosmos(cosmos_dir, 3)
    cfg = read_pcigale_ini(cosmos_dir / "pcigale_zbin_2p50_3p00.ini")
    cfg = cfg.with_values("nebular", logU=[-2.0]).with_values("sfhdelayed", f_burst=[0.0])
    res = fit_with_cigale(cat, cfg, tmp_path)
    assert len(res.table) == 3
    assert np.all(np.isfinite(res.table["bayes.stellar.m_star"]))
