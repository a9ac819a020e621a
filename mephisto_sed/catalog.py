"""Observation catalogues: CIGALE tables (``# id redshift <band> <band>_err ...``), CSV, FITS
and VOTable through astropy, fluxes in mJy (µJy, nJy or AB magnitudes on request).

Conventions (CIGALE's): missing data is NaN or a sentinel ≤ -90 (-99, -9999) in the flux or
its error; a negative error with a positive flux marks an upper limit at that flux, with
|error| as its σ. A source with a bad value is rejected with its id, the column and the reason;
every other source is kept. An unknown band is an error listing close matches, unless the
caller names it in ``skip_bands`` or asks ``on_unknown="skip"`` (then it is reported in
``dropped_bands``, never dropped silently).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from astropy.table import Table

from .filters import UnknownFilterError, get_filter
from .observation_checks import band_problem, source_problem

__all__ = ["Catalog", "CatalogError", "Rejection", "read_catalog", "PRESETS", "FLUX_UNITS"]

MISSING_SENTINEL = -90.0
FLUX_UNITS = {"mJy": 1.0, "uJy": 1e-3, "µJy": 1e-3, "nJy": 1e-6, "Jy": 1e3}


class CatalogError(ValueError):
    """The catalogue as a whole cannot be used (no id/redshift column, unknown band...)."""


@dataclass(frozen=True)
class Rejection:
    source: str
    column: str
    reason: str

    def __str__(self) -> str:
        return f"source {self.source}: {self.column}: {self.reason}"


@dataclass
class Catalog:
    """Validated photometry: ``flux``/``err`` in mJy [source, band], NaN where missing."""

    ids: np.ndarray
    redshift: np.ndarray
    bands: list[str]
    flux: np.ndarray
    err: np.ndarray
    upper_limit: np.ndarray
    rejected: list[Rejection] = field(default_factory=list)
    dropped_bands: dict[str, str] = field(default_factory=dict)
    source_file: str = ""

    def __len__(self) -> int:
        return int(self.ids.size)

    def select(self, index) -> Catalog:
        index = np.atleast_1d(np.arange(len(self))[index])
        return Catalog(
            self.ids[index],
            self.redshift[index],
            list(self.bands),
            self.flux[index],
            self.err[index],
            self.upper_limit[index],
            [],
            dict(self.dropped_bands),
            self.source_file,
        )

    def to_table(self) -> Table:
        """CIGALE-format table (mJy, NaN for missing, negative errors for upper limits)."""
        t = Table()
        t["id"] = self.ids
        t["redshift"] = self.redshift
        for j, b in enumerate(self.bands):
            t[b] = self.flux[:, j]
            t[f"{b}_err"] = np.where(self.upper_limit[:, j], -self.err[:, j], self.err[:, j])
        return t

    def write_cigale(self, path: str | Path) -> Path:
        """Write a CIGALE observation file (``# id redshift band band_err ...``)."""
        path = Path(path)
        t = self.to_table()
        t.write(path, format="ascii.commented_header", overwrite=True)
        return path


# Column presets for published catalogues: column stem -> CIGALE band name, plus the columns
# that have no public curve in sedpy/speclite (reported, not silently dropped).
_LRD_BANDS = {
    f"f{b}": f"jwst.nircam.F{b.upper()}"
    for b in (
        "090w",
        "115w",
        "150w",
        "200w",
        "277w",
        "356w",
        "410m",
        "444w",
        "182m",
        "210m",
        "250m",
        "300m",
        "335m",
        "430m",
        "460m",
        "480m",
    )
}
_LRD_BANDS.update({f"f{b}n": f"jwst.niriss.F{b.upper()}" for b in ("115w", "150w", "200w")})
_LRD_BANDS.update({f"f{b}": f"hst.acs.wfc.F{b.upper()}" for b in ("435w", "475w", "606w", "775w", "814w", "850lp")})
_LRD_BANDS.update({f"f{b}": f"hst.wfc3.ir.F{b.upper()}" for b in ("105w", "110w", "125w", "140w", "160w")})
_LRD_BANDS.update({"f606wu": "hst.wfc3.uvis.F606W", "f814wu": "hst.wfc3.uvis.F814W"})

PRESETS: dict[str, dict] = {
    "kokorev2024_lrd": {
        "id_column": "id",
        "redshift_column": "z_phot",
        "flux_unit": "uJy",
        "flux_suffix": "_flux",
        "err_suffix": "_fluxerr",
        "band_map": _LRD_BANDS,
        "unsupported": {
            "f150w2-f162m": "NIRISS/NIRCam combination with no public curve",
            "f350lpu": "HST WFC3/UVIS F350LP: no curve in sedpy or speclite",
            "f850lpu": "HST WFC3/UVIS F850LP: no curve in sedpy or speclite",
        },
    },
}


def _read_table(path: Path) -> Table:
    suffix = path.suffix.lower()
    if suffix in (".fits", ".fit", ".fz"):
        return Table.read(path, format="fits")
    if suffix in (".xml", ".vot", ".votable"):
        return Table.read(path, format="votable")
    if suffix == ".csv":
        return Table.read(path, format="ascii.csv")
    with path.open() as fh:
        first = fh.readline()
    if first.lstrip().startswith("#"):
        return Table.read(path, format="ascii.commented_header")
    return Table.read(path, format="ascii.basic")


def _refuse_duplicates(ids: np.ndarray, name: str, id_column: str) -> None:
    """Results, traces and plots are keyed by id: two rows with one id would overwrite each other."""
    first: dict[str, int] = {}
    for row, source_id in enumerate(map(str, ids)):
        if source_id in first:
            raise CatalogError(
                f"{name}: {id_column} {source_id!r} is in rows {first[source_id] + 1} and {row + 1} "
                "(data rows, from 1); ids must be unique"
            )
        first[source_id] = row


def _row_problem(
    z: float,
    flux: np.ndarray,
    err: np.ndarray,
    missing: np.ndarray,
    infinite: np.ndarray,
    upper: np.ndarray,
    bad_negative: np.ndarray,
    pairs: list[tuple[str, str, str]],
    photoz: bool = False,
) -> tuple[str, str] | None:
    """Why a row cannot be fitted, as (column, reason), or None: the catalogue's own conventions
    first, then the checks the gateway and the alerts apply too (observation_checks)."""
    conventions = (
        (infinite, 0, "flux or error is infinite (leave a missing band empty or NaN)"),
        (~missing & (err == 0), 1, "error is zero"),
        (bad_negative, 1, "negative error on a non-positive flux (not an upper limit)"),
    )
    for broken, column, reason in conventions:
        if broken.any():
            return pairs[int(np.argmax(broken))][column], reason
    for j in np.flatnonzero(~missing):
        problem = band_problem(float(flux[j]), float(err[j]))
        if problem is not None:
            return pairs[j][0 if problem[0] == "flux" else 1], problem[1]
    problem = source_problem(float(z), flux[~missing].tolist(), upper[~missing].tolist(), photoz)
    if problem is not None:
        return ("redshift" if problem[0] == "redshift" else "fluxes"), problem[1]
    return None


@dataclass(frozen=True)
class _Layout:
    """How a catalogue names its columns."""

    id_column: str
    redshift_column: str
    flux_suffix: str
    err_suffix: str
    band_map: dict[str, str]
    unsupported: dict[str, str]
    skip_bands: list[str] | tuple[str, ...]


def _table_of(source: str | Path | Table) -> tuple[Table, str]:
    if isinstance(source, Table):
        return source, "<table>"
    path = Path(source)
    if not path.is_file():
        raise CatalogError(f"catalogue not found: {path}")
    try:
        return _read_table(path), str(path)
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for unreadable files
        raise CatalogError(f"{path}: cannot read as a table: {exc}") from exc


def _flux_columns(
    cols: list[str], layout: _Layout, on_unknown: str, name: str
) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """(flux column, error column, band) for every column X with a matching X<err_suffix>, and the
    bands left out with the reason."""
    pairs: list[tuple[str, str, str]] = []
    dropped: dict[str, str] = {}
    fs, es = layout.flux_suffix, layout.err_suffix
    for c in cols:
        if c in (layout.id_column, layout.redshift_column) or not c.endswith(fs) or c.endswith(es):
            continue
        stem = c[: len(c) - len(fs)] if fs else c
        if stem + es not in cols:
            continue
        if stem in layout.unsupported:
            dropped[stem] = layout.unsupported[stem]
            continue
        band = layout.band_map.get(stem, stem)
        if band in layout.skip_bands or stem in layout.skip_bands:
            dropped[band] = "skipped on request"
            continue
        try:
            get_filter(band)
        except UnknownFilterError as exc:
            if on_unknown == "skip":
                dropped[band] = str(exc)
                continue
            raise CatalogError(f"{name}: column {c!r}: {exc}") from exc
        pairs.append((c, stem + es, band))
    if not pairs:
        raise CatalogError(f"{name}: no flux columns with matching '{es}' error columns")
    return pairs, dropped


def _numbers(table: Table, column: str, name: str) -> np.ndarray:
    try:
        return np.asarray(table[column], dtype=float)
    except (TypeError, ValueError):
        raise CatalogError(f"{name}: column {column!r} holds values that are not numbers") from None


def _flux_arrays(
    table: Table, pairs: list[tuple[str, str, str]], flux_unit: str, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fluxes and signed errors in mJy (NaN where missing), the missing and the infinite cells."""
    n = len(table)
    flux = np.column_stack([_numbers(table, f, name) for f, _, _ in pairs]).reshape(n, len(pairs))
    err = np.column_stack([_numbers(table, e, name) for _, e, _ in pairs]).reshape(n, len(pairs))
    for j, (f, _, _) in enumerate(pairs):
        m = getattr(table[f], "mask", None)
        if m is not None and np.any(m):
            flux[np.asarray(m), j] = np.nan
    infinite = np.isinf(flux) | np.isinf(err)  # not a missing value: a broken one (the row is refused)
    missing = np.isnan(flux) | np.isnan(err) | (flux <= MISSING_SENTINEL) | (err <= MISSING_SENTINEL)
    if flux_unit == "ABmag":
        with np.errstate(invalid="ignore", over="ignore"):
            mag, magerr = flux, err
            flux = 3631e3 * 10 ** (-0.4 * mag)  # AB: 3631 Jy at m = 0
            err = np.abs(flux * magerr * np.log(10) / 2.5) * np.sign(magerr)
    else:
        flux = flux * FLUX_UNITS[flux_unit]
        err = err * FLUX_UNITS[flux_unit]
    return np.where(missing, np.nan, flux), np.where(missing, np.nan, err), missing, infinite


def read_catalog(
    source: str | Path | Table,
    *,
    flux_unit: Literal["mJy", "uJy", "µJy", "nJy", "Jy", "ABmag"] = "mJy",
    id_column: str = "id",
    redshift_column: str = "redshift",
    err_suffix: str = "_err",
    flux_suffix: str = "",
    band_map: dict[str, str] | None = None,
    skip_bands: list[str] | tuple[str, ...] = (),
    on_unknown: Literal["error", "skip"] = "error",
    preset: str | None = None,
    redshift: float | None = None,
    photoz: bool = False,
) -> Catalog:
    """Load and validate a photometric catalogue (see the module docstring for conventions).
    With ``photoz`` a source without a redshift (empty, NaN or negative, as in CIGALE) is kept,
    its redshift NaN, for a photometric redshift; otherwise it is rejected."""
    unsupported: dict[str, str] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise CatalogError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        p = PRESETS[preset]
        id_column, redshift_column = p["id_column"], p["redshift_column"]
        flux_unit, flux_suffix, err_suffix = p["flux_unit"], p["flux_suffix"], p["err_suffix"]
        band_map, unsupported = p["band_map"], dict(p["unsupported"])
    table, name = _table_of(source)
    if flux_unit not in FLUX_UNITS and flux_unit != "ABmag":
        raise CatalogError(f"flux_unit {flux_unit!r} not one of {', '.join([*FLUX_UNITS, 'ABmag'])}")
    cols = table.colnames
    if id_column not in cols:
        raise CatalogError(f"{name}: no id column {id_column!r} (columns: {', '.join(cols[:8])}...)")
    if redshift is None and redshift_column not in cols:
        raise CatalogError(f"{name}: no redshift column {redshift_column!r}; give one or a fixed redshift")
    layout = _Layout(id_column, redshift_column, flux_suffix, err_suffix, band_map or {}, unsupported, skip_bands)
    pairs, dropped = _flux_columns(cols, layout, on_unknown, name)
    n = len(table)
    ids = np.array([str(x).strip() for x in table[id_column]])
    ids = np.array([i[:-2] if i.endswith(".0") and i[:-2].lstrip("-").isdigit() else i for i in ids])
    _refuse_duplicates(ids, name, id_column)
    flux, err, missing, infinite = _flux_arrays(table, pairs, flux_unit, name)
    upper = ~missing & (err < 0) & (flux > 0)
    bad_negative = ~missing & (err < 0) & ~(flux > 0)
    err = np.abs(err)

    z = np.full(n, float(redshift)) if redshift is not None else _numbers(table, redshift_column, name)
    rejected: list[Rejection] = []
    keep = np.ones(n, dtype=bool)
    bands = [b for _, _, b in pairs]
    for i in range(n):
        reason = _row_problem(z[i], flux[i], err[i], missing[i], infinite[i], upper[i], bad_negative[i], pairs, photoz)
        if reason is not None and reason[0] == "redshift":
            reason = (redshift_column, reason[1])
        if reason:
            keep[i] = False
            rejected.append(Rejection(ids[i], *reason))
    if photoz:
        z = np.where(z < 0, np.nan, z)  # CIGALE's -1: no redshift
    return Catalog(ids[keep], z[keep], bands, flux[keep], err[keep], upper[keep], rejected, dropped, name)
