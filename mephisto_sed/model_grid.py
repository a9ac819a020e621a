"""The built-in SED engine: every model of a configuration, in observed fluxes (mJy).

How it is fast: everything that does not depend on the star-formation history is folded into
small matrices once per (metallicity, attenuation, nebular) block — SSP spectra are pushed
through attenuation and the redshifted filter curves (``photometry.band_matrix``) in one matrix
product, nebular emission is scaled by each population's Lyman-continuum photons as in
CIGALE, and dust emission follows from energy balance. The SFH axis is then a cheap weighted
sum over SSP ages, done for all SFHs of a block at once. Models stream out in chunks, so
memory stays bounded for any grid size.

``ModelGrid.sed()`` builds the full spectrum of one model from the same ingredients (for
best-fit SED files, plots and the energy-balance check).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.cosmology import FLRW

from .config import ConfigError, Configuration
from .filters import get_filter
from .photometry import (
    DEFAULT_COSMOLOGY,
    age_of_universe_myr,
    band_matrix,
    line_matrix,
    window_column,
)
from .physics.grids import age_bin_edges, store
from .sed_modules import (
    AGN_MODELS,
    ATTENUATION_MODELS,
    DUST_EMISSION_MODELS,
    MODULES,
    NEBULAR_MODELS,
    SFH_MODELS,
    SSP_MODELS,
)

L_SUN_W = 3.826e26
SFH_CHUNK = 20_000  # SFHs per chunk: bounds memory whatever the grid size
SFH_CACHE_LIMIT = 5_000_000  # SFH × age cells kept in memory between chunks (40 MB)

# Properties proportional to the mass scale (per M☉ formed in the tables).
EXTENSIVE = (
    "stellar.m_star",
    "stellar.n_ly",
    "sfh.sfr",
    "sfh.sfr10Myrs",
    "sfh.sfr100Myrs",
    "dust.luminosity",
    "agn.luminosity",
)


@dataclass
class ModelChunk:
    """A block of models at one redshift: fluxes in mJy per M☉ formed, and their properties."""

    fluxes: np.ndarray  # [n_models, n_bands]
    props: dict[str, np.ndarray]  # per model; EXTENSIVE ones per M☉ formed
    params: dict[str, dict[str, Any]]  # the non-SFH parameter values shared by the chunk
    sfh_index: np.ndarray  # index into ModelGrid.sfh_table rows

    def __len__(self) -> int:
        return self.fluxes.shape[0]


@dataclass
class SED:
    """One model's rest-frame spectrum per M☉ formed (L☉/Å) and its observed band fluxes."""

    wave: np.ndarray  # rest Å
    components: dict[str, np.ndarray]  # L☉/Å per M☉ formed
    lines: dict[str, float]  # attenuated line luminosities, L☉ per M☉ formed
    lines_intrinsic: dict[str, float]
    fluxes: np.ndarray  # mJy per M☉ formed
    props: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> np.ndarray:
        keys = [k for k in self.components if not k.endswith("_intrinsic")]
        return np.sum([self.components[k] for k in keys], axis=0)


def _combos(cfg: Configuration, category: str) -> list[dict[str, Any]]:
    """Every combination of the grid values of ``category``'s module, in the order its declaration
    gives (``ModuleSpec.grid_axes``)."""
    module = cfg.module_of(category)
    if module is None:
        return [{}]
    params = cfg.params[module]
    keys = [k for k in MODULES[module].grid_axes() if k in params]
    return [dict(zip(keys, vals)) for vals in itertools.product(*(params[k] for k in keys))]


