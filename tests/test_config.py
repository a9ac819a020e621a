import pytest

from mephisto_sed.config import (
    DEFAULT_CONFIG,
    MAX_INI_BYTES,
    ConfigError,
    Configuration,
    parse_pcigale_ini,
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


def test_interpolation_is_off_and_errors_name_the_line_not_the_server(tmp_path):
    """ConfigObj's %(name)s expansion was a memory bomb (3 levels of 100-way fan-out: 3 GB)."""
    bomb = "a0 = xxxxxxxxxx\n" + "".join(f"a{i} = " + ",".join([f"%(a{i - 1})s"] * 100) + "\n" for i in (1, 2, 3))
    with pytest.raises(ConfigError, match=r"^pcigale_ini line 5: unsupported module '%\(a3\)s'"):
        parse_pcigale_ini(bomb + "sed_modules = sfhdelayed, bc03, %(a3)s\n", name="pcigale_ini")
    with pytest.raises(ConfigError) as e:  # a missing name is not an interpolation error any more
        parse_pcigale_ini("x = %(nope)s\n" + BASE.format(extra="", age="abc"), name="pcigale_ini")
    assert str(e.value) == "pcigale_ini line 8: sfhdelayed.age_main: 'abc' is not a number"
    with pytest.raises(ConfigError, match=r"^pcigale_ini: cannot parse: .*at line 2"):
        parse_pcigale_ini("a = 1\n[b\n", name="pcigale_ini")
    big = _ini(tmp_path, "#" * (MAX_INI_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than 256 KiB"):
        read_pcigale_ini(big)
    big.write_bytes(b"sed_modules = \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_pcigale_ini(big)


def test_ladders_and_grids_are_capped_before_any_model_is_made():
    ladder = ", ".join(str(100 + i) for i in range(120))
    with pytest.raises(ConfigError, match=r"line 6: sfhdelayed\.tau_main: 120 values, at most 64"):
        parse_pcigale_ini(BASE.replace("tau_main = 100, 200", f"tau_main = {ladder}").format(extra="", age="1000"))
    values = {p: [float(i + 1) for i in range(60)] for p in ("tau_main", "age_main", "tau_burst", "age_burst")}
    modules = {"sfhdelayed": {**values, "f_burst": [i / 100 for i in range(60)]}, "bc03": {}, "redshifting": {}}
    with pytest.raises(ConfigError, match=r"1\.56e\+10 models per redshift, over 1e\+10"):
        Configuration.from_modules({**modules, "nebular": {"logU": [-3.0 + i / 100 for i in range(20)]}})


def test_every_computed_module_brings_its_physics_in_its_own_file():
    """A module is one file: its declaration (``SPEC``) and how it enters the grid (``MODEL``),
    registered under its category, so the engine has no per-module branch to add."""
    import importlib

    from mephisto_sed import sed_modules as sm

    registries = {
        "sfh": sm.SFH_MODELS,
        "ssp": sm.SSP_MODELS,
        "nebular": sm.NEBULAR_MODELS,
        "attenuation": sm.ATTENUATION_MODELS,
        "dust_emission": sm.DUST_EMISSION_MODELS,
        "agn": sm.AGN_MODELS,
    }
    for name, spec in sm.MODULES.items():
        if spec.category not in registries:
            continue  # redshifting and restframe_parameters: handled by the fit itself
        own_file = importlib.import_module(f"mephisto_sed.sed_modules.{name}")
        assert own_file.SPEC is spec
        assert registries[spec.category][name] is own_file.MODEL, name
    for category, registry in registries.items():
        assert registry, category
        assert all(sm.MODULES[name].category == category for name in registry)
