"""Evaluate a fit beyond one number: residuals per rest-frame regime, systematic patterns,
parameters stuck at a grid edge, physical plausibility, how many models fit, a score and a
compact summary for an LLM prompt."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..filters import get_filter
from ..likelihood import bayes_values, fit_sigma
from ..plausibility import implausibilities
from ..sed_modules import SFH_MODELS
from .execute import Execution, Source
from .space import SearchSpace

__all__ = [
    "Evaluation",
    "evaluate",
    "observed_levels",
    "checked_levels",
    "observed_colours",
    "shape_distance",
    "COLOURS",
    "REGIMES",
    "SIGNATURE_SIZE",
]

# Rest-frame regimes in µm.
REGIMES = (
    ("FUV", 0.0, 0.2),
    ("NUV", 0.2, 0.3),
    ("optical", 0.3, 0.75),
    ("NIR", 0.75, 3.0),
    ("MIR", 3.0, 30.0),
    ("FIR", 30.0, 1e9),
)
PATTERN_SIGMA = 2.0  # mean residual of a regime, in σ, that makes a pattern
GOOD_CHI2_RED = 1.5
LYMAN_LIMIT_A = 912.0
LYMAN_SNR = 5.0  # a detection this significant below rest 912 Å is a feature to explain
SIGNATURE_SIZE = 12


@dataclass
class Evaluation:
    chi2: float
    chi2_red: float
    n_bands: int
    residuals: dict[str, float]  # (obs - model)/σ per band, σ including additionalerror
    regimes: dict[str, dict[str, int | float]]  # regime -> n (int), mean, rms
    patterns: list[str]
    edges: list[dict[str, Any]]  # parameters whose best value sits on the edge of their grid
    plausibility: list[str]
    n_effective: float
    best: dict[str, dict[str, Any]]
    bayes: dict[str, float]
    score: float
    colours: dict[str, float] = field(default_factory=dict)
    redshift: float = 0.0
    # parameters whose best value is the lowest or highest the universe allows: the answer is
    # bounded by the prior there, and no search can widen it (unlike ``edges``)
    limits: list[dict[str, Any]] = field(default_factory=list)
    # ≥5σ detections in bands lying wholly below rest 912 Å that the model leaves unexplained:
    # contamination, a wrong redshift, or ionising light escaping (f_esc > 0)
    lyman_continuum: list[dict[str, Any]] = field(default_factory=list)  # band, snr, residual

    @property
    def good(self) -> bool:
        return self.chi2_red <= GOOD_CHI2_RED and not self.plausibility

    def summary(self) -> str:
        """A few hundred tokens at most: what an expert would say about this fit."""
        reg = ", ".join(f"{k} {v['mean']:+.1f}σ" for k, v in self.regimes.items() if v["n"])
        edges = ", ".join(f"{e['module']}.{e['param']} at {e['side']} edge ({e['value']})" for e in self.edges)
        limits = ", ".join(f"{e['module']}.{e['param']} = {e['value']} ({e['side']}est allowed)" for e in self.limits)
        best = "; ".join(
            f"{m}: " + ", ".join(f"{k}={v:g}" for k, v in p.items() if isinstance(v, (int, float)))
            for m, p in self.best.items()
            if m != "redshifting"
        )
        lyc = ", ".join(f"{b['band']} (S/N {b['snr']:.0f}, {b['residual']:+.0f} sigma)" for b in self.lyman_continuum)
        lines = [
            f"z={self.redshift:.3f}, chi2_red={self.chi2_red:.2f} over {self.n_bands} bands, "
            f"{self.n_effective:.0f} models carry the likelihood.",
            f"mean residual (obs-model)/sigma by rest-frame regime: {reg or 'none'}.",
            f"patterns: {', '.join(self.patterns) or 'none'}.",
            f"edges: {edges or 'none'}.",
            f"at the limit of the allowed range: {limits or 'none'}.",
            f"plausibility: {', '.join(self.plausibility) or 'ok'}.",
            *(
                [
                    f"flux below the Lyman limit (rest < 912 A) unexplained in {lyc}: contamination, "
                    "a wrong redshift, or escaping ionising light (f_esc > 0)."
                ]
                if self.lyman_continuum
                else []
            ),
            f"log M*={np.log10(max(self.bayes.get('stellar.m_star', 1.0), 1.0)):.2f}, "
            f"SFR={self.bayes.get('sfh.sfr', float('nan')):.3g} Msun/yr.",
            f"best model: {best}.",
        ]
        return "\n".join(lines)

    def signature(self) -> np.ndarray:
        """A numeric situation signature for knowledge retrieval (fixed length, ~unit scale)."""
        v = [min(self.redshift / 10.0, 1.0)]
        v += [np.clip(self.regimes[r]["mean"], -10, 10) / 10.0 if self.regimes[r]["n"] else 0.0 for r, _, _ in REGIMES]
        v.append(np.clip(np.log10(max(self.chi2_red, 1e-3)), -1, 3) / 3.0)
        v += [np.clip(self.colours.get(c, 0.0), -3, 3) / 3.0 for c, _, _ in COLOURS]
        v.append(min(len(self.edges), 5) / 5.0)
        out = np.nan_to_num(np.asarray(v, dtype=float), nan=0.0, posinf=1.0, neginf=-1.0)
        assert out.size == SIGNATURE_SIZE
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = self.summary()
        return d


def _rest_um(band: str, z: float) -> float:
    return get_filter(band).pivot_wavelength / 1e4 / (1 + z)


COLOURS = (("uv_opt", "NUV", "optical"), ("opt_nir", "optical", "NIR"), ("nir_mir", "NIR", "MIR"))


def observed_levels(source: Source, usable: np.ndarray | None = None) -> dict[str, float]:
    """The galaxy's photometry by rest-frame regime, before any fit: the log10 median flux (mJy)
    of the positive measurements in each regime of ``REGIMES`` that has one. ``usable``: the bands
    to use (default: measured with a finite error, not upper limits)."""
    if usable is None:
        usable = np.isfinite(source.flux) & np.isfinite(source.err) & ~source.upper_limit
    rest = np.array([_rest_um(b, source.redshift) for b in source.bands])
    level = {}
    for name, lo, hi in REGIMES:
        f = source.flux[usable & (rest >= lo) & (rest < hi)]
        f = f[f > 0]
        if f.size:
            level[name] = float(np.log10(np.median(f)))
    return level


def checked_levels(levels: Any) -> dict[str, float]:
    """``levels`` from outside (a knowledge request) as :func:`observed_levels` gives them, or a
    ValueError naming the field: regime names of ``REGIMES``, finite log fluxes."""
    known = {name for name, _, _ in REGIMES}
    out = {}
    for name, value in dict(levels).items():
        if name not in known:
            raise ValueError(f"levels: unknown regime {str(name)[:40]!r} (one of {', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -50 < float(value) < 50:
            raise ValueError(f"levels[{name}]: expected a finite log10 flux in mJy")
        out[name] = float(value)
    return out


def observed_colours(source: Source, usable: np.ndarray | None = None) -> dict[str, float]:
    """Colours between neighbouring regimes (``uv_opt``: NUV to optical, ``opt_nir``, ``nir_mir``;
    dex) from :func:`observed_levels`, left out where a regime has no measurement."""
    level = observed_levels(source, usable)
    return {key: level[b] - level[a] for key, a, b in COLOURS if a in level and b in level}


def shape_distance(a: dict[str, float], b: dict[str, float]) -> float:
    """How unlike two galaxies' SEDs are in shape (dex): the rms difference of their
    :func:`observed_levels` over the regimes both have, each galaxy's levels taken about their own
    mean there (brightness does not count). Infinite with fewer than two regimes in common."""
    shared = [r for r in a if r in b]
    if len(shared) < 2:
        return float("inf")
    da = np.array([a[r] for r in shared]) - np.mean([a[r] for r in shared])
    db = np.array([b[r] for r in shared]) - np.mean([b[r] for r in shared])
    return float(np.sqrt(np.mean((da - db) ** 2)))


def evaluate(execution: Execution, source: Source, space: SearchSpace) -> Evaluation:
    """Everything an expert reads off a fit of ``source`` by ``execution``'s configuration."""
    z = source.redshift
    best = execution.best
    row = execution.row
    sigma = fit_sigma(source.err, source.flux, space.additionalerror)
    ok = np.isfinite(source.flux) & ~source.upper_limit
    model = best.fluxes if best.fluxes is not None else np.full(source.flux.shape, np.nan)
    res = np.where(ok, (source.flux - model) / sigma, np.nan)
    residuals = {b: float(r) for b, r in zip(source.bands, res) if np.isfinite(r)}
    rest = np.array([_rest_um(b, z) for b in source.bands])
    regimes = {}
    for name, lo, hi in REGIMES:
        sel = ok & (rest >= lo) & (rest < hi) & np.isfinite(res)
        r = res[sel]
        regimes[name] = {
            "n": int(sel.sum()),
            "mean": float(np.mean(r)) if r.size else 0.0,
            "rms": float(np.sqrt(np.mean(r**2))) if r.size else 0.0,
        }
    colours = observed_colours(source, ok & np.isfinite(res))
    red = ok & (rest >= 1.0)
    reddest = float(np.mean(res[red][np.argsort(rest[red])[-2:]])) if red.sum() else 0.0
    patterns = _patterns(regimes, execution.chi2_red, reddest)
    lyman = _lyman_continuum(source, res)
    if lyman:
        patterns.append("lyman_continuum_detected")
    edges = _edges(execution, space)
    limits = _limits(execution, space)
    bayes = bayes_values(row)
    plaus = implausibilities(bayes, execution.best_model, z)
    score = -execution.chi2_red - 0.5 * len(plaus)
    return Evaluation(
        chi2=execution.chi2,
        chi2_red=execution.chi2_red,
        n_bands=int(row.get("n_bands", ok.sum())),
        residuals=residuals,
        regimes=regimes,
        patterns=patterns,
        edges=edges,
        plausibility=plaus,
        n_effective=float(row.get("n_models_effective", 0.0)),
        best=execution.best_model,
        bayes=bayes,
        score=float(score),
        colours=colours,
        redshift=z,
        limits=limits,
        lyman_continuum=lyman,
    )


