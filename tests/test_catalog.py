import numpy as np
import pytest
from astropy.table import Table

from mephisto_sed.catalog import CatalogError, read_catalog


def test_cosmos_catalogue_loads(cosmos_dir):
    path = cosmos_dir / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt"
    with pytest.raises(CatalogError, match="NB711"):
        read_catalog(path)  # an unknown band is an error, never a silent drop
    cat = read_catalog(path, on_unknown="skip")
    assert len(cat) == 2295 and len(cat.bands) == 31
    assert set(cat.dropped_bands) == {
        "subaru.suprime.NB711",
        "subaru.suprime.NB816",
        "subaru.suprime.g+",
        "subaru.suprime.z++",
    }
    assert np.all((cat.redshift >= 2.5) & (cat.redshift <= 3.0))
    assert cat.ids[0] == "4759"
    assert cat.flux[0, 0] == pytest.approx(0.00020619758288376033)


def test_lrd_catalogue_loads_in_mjy(lrd_fits):
    cat = read_catalog(lrd_fits, preset="kokorev2024_lrd")
    assert len(cat) == 260
    assert "jwst.nircam.F444W" in cat.bands
    assert set(cat.dropped_bands) == {"f150w2-f162m", "f350lpu", "f850lpu"}
    raw = Table.read(lrd_fits)
    j = cat.bands.index("jwst.nircam.F444W")
    i = int(np.flatnonzero(raw["f444w_flux"] > 0)[0])
    assert cat.flux[i, j] == pytest.approx(raw["f444w_flux"][i] * 1e-3)  # µJy -> mJy
    assert np.isnan(cat.flux[raw["f090w_flux"] == -99, cat.bands.index("jwst.nircam.F090W")]).all()


def _table(**cols):
    base = {
        "id": ["a", "b", "c", "d", "e"],
        "redshift": [1.0, np.nan, 1.0, 1.0, 1.0],
        "subaru.suprime.g": [1.0, 1.0, 1.0, 1.0, 2.0],
        "subaru.suprime.g_err": [0.1, 0.1, 0.0, 0.1, -0.5],
        "paranal.vircam.J": [2.0, 2.0, 2.0, -99.0, 3.0],
        "paranal.vircam.J_err": [0.2, 0.2, 0.2, -99.0, 0.3],
        "spitzer.irac.I1": [3.0, 3.0, 3.0, 3.0, 4.0],
        "spitzer.irac.I1_err": [0.3, 0.3, 0.3, 0.3, 0.4],
    }
    base.update(cols)
    return Table(base)


def test_bad_rows_rejected_with_source_column_and_reason():
    cat = read_catalog(_table())
    assert list(cat.ids) == ["a", "d", "e"]
    reasons = {r.source: (r.column, r.reason) for r in cat.rejected}
    assert reasons["b"][0] == "redshift" and "missing" in reasons["b"][1]
    assert reasons["c"] == ("subaru.suprime.g_err", "error is zero")
    d = list(cat.ids).index("d")
    assert np.isnan(cat.flux[d, cat.bands.index("paranal.vircam.J")])  # -99 = no data
    e = list(cat.ids).index("e")
    g = cat.bands.index("subaru.suprime.g")
    assert cat.upper_limit[e, g] and cat.err[e, g] == 0.5  # negative error = upper limit (CIGALE)


@pytest.mark.parametrize("unit, factor", [("uJy", 1e-3), ("nJy", 1e-6), ("mJy", 1.0)])
def test_flux_units(unit, factor):
    cat = read_catalog(_table(), flux_unit=unit)
    assert cat.flux[0, 0] == pytest.approx(1.0 * factor)


def test_ab_magnitudes():
    t = _table(**{"subaru.suprime.g": [16.4] * 5, "subaru.suprime.g_err": [0.1] * 5})
    cat = read_catalog(t, flux_unit="ABmag")
    expected = 3631e3 * 10 ** (-0.4 * 16.4)
    assert cat.flux[0, 0] == pytest.approx(expected, rel=1e-9)
    assert cat.err[0, 0] == pytest.approx(expected * 0.1 * np.log(10) / 2.5, rel=1e-9)


@pytest.mark.parametrize("fmt, suffix", [("ascii.csv", ".csv"), ("fits", ".fits"), ("votable", ".xml")])
def test_formats(tmp_path, fmt, suffix):
    path = tmp_path / f"cat{suffix}"
    _table().write(path, format=fmt)
    cat = read_catalog(path)
    assert list(cat.ids) == ["a", "d", "e"]


def test_cigale_format_round_trip(tmp_path):
    cat = read_catalog(_table())
    back = read_catalog(cat.write_cigale(tmp_path / "obs.txt"))
    np.testing.assert_allclose(back.flux, cat.flux)
    assert np.array_equal(back.upper_limit, cat.upper_limit)


def test_missing_columns_are_clear_errors(tmp_path):
    with pytest.raises(CatalogError, match="no redshift column"):
        read_catalog(Table({"id": [1], "galex.FUV": [1.0], "galex.FUV_err": [0.1]}))
    with pytest.raises(CatalogError, match="not found"):
        read_catalog(tmp_path / "nope.txt")
    bad = tmp_path / "garbage.txt"
    bad.write_bytes(b"\x00\x01\x02 not a table")
    with pytest.raises(CatalogError):
        read_catalog(bad)


def test_text_where_numbers_belong_is_a_catalogue_error(tmp_path):
    t = _table()
    t["paranal.vircam.J"] = t["paranal.vircam.J"].astype(str)
    t["paranal.vircam.J"][1] = "abc"
    with pytest.raises(CatalogError, match="column 'paranal.vircam.J' holds values that are not numbers"):
        read_catalog(t)