class ModelGrid:
    """Every model of ``config`` evaluated in ``bands`` at any redshift."""

    def __init__(self, config: Configuration, bands: list[str], cosmology: FLRW = DEFAULT_COSMOLOGY):
        if not bands:
            raise ConfigError("no bands to compute")
        for b in bands:
            get_filter(b)  # unknown bands fail here, with close matches
        self.config = config
        self.bands = list(bands)
        self.cosmology = cosmology
        self.store = store()
        self.ages_yr = self.store.ssp_ages
        self.age_edges_myr = age_bin_edges(self.ages_yr)
        self.sfh_module = config.required("sfh")
        self._build_sfh_table()
        ssp_module = config.required("ssp")
        self.ssp_model = SSP_MODELS[ssp_module]
        self.metallicities = config.params[ssp_module]["metallicity"]
        self.separation_ages = config.params[ssp_module]["separation_age"]
        self.neb_module = config.module_of("nebular")
        self.att_module = config.module_of("attenuation")
        self.dust_module = config.module_of("dust_emission")
        self.agn_module = config.module_of("agn")
        # each category's physics, from its module's own file (sed_modules/)
        self.neb_model = NEBULAR_MODELS[self.neb_module] if self.neb_module else None
        self.dust_model = DUST_EMISSION_MODELS[self.dust_module] if self.dust_module else None
        self.agn_model = AGN_MODELS[self.agn_module] if self.agn_module else None
        neb_on = self.neb_module is not None and config.params[self.neb_module]["emission"][0]
        self.neb_combos = _combos(config, "nebular") if neb_on else [{}]
        # More than all ionising photons cannot escape or be absorbed: such combinations are not models.
        self.neb_combos = [n for n in self.neb_combos if not n or n["f_esc"] + n["f_dust"] <= 1]
        if not self.neb_combos:
            raise ConfigError("nebular: every f_esc + f_dust combination exceeds 1")
        self.line_keep = (
            self.neb_model.lines_kept(config.params[self.neb_module])
            if self.neb_model and self.neb_module
            else np.ones(len(self.store.line_wave))
        )
        self.att_combos = _combos(config, "attenuation")
        self.dust_combos = _combos(config, "dust_emission")
        self.agn_combos = _combos(config, "agn")
        self.agn_window = (
            self.agn_model.window(config.params[self.agn_module]) if self.agn_model and self.agn_module else None
        )
        # SSP ages -> nebular template age (nearest in log age; older populations use the oldest).
        neb_ages = self.store.neb_ages
        la = np.log10(np.maximum(self.ages_yr, neb_ages[0]))
        self.neb_index = np.abs(la[:, None] - np.log10(neb_ages)[None, :]).argmin(axis=1)
        self._lyc = self.store.wave <= 911.76
        self._att_cache: dict[tuple, tuple] = {}

    # -- SFH ------------------------------------------------------------------------------
    def _build_sfh_table(self) -> None:
        p = self.config.params[self.sfh_module]
        self.sfh_model = SFH_MODELS[self.sfh_module]
        names = self.sfh_model.table
        amplitude, *shape = self.sfh_model.burst or (None,)
        rows = []
        for vals in itertools.product(*(p[k] for k in names)):
            d = dict(zip(names, vals))
            if amplitude and d[amplitude] == 0 and any(d[k] != p[k][0] for k in shape):
                continue  # without a burst its shape changes nothing: one copy, where CIGALE computes them all
            if self.sfh_model.valid(d):
                rows.append(vals)
        if not rows:
            raise ConfigError(f"{self.sfh_module}: no combination of its values is a valid history")
        arr = np.array(rows, dtype=float)
        self.sfh_names = names
        self.sfh_table = {k: arr[:, i] for i, k in enumerate(names)}
        # Keep every SFH's mass per age bin only while small; otherwise compute it per slice.
        everything = np.arange(arr.shape[0])
        self._sfh_cache = None
        if arr.shape[0] * self.ages_yr.size <= SFH_CACHE_LIMIT:
            self._sfh_cache = self._sfh_mass(everything)
        self.sfh_total_age = self.sfh_table[self.sfh_model.age]  # Myr since the onset of star formation

    def n_models(self, redshift: float) -> int:
        n_sfh = int(np.sum(self._sfh_ok(redshift)))
        return n_sfh * self._n_blocks()

    def _n_blocks(self) -> int:
        return (
            len(self.metallicities)
            * len(self.separation_ages)
            * len(self.att_combos)
            * len(self.neb_combos)
            * len(self.dust_combos)
            * len(self.agn_combos)
        )

    def _sfh_ok(self, redshift: float) -> np.ndarray:
        # Models older than the Universe at z are not physical (CIGALE drops them too).
        return self.sfh_total_age <= age_of_universe_myr(redshift, self.cosmology) + 1e-9

    # -- attenuation ----------------------------------------------------------------------
    def _attenuation(self, att: dict[str, Any], wave_aa: np.ndarray, line_wave: np.ndarray):
        """``(trans_young, trans_old, trans_nebular_continuum, trans_lines, E_BVs, E_BV_lines)``."""
        if not att:
            one = np.ones_like(wave_aa)
            return one, one, one, np.ones_like(line_wave), 0.0, 0.0
        assert self.att_module is not None  # parameters exist only with an attenuation module
        return ATTENUATION_MODELS[self.att_module].transmission(att, wave_aa, line_wave)

    def _attenuation_cached(self, att: dict[str, Any]):
        key = tuple(sorted(att.items()))
        if key not in self._att_cache:
            self._att_cache[key] = self._attenuation(att, self.store.wave, self.store.line_wave)
        return self._att_cache[key]

    # -- nebular --------------------------------------------------------------------------
    def _nebular_templates(self, logu: float, zgas: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-photon nebular continuum [neb_age, λ] and lines [neb_age, line], the lines the
        module leaves out zeroed."""
        assert self.neb_model is not None  # nebular parameters exist only with a nebular module
        cont, lines = self.neb_model.templates(logu, zgas)
        return cont, lines * self.line_keep

    # -- the grid -------------------------------------------------------------------------
    def iter_chunks(self, redshift: float) -> Iterator[ModelChunk]:
        """All models at ``redshift`` in chunks (one chunk = up to ``SFH_CHUNK`` SFHs of one block)."""
        if redshift is None or not np.isfinite(redshift) or redshift < 0:
            raise ValueError(f"redshift must be a finite number ≥ 0, got {redshift}")
        st = self.store
        wave, dwave = st.wave, st.dwave
        ok = np.flatnonzero(self._sfh_ok(redshift))
        if ok.size == 0:
            return
        F = band_matrix(wave, redshift, self.bands, self.cosmology)
        FL = line_matrix(st.line_wave, redshift, self.bands, self.cosmology)
        n_b = len(self.bands)
        if self.agn_window is not None:  # extra column: luminosity in the fracAGN window
            F = np.column_stack([F, window_column(wave, dwave, *self.agn_window)])
            lw = st.line_wave / 1e4
            FL = np.column_stack([FL, ((lw >= self.agn_window[0]) & (lw <= self.agn_window[1])).astype(float)])
        rows = np.flatnonzero(np.any(F != 0, axis=1))
        Fr = F[rows]
        lyc_r = self._lyc[rows]
        dust_tables = [self._dust_bands(d, redshift) for d in self.dust_combos]
        agn_tables = [self._agn_bands(a, redshift) for a in self.agn_combos]
        n_neb_ages = st.neb_ages.size

        neb_tables = {}
        for neb in self.neb_combos:
            if neb and (neb["logU"], neb["zgas"]) not in neb_tables:
                neb_tables[(neb["logU"], neb["zgas"])] = self._nebular_templates(neb["logU"], neb["zgas"])
        lyc = self._lyc
        for metal in self.metallicities:
            ssp, live, q = self.ssp_model.populations(metal)
            P = np.zeros((self.ages_yr.size, n_neb_ages))
            P[np.arange(self.ages_yr.size), self.neb_index] = q
            lyc_age = ssp[:, lyc] @ dwave[lyc]
            # Fold attenuation into the (small) band matrix instead of the (large) SSP array.
            ssp_rows = {"star": ssp[:, rows[~lyc_r]], "lyc": ssp[:, rows[lyc_r]]}
            f_rows = {"star": Fr[~lyc_r], "lyc": Fr[lyc_r]}
            ssp_full = {"star": ssp[:, ~lyc], "lyc": ssp[:, lyc]}
            for sep in self.separation_ages:
                young = self.ages_yr < sep * 1e6
                for att in self.att_combos:
                    t_y, t_o, t_nc, t_l, ebv_s, ebv_lines = self._attenuation_cached(att)
                    age_flux, age_abs = {}, {}  # per SSP age: band fluxes and absorbed luminosity
                    for part, sel in (("star", ~lyc), ("lyc", lyc)):
                        sel_r = ~lyc_r if part == "star" else lyc_r
                        fl = ssp_rows[part] @ (t_o[rows[sel_r], None] * f_rows[part])
                        ab = ssp_full[part] @ ((1 - t_o[sel]) * dwave[sel])
                        if t_y is not t_o and young.any():
                            fl[young] = ssp_rows[part][young] @ (t_y[rows[sel_r], None] * f_rows[part])
                            ab[young] = ssp_full[part][young] @ ((1 - t_y[sel]) * dwave[sel])
                        age_flux[part], age_abs[part] = fl, ab
                    neb_bands = {}
                    for key, (cont, lines) in neb_tables.items():
                        nb = cont[:, rows] @ (t_nc[rows, None] * Fr) + lines @ (t_l[:, None] * FL)
                        neb_bands[key] = (nb, cont @ ((1 - t_nc) * dwave) + lines @ (1 - t_l))
                    for idx, W, sfh_info in self._sfh_slices(ok):
                        m_star = W @ live
                        sfh_props = {f"sfh.{k}": self.sfh_table[k][idx] for k in self.sfh_names}
                        sfh_props.update({f"sfh.{k}": v for k, v in sfh_info.items()})
                        sfh_props["stellar.m_star"] = m_star
                        sfh_props["stellar.n_ly"] = W @ q
                        sfh_props["stellar.age_m_star"] = (W @ (live * self.ages_yr / 1e6)) / m_star
                        Qk = W @ P  # ionising photons per nebular template age
                        l_lyc = W @ lyc_age
                        flux_star, flux_lyc = W @ age_flux["star"], W @ age_flux["lyc"]
                        labs_star, labs_lyc = W @ age_abs["star"], W @ age_abs["lyc"]
                        yield from self._finish_blocks(
                            idx,
                            n_b,
                            sfh_props,
                            flux_star,
                            flux_lyc,
                            labs_star,
                            labs_lyc,
                            l_lyc,
                            Qk,
                            neb_bands,
                            dust_tables,
                            agn_tables,
                            {"metallicity": metal, "separation_age": sep},
                            {**att, "E_BVs": ebv_s, "E_BV_lines": ebv_lines},
                        )

    def _sfh_slices(self, ok: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        """SFH mass per age bin for the allowed SFHs, in slices of at most ``SFH_CHUNK`` rows."""
        for start in range(0, ok.size, SFH_CHUNK):
            idx = ok[start : start + SFH_CHUNK]
            if self._sfh_cache is not None:
                mass, info = self._sfh_cache
                yield idx, mass[idx], {k: v[idx] for k, v in info.items()}
            else:
                yield (idx, *self._sfh_mass(idx))

    def _sfh_mass(self, idx: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self.sfh_model.mass(*(self.sfh_table[k][idx] for k in self.sfh_names), self.age_edges_myr)

    def _finish_blocks(
        self,
        idx,
        n_b,
        sfh_props,
        flux_star,
        flux_lyc,
        labs_star,
        labs_lyc,
        l_lyc,
        Qk,
        neb_bands,
        dust_tables,
        agn_tables,
        stellar,
        attenuation,
    ) -> Iterator[ModelChunk]:
        """Nebular, dust-emission and AGN blocks for one slice of SFHs."""
        for neb in self.neb_combos:
            if neb:
                f_esc, f_dust = neb["f_esc"], neb["f_dust"]
                nb, labs_neb = neb_bands[(neb["logU"], neb["zgas"])]
                f_neb = 1 - f_esc - f_dust
                flux_gal = flux_star + f_esc * flux_lyc + f_neb * (Qk @ nb)
                labs = labs_star + f_esc * labs_lyc + f_neb * (Qk @ labs_neb) + f_dust * l_lyc
            else:
                flux_gal = flux_star + flux_lyc
                labs = labs_star + labs_lyc
            for dust, dtab in zip(self.dust_combos, dust_tables):
                flux_d = flux_gal + labs[:, None] * dtab if dust else flux_gal
                lum_dust = labs if dust else np.zeros_like(labs)
                for agn, atab in zip(self.agn_combos, agn_tables):
                    props = dict(sfh_props)
                    props["dust.luminosity"] = lum_dust * L_SUN_W
                    flux = flux_d
                    agn_lum = np.zeros_like(labs)
                    if agn and self.agn_model:
                        frac = agn[self.agn_model.fraction]
                        ref = lum_dust if self.agn_window is None else flux_d[:, n_b]
                        agn_lum = frac / (1 - frac) * ref / atab["unit_ref"]
                        flux = flux_d + agn_lum[:, None] * atab["bands"]
                    props["agn.luminosity"] = agn_lum * L_SUN_W
                    params = {"stellar": stellar, "attenuation": attenuation, "nebular": neb, "dust": dust, "agn": agn}
                    yield ModelChunk(np.ascontiguousarray(flux[:, :n_b]), props, params, idx)

    def _dust_bands(self, dust: dict[str, Any], redshift: float) -> np.ndarray | None:
        if not dust:
            return None
        assert self.dust_model is not None  # dust parameters exist only with a dust-emission module
        dw, spec = self.dust_model.template(dust)
        out = spec @ band_matrix(dw, redshift, self.bands, self.cosmology)
        if self.agn_window is not None:
            lo, hi = self.agn_window
            m = (dw / 1e4 >= lo) & (dw / 1e4 <= hi)
            out = np.append(out, np.trapezoid(spec[m], dw[m]) if m.sum() > 1 else 0.0)
        return out

    def _agn_bands(self, agn: dict[str, Any], redshift: float) -> dict[str, Any] | None:
        if not agn:
            return None
        wave = self.store.wave
        assert self.agn_model is not None  # AGN parameters exist only with an AGN module
        comp = self.agn_model.components(agn, wave)
        total = sum(comp.values())
        bands = total @ band_matrix(wave, redshift, self.bands, self.cosmology)
        if self.agn_window is None:
            ref = 1.0  # unit AGN dust luminosity
        else:
            ref = float(np.sum(total * window_column(wave, self.store.dwave, *self.agn_window)))
            bands = np.append(bands, ref)
        return {"bands": bands, "unit_ref": ref}

    # -- one model, full spectrum -----------------------------------------------------------
    def sed(self, model: dict[str, dict[str, Any]], redshift: float) -> SED:
        """Rest-frame spectrum of one model given as ``{module: {param: value}}``."""
        st = self.store
        wave, dwave = st.wave, st.dwave
        sp = model[self.sfh_module]
        w, info = self.sfh_model.mass(*([sp[k]] for k in self.sfh_names), self.age_edges_myr)
        w = w[0]
        ssp_mod = model[self.config.required("ssp")]
        ssp, live, q = self.ssp_model.populations(ssp_mod["metallicity"])
        young = self.ages_yr < ssp_mod["separation_age"] * 1e6
        att = (
            {k: v for k, v in model.get(self.att_module, {}).items() if k not in ("filters",)}
            if self.att_module
            else {}
        )
        t_y, t_o, t_nc, t_l, ebv_s, ebv_lines = self._attenuation(att, wave, st.line_wave)
        neb = model[self.neb_module] if self.neb_module and model[self.neb_module].get("emission", True) else {}
        f_esc = neb.get("f_esc", 1.0)
        f_dust = neb.get("f_dust", 0.0)
        lyc_keep = np.where(self._lyc, f_esc, 1.0)
        young_int = (w * young) @ ssp * lyc_keep
        old_int = (w * ~young) @ ssp * lyc_keep
        comps = {
            "stellar.young": young_int * t_y,
            "stellar.old": old_int * t_o,
            "stellar.young_intrinsic": young_int,
            "stellar.old_intrinsic": old_int,
        }
        lines_att: dict[str, float] = {}
        lines_int: dict[str, float] = {}
        labs = np.sum((young_int * (1 - t_y) + old_int * (1 - t_o)) * dwave)
        l_lyc = np.sum(((w @ ssp) * dwave)[self._lyc])
        if neb:
            cont, lines = self._nebular_templates(neb["logU"], neb["zgas"])
            qk = np.zeros(st.neb_ages.size)
            np.add.at(qk, self.neb_index, w * q)
            f_neb = 1 - f_esc - f_dust
            nc = f_neb * (qk @ cont)
            nl = f_neb * (qk @ lines)
            comps["nebular.continuum"] = nc * t_nc
            comps["nebular.continuum_intrinsic"] = nc
            # lines as narrow boxes one grid bin wide (exact for band fluxes via the line matrix)
            idx = np.clip(np.searchsorted(wave, st.line_wave), 0, wave.size - 1)
            spec_lines = np.zeros_like(wave)
            np.add.at(spec_lines, idx, nl * t_l / dwave[idx])
            comps["nebular.lines"] = spec_lines
            lines_att = dict(zip(st.line_names, (nl * t_l).tolist()))
            lines_int = dict(zip(st.line_names, nl.tolist()))
            labs += np.sum(nc * (1 - t_nc) * dwave) + np.sum(nl * (1 - t_l)) + f_dust * l_lyc
        props: dict[str, float] = {
            "dust.luminosity": labs * L_SUN_W,
            "stellar.m_star": float(w @ live),
            "stellar.n_ly": float(w @ q),
            "E_BVs": ebv_s,
            "E_BV_lines": ebv_lines,
        }
        props.update({k: float(v[0]) for k, v in info.items()})
        if self.dust_model and self.dust_module and model.get(self.dust_module):
            dw, dspec = self.dust_model.template(model[self.dust_module])
            dust = np.interp(wave, dw, dspec, left=0.0, right=0.0)
            dust *= 1.0 / np.sum(dust * dwave)  # unit luminosity on the engine grid
            comps["dust"] = labs * dust
        if self.agn_model and self.agn_module and model.get(self.agn_module):
            a = model[self.agn_module]
            ac = self.agn_model.components(a, wave)
            if self.agn_window is None:
                ref = labs if "dust" in comps else 0.0
                unit = 1.0
            else:
                cols = window_column(wave, dwave, *self.agn_window)
                gal = sum(v for k, v in comps.items() if not k.endswith("_intrinsic"))
                ref = float(np.sum(gal * cols))
                unit = float(np.sum(sum(ac.values()) * cols))
            frac = a[self.agn_model.fraction]
            scale = frac / (1 - frac) * ref / unit
            for k, v in ac.items():
                comps[f"agn.{k}"] = scale * v
            props["agn.luminosity"] = scale * L_SUN_W
        F = band_matrix(wave, redshift, self.bands, self.cosmology)
        # Dust fluxes come from the template on its native grid, as in the fast path; the
        # "dust" component above is the same template resampled for display.
        skip = ("nebular.lines", "dust")
        observed = sum(v for k, v in comps.items() if k not in skip and not k.endswith("_intrinsic"))
        fluxes = observed @ F
        if "dust" in comps:
            fluxes = fluxes + labs * (dspec @ band_matrix(dw, redshift, self.bands, self.cosmology))
        if neb:
            FL = line_matrix(st.line_wave, redshift, self.bands, self.cosmology)
            fluxes = fluxes + (nl * t_l) @ FL
        return SED(wave, comps, lines_att, lines_int, fluxes, props)


# module category -> the prefix of its parameters and properties in fits ("stellar.metallicity")
RESULT_PREFIX = {
    "sfh": "sfh",
    "ssp": "stellar",
    "nebular": "nebular",
    "attenuation": "attenuation",
    "dust_emission": "dust",
    "agn": "agn",
    "redshifting": "universe",  # CIGALE's universe.redshift
}


def param_key(module: str, param: str) -> str:
    """The result name of a module's parameter: ``param_key("bc03", "metallicity") == "stellar.metallicity"``."""
    from .sed_modules import MODULES

    return f"{RESULT_PREFIX[MODULES[module].category]}.{param}"


def model_from_params(config: Configuration, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Turn a best model's category-keyed parameters back into ``{module: {param: value}}``."""
    from .sed_modules import MODULES

    model: dict[str, dict[str, Any]] = {}
    for module in config.modules:
        spec = MODULES[module]
        values = {k: v[0] for k, v in config.params[module].items()}
        src = params.get(RESULT_PREFIX.get(spec.category, ""), {})
        values.update({k: v for k, v in src.items() if k in values})
        model[module] = values
    return model