def _patterns(regimes: dict[str, dict[str, float]], chi2_red: float, reddest: float = 0.0) -> list[str]:
    """``reddest``: mean residual of the two reddest bands beyond 1 µm rest."""
    out = []
    m = {k: (v["mean"] if v["n"] else 0.0) for k, v in regimes.items()}
    for name in m:
        if regimes[name]["n"] and m[name] <= -PATTERN_SIGMA:
            out.append(f"{name}_overpredicted")
        elif regimes[name]["n"] and m[name] >= PATTERN_SIGMA:
            out.append(f"{name}_underpredicted")
    uv = [m[k] for k in ("FUV", "NUV") if regimes[k]["n"]]
    if uv and regimes["optical"]["n"]:
        if np.mean(uv) <= -PATTERN_SIGMA and m["optical"] > -1:
            out.append("uv_too_blue")  # model UV too bright for the optical: more dust or older stars
        if np.mean(uv) >= PATTERN_SIGMA and m["optical"] < 1:
            out.append("uv_too_red")  # observed UV brighter: less dust, younger stars or a burst
    ir = [m[k] for k in ("NIR", "MIR", "FIR") if regimes[k]["n"]]
    # hot dust the galaxy model lacks (an AGN): a clear IR excess, or a poor fit whose IR sits above the
    # model and whose reddest bands are well above it
    if (
        ir
        and abs(m["optical"]) < PATTERN_SIGMA
        and (max(ir) >= PATTERN_SIGMA or (chi2_red > 2 and max(ir) >= 0.8 and reddest >= PATTERN_SIGMA))
    ):
        out.append("infrared_excess")
    if chi2_red > 3 and not out:
        out.append("poor_fit_no_pattern")
    if chi2_red <= GOOD_CHI2_RED:
        out.append("good_fit")
    return out


