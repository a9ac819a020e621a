import pytest

from mephisto_sed.config import (
    DEFAULT_CONFIG,
    ConfigError,
    Configuration,
    read_pcigale_ini,
    write_pcigale_ini,
)


def test_every_cosmos_ini_parses_and_round_trips(cosmos_dir, tmp_path):
    files = sorted(cosmos_dir.glob("pcigale_zbin_*.ini"))
    assert len(files) == 11
    for f in files:
        cfg = read_pcigale_ini(f)
        assert cfg.modules[:5] == ["sfhdelayed", "bc03", "nebular", "dustatt_modified_starburst", "dl2014"]
        assert len(cfg.bands) == 35
        assert cfg.additionalerror == 0.1
        assert cfg.params["nebular"]["logU"][0] == -4.0 and len(cfg.params["nebular"]["logU"]) == 16
        assert cfg.n_models > 1e7
        back = read_pcigale_ini(write_pcigale_ini(cfg, tmp_path / f.name))
        assert back.modules == cfg.modules
        assert back.params == cfg.params
        assert back.bands == cfg.bands
        assert back.additionalerror == cfg.additionalerror


def _ini(tmp_path, body):
    p = tmp_path / "pcigale.ini"
    p.write_text(body)
    return p


BASE = """data_file = obs.txt
sed_modules = sfhdelayed, bc03, {extra}redshifting
bands = galex.FUV
[sed_modules_params]
  [[sfhdelayed]]
    tau_main = 100, 200
    age_main = {age}
  [[bc03]]
    imf = 1
    metallicity = 0.02
  [[redshifting]]
    redshift =
"""


def test_unsupported_module_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unsupported module 'm2005'"):
        read_pcigale_ini(_ini(tmp_path, BASE.format(extra="m2005, ", age="1000")))


def test_out_of_bounds_and_expressions_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"sfhdelayed\.age_main.*outside"):
        read_pcigale_ini(_ini(tmp_path, BASE.format(extra="", age="1e6")))
    with pytest.raises(ConfigError, match="expressions are not evaluated"):
        read_pcigale_ini(_ini(tmp_path, BASE.format(extra="", age="eval np.arange(10)")))


def test_unknown_parameter_and_missing_categories():
    with pytest.raises(ConfigError, match="unsupported parameter.*tau_mian"):
        Configuration.from_modules({"sfhdelayed": {"tau_mian": 1}, "bc03": {}, "redshifting": {}})
    with pytest.raises(ConfigError, match="lacks a ssp module"):
        Configuration.from_modules({"sfhdelayed": {}, "redshifting": {}})
    with pytest.raises(ConfigError, match="imf"):
        Configuration.from_modules({"sfhdelayed": {}, "bc03": {"imf": 0}, "redshifting": {}})


def test_default_config_counts_models():
    cfg = Configuration.from_modules(DEFAULT_CONFIG)
    assert cfg.n_models == 4 * 4 * 2 * 2 * 2 * 6
    assert sum(1 for _ in cfg.iter_models()) == cfg.n_models


def test_with_values_changes_one_list_and_keeps_the_rest(cosmos_dir):
    cfg = read_pcigale_ini(cosmos_dir / "pcigale_zbin_2p50_3p00.ini")
    new = cfg.with_values("nebular", logU=[-2.0, -3.0])
    assert new.params["nebular"]["logU"] == [-2.0, -3.0]
    assert new.params["bc03"] == cfg.params["bc03"]
    assert new.bands == cfg.bands and new.extra == cfg.extra and new.data_file == cfg.data_file
    with pytest.raises(ConfigError, match="logU"):
        cfg.with_values("nebular", logU=[-7.0])
