"""Filter registry: CIGALE-style band names resolved to real transmission curves.

Curves come from two well-kept packages, ``astro-sedpy`` (``.par`` files) and ``speclite``
(ECSV files), plus user files. All curves are treated as photon-counting responses
(CIGALE's convention for modern curves). A name we cannot resolve is an error that lists
close matches; a band is never dropped silently.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "FilterCurve",
    "UnknownFilterError",
    "get_filter",
    "known_filter_names",
    "register_filter_file",
    "COSMOS_ALIASES",
]


class UnknownFilterError(KeyError):
    """A band name that does not resolve to a transmission curve."""

    def __init__(self, name: str, suggestions: list[str]):
        self.name = name
        self.suggestions = suggestions
        hint = f"; close matches: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown filter {name!r}{hint}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


@dataclass(frozen=True)
class FilterCurve:
    """A photon-counting transmission curve; ``wavelength`` in Angstrom (observed frame)."""

    name: str
    wavelength: np.ndarray
    transmission: np.ndarray
    source: str

    @property
    def pivot_wavelength(self) -> float:
        """Pivot wavelength in Angstrom: sqrt(∫Tλdλ / ∫T/λ dλ)."""
        w, t = self.wavelength, self.transmission
        return float(np.sqrt(np.trapezoid(t * w, w) / np.trapezoid(t / w, w)))

    @property
    def wavelength_range(self) -> tuple[float, float]:
        return float(self.wavelength[0]), float(self.wavelength[-1])


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"package {package!r} is required for filter curves")
    return Path(spec.origin).parent


def _sedpy_dir() -> Path:
    return _package_dir("sedpy") / "data" / "filters"


def _speclite_dir() -> Path:
    return _package_dir("speclite") / "data" / "filters"


# CIGALE-style names -> (library, file stem). Names follow CIGALE's database:
# <facility>.<instrument>.<band>. The COSMOS2020 CIGALE set names HSC bands
# "subaru.suprime.<g,r,i,z,Y>", so those aliases point to HSC curves.
_SEDPY = "sedpy"
_SPECLITE = "speclite"

COSMOS_ALIASES: dict[str, tuple[str, str]] = {
    "cfht.megacam.u": (_SPECLITE, "cfht_megacam-u"),
    "cfht.megacam.u_1": (_SPECLITE, "cfht_megacam-ustar"),
    "subaru.suprime.g": (_SPECLITE, "hsc2017-g"),
    "subaru.suprime.r": (_SPECLITE, "hsc2017-r"),
    "subaru.suprime.i": (_SPECLITE, "hsc2017-i"),
    "subaru.suprime.z": (_SPECLITE, "hsc2017-z"),
    "subaru.suprime.Y": (_SPECLITE, "hsc2017-y"),
    "subaru.suprime.B": (_SEDPY, "subaru_suprimecam_B"),
    "subaru.suprime.V": (_SEDPY, "subaru_suprimecam_V"),
    "subaru.suprime.r+": (_SEDPY, "subaru_suprimecam_rp"),
    "subaru.suprime.i+": (_SEDPY, "subaru_suprimecam_ip"),
    "subaru.suprime.z+": (_SEDPY, "subaru_suprimecam_zp"),
}

_STATIC: dict[str, tuple[str, str]] = {
    **COSMOS_ALIASES,
    "galex.FUV": (_SEDPY, "galex_FUV"),
    "galex.NUV": (_SEDPY, "galex_NUV"),
    "cfht.megacam.g": (_SPECLITE, "cfht_megacam-g"),
    "cfht.megacam.r": (_SPECLITE, "cfht_megacam-r"),
    "cfht.megacam.i": (_SPECLITE, "cfht_megacam-i"),
    "cfht.megacam.z": (_SPECLITE, "cfht_megacam-z"),
    "subaru.hsc.g": (_SPECLITE, "hsc2017-g"),
    "subaru.hsc.r": (_SPECLITE, "hsc2017-r"),
    "subaru.hsc.i": (_SPECLITE, "hsc2017-i"),
    "subaru.hsc.z": (_SPECLITE, "hsc2017-z"),
    "subaru.hsc.y": (_SPECLITE, "hsc2017-y"),
    "spitzer.irac.I1": (_SEDPY, "spitzer_irac_ch1"),
    "spitzer.irac.I2": (_SEDPY, "spitzer_irac_ch2"),
    "spitzer.irac.I3": (_SEDPY, "spitzer_irac_ch3"),
    "spitzer.irac.I4": (_SEDPY, "spitzer_irac_ch4"),
    "spitzer.mips.24": (_SEDPY, "spitzer_mips_24"),
    "generic.bessell.U": (_SPECLITE, "bessell-U"),
    "generic.bessell.B": (_SPECLITE, "bessell-B"),
    "generic.bessell.V": (_SPECLITE, "bessell-V"),
    "generic.bessell.R": (_SPECLITE, "bessell-R"),
    "generic.bessell.I": (_SPECLITE, "bessell-I"),
    "2mass.J": (_SEDPY, "twomass_J"),
    "2mass.H": (_SEDPY, "twomass_H"),
    "2mass.Ks": (_SEDPY, "twomass_Ks"),
    "wise.W1": (_SEDPY, "wise_w1"),
    "wise.W2": (_SEDPY, "wise_w2"),
    "wise.W3": (_SEDPY, "wise_w3"),
    "wise.W4": (_SEDPY, "wise_w4"),
    "euclid.vis": (_SPECLITE, "Euclid-VIS"),
    "euclid.nisp.Y": (_SPECLITE, "Euclid-Y"),
    "euclid.nisp.J": (_SPECLITE, "Euclid-J"),
    "euclid.nisp.H": (_SPECLITE, "Euclid-H"),
}

for _b in "YJHZ":
    _STATIC[f"paranal.vircam.{_b}"] = (_SEDPY, f"vista_vircam_{_b}")
_STATIC["paranal.vircam.Ks"] = (_SEDPY, "vista_vircam_Ks")
for _ib in (427, 464, 484, 505, 527, 574, 624, 679, 709, 738, 767, 827):
    _STATIC[f"subaru.suprime.IB{_ib}"] = (_SPECLITE, f"suprime-IB{_ib}")
for _ia in (445, 550, 598, 651, 797, 856):
    _STATIC[f"subaru.suprime.IA{_ia}"] = (_SEDPY, f"subaru_suprimecam_ia{_ia}")
for _b in "ugrizy":
    _STATIC[f"lsst.{_b}"] = (_SPECLITE, f"lsst2023-{_b}")
    _STATIC[f"rubin.lsst.{_b}"] = (_SPECLITE, f"lsst2023-{_b}")
for _b in "ugriz":
    _STATIC[f"sloan.sdss.{_b}"] = (_SPECLITE, f"sdss2010-{_b}")
for _b in ("F062", "F087", "F106", "F129", "F146", "F158", "F184", "F213"):
    _STATIC[f"roman.wfi.{_b}"] = (_SEDPY, f"roman_wfi_{_b.lower()}")


def _scan_pattern_names() -> dict[str, tuple[str, str]]:
    """Names built from the libraries' file lists (JWST, HST)."""
    names: dict[str, tuple[str, str]] = {}
    sedpy_dir = _sedpy_dir()
    for path in sedpy_dir.glob("*.par"):
        stem = path.stem
        parts = stem.split("_")
        if stem.startswith("jwst_f"):  # NIRCam (and MIRI, wavelengths > 5 µm) curves
            band = stem[len("jwst_") :].upper()
            inst = "miri" if len(band) >= 6 or band in ("F560W", "F770W") else "nircam"
            names[f"jwst.{inst}.{band}"] = (_SEDPY, stem)
        elif stem.startswith("jwst_niriss_"):
            names[f"jwst.niriss.{parts[-1].upper()}"] = (_SEDPY, stem)
        elif stem.startswith("acs_wfc_"):
            names[f"hst.acs.wfc.{parts[-1].upper()}"] = (_SEDPY, stem)
        elif stem.startswith("wfc3_ir_"):
            names[f"hst.wfc3.{parts[-1].upper()}"] = (_SEDPY, stem)
            names[f"hst.wfc3.ir.{parts[-1].upper()}"] = (_SEDPY, stem)
        elif stem.startswith("wfc3_uvis_"):
            names[f"hst.wfc3.uvis.{parts[-1].upper()}"] = (_SEDPY, stem)
    # Every raw library name is accepted too (e.g. "jwst_f444w", "hsc2017-g").
    for path in sedpy_dir.glob("*.par"):
        names.setdefault(path.stem, (_SEDPY, path.stem))
    for path in _speclite_dir().glob("*.ecsv"):
        names.setdefault(path.stem, (_SPECLITE, path.stem))
    return names