def _rest_red_edge_a(band: str, z: float) -> float:
    """The reddest rest-frame wavelength (Å) where ``band`` transmits ≥ 1 % of its peak."""
    f = get_filter(band)
    on = f.transmission >= 0.01 * np.max(f.transmission)
    return float(f.wavelength[on][-1]) / (1 + z)


def _lyman_continuum(source: Source, residuals: np.ndarray) -> list[dict[str, Any]]:
    """Bands wholly below rest 912 Å with a ≥ ``LYMAN_SNR`` detection the model misses by ≥ 3σ."""
    out = []
    for j, band in enumerate(source.bands):
        flux, err = source.flux[j], source.err[j]
        if source.upper_limit[j] or not (np.isfinite(flux) and err > 0) or flux / err < LYMAN_SNR:
            continue
        if _rest_red_edge_a(band, source.redshift) < LYMAN_LIMIT_A and residuals[j] >= 3:
            out.append({"band": band, "snr": float(flux / err), "residual": float(residuals[j])})
    return out


def _no_burst(best_model: dict[str, dict[str, Any]]) -> bool:
    """Whether the best model has no burst (its shape parameters are then moot)."""
    return any(best_model.get(m, {}).get(model.burst[0], 1.0) == 0.0 for m, model in SFH_MODELS.items() if model.burst)


def _limits(execution: Execution, space: SearchSpace) -> list[dict[str, Any]]:
    """Best values at an end of the universe's ladder (not of the configuration's values)."""
    out = []
    no_burst = _no_burst(execution.best_model)
    for m, p, _idx in execution.state.choice:
        ladder = space.ladders[m][p]
        value = execution.best_model.get(m, {}).get(p)
        if len(ladder) < 2 or value is None or (no_burst and p in ("tau_burst", "age_burst", "burst_age")):
            continue
        if space.is_held(execution.state, m, p):
            continue  # the configuration's own value, which only a rule moves
        if p == "f_burst" and value == 0.0:
            continue  # no burst is a physical answer, not a bound
        i = space.nearest_index(m, p, value)
        if i in (0, len(ladder) - 1):
            out.append({"module": m, "param": p, "side": "low" if i == 0 else "high", "value": value})
    return out


def _edges(execution: Execution, space: SearchSpace) -> list[dict[str, Any]]:
    out = []
    state = execution.state
    no_burst = _no_burst(execution.best_model)
    for m, p, idx in state.choice:
        # a single explored value is not an edge, and a burst's shape is moot without a burst
        if len(idx) < 2 or m not in execution.best_model:
            continue
        if no_burst and p in ("tau_burst", "age_burst", "burst_age"):
            continue
        value = execution.best_model[m].get(p)
        if value is None:
            continue
        i = space.nearest_index(m, p, value)
        ladder_len = len(space.ladders[m][p])
        if i == min(idx) and i > 0:
            out.append({"module": m, "param": p, "side": "low", "value": value})
        elif i == max(idx) and i < ladder_len - 1:
            out.append({"module": m, "param": p, "side": "high", "value": value})
    return out