_USER_FILES: dict[str, Path] = {}


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, tuple[str, str]]:
    table = _scan_pattern_names()
    table.update(_STATIC)
    return table


def known_filter_names() -> list[str]:
    """Every name that resolves, including user-registered files."""
    return sorted(set(_catalogue()) | set(_USER_FILES))


def register_filter_file(name: str, path: str | Path) -> None:
    """Register a user curve: 2-column text (Å, T), sedpy ``.par`` or speclite ``.ecsv``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"filter file for {name!r} not found: {path}")
    _USER_FILES[name] = path
    get_filter.cache_clear()


def _clean(name: str, wave: np.ndarray, trans: np.ndarray, source: str) -> FilterCurve:
    wave = np.asarray(wave, dtype=float)
    trans = np.asarray(trans, dtype=float)
    order = np.argsort(wave)
    wave, trans = wave[order], np.clip(trans[order], 0.0, None)
    if wave.size < 2 or not np.any(trans > 0):
        raise ValueError(f"filter {name!r} from {source} has no transmission")
    nz = np.flatnonzero(trans > 0)
    lo, hi = max(nz[0] - 1, 0), min(nz[-1] + 1, wave.size - 1)
    return FilterCurve(name, wave[lo : hi + 1], trans[lo : hi + 1], source)


def _read_sedpy(name: str, path: Path) -> FilterCurve:
    # sedpy's own reader handles both its yanny ``KFILTER_VALUES`` and 2-column files.
    from sedpy.observate import Filter

    curve = Filter(path.stem, directory=str(path.parent), min_trans=0.0)
    return _clean(name, curve.wavelength, curve.transmission, f"sedpy:{path.name}")


def _read_speclite(name: str, path: Path) -> FilterCurve:
    from astropy.table import Table

    table = Table.read(path, format="ascii.ecsv")
    wave = np.asarray(table.columns[0], dtype=float)
    unit = table.columns[0].unit
    if unit is not None and str(unit) not in ("Angstrom", "AA"):
        wave = (table.columns[0].quantity).to_value("Angstrom")
    return _clean(name, wave, np.asarray(table.columns[1], dtype=float), f"speclite:{path.name}")


def _read_par(name: str, path: Path) -> FilterCurve:
    """A user's sedpy-style yanny file (``KFILTER_VALUES λ T`` rows) or a bare 2-column file."""
    rows = [line.split()[1:3] for line in path.read_text().splitlines() if line.startswith("KFILTER_VALUES")]
    if not rows:
        table = np.loadtxt(path, usecols=(0, 1), comments="#", ndmin=2)
        return _clean(name, table[:, 0], table[:, 1], f"file:{path}")
    data = np.array(rows, dtype=float)
    return _clean(name, data[:, 0], data[:, 1], f"file:{path}")


def _read_user(name: str, path: Path) -> FilterCurve:
    if path.suffix == ".par":
        return _read_par(name, path)
    if path.suffix == ".ecsv":
        return _read_speclite(name, path)
    data = np.loadtxt(path, usecols=(0, 1), comments="#")
    return _clean(name, data[:, 0], data[:, 1], f"file:{path}")


@lru_cache(maxsize=512)
def get_filter(name: str) -> FilterCurve:
    """Resolve a band name (``jwst.nircam.F444W``, ``subaru.suprime.IB427``, ...) to its curve."""
    if name in _USER_FILES:
        return _read_user(name, _USER_FILES[name])
    entry = _catalogue().get(name)
    if entry is None:
        candidates = known_filter_names()
        close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
        if not close:
            low = name.lower()
            close = [c for c in candidates if c.lower() == low][:5]
        raise UnknownFilterError(name, close)
    library, stem = entry
    if library == _SEDPY:
        return _read_sedpy(name, _sedpy_dir() / f"{stem}.par")
    return _read_speclite(name, _speclite_dir() / f"{stem}.ecsv")
