"""χ² fitting with CIGALE's conventions, streaming over model chunks.

* The mass scale is solved analytically per model: s = Σ w f_o f_m / Σ w f_m², w = 1/σ²;
  σ² includes ``additionalerror`` × flux in quadrature. Models with s ≤ 0 are excluded.
* Upper limits follow CIGALE's ``lim_flag = noscaling``: they do not set the scale but add the
  normalised term -2 ln[½ (1 + erf((f_lim - s f_m)/(√2 σ)))] = -2 ln Φ((f_lim - s f_m)/σ) to χ²
  (Sawicki 2012, as a current CIGALE computes it): a limit the model satisfies costs ≈ 0, one it
  meets exactly costs 2 ln 2, and χ² does not depend on the flux unit.
* Reduced χ² = χ² / (N - 1), N the bands used.
* Bayesian estimates (``bayes.*``) are likelihood-weighted means and standard deviations over
  every model, accumulated with a running χ² minimum so any grid size streams in bounded memory.
* Mass and SFRs are also estimated in log (:data:`LOG_ESTIMATES`, CIGALE's ``_log`` variables:
  ``bayes.stellar.m_star_log`` ± ``_err``, dex): the weighted mean of the log is not the log of the
  weighted mean, and a posterior that is Gaussian in log has a linear mean ± σ that covers ~75 %
  of it, not 68 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from .arrays import FloatArray
from .model_grid import EXTENSIVE, ModelChunk

# the burst's shape parameters: moot (one copy per SFH) where f_burst = 0
BURST_SHAPE = ("sfh.tau_burst", "sfh.age_burst", "sfh.burst_age")

# estimated in log10 as well, as CIGALE's "stellar.m_star_log": the log of zero is undefined, so
# values below LOG_FLOOR (M☉, M☉/yr) count as LOG_FLOOR
LOG_ESTIMATES = ("stellar.m_star", "sfh.sfr", "sfh.sfr10Myrs", "sfh.sfr100Myrs")
LOG_FLOOR = 1e-10

__all__ = ["SourceData", "FitAccumulator", "BestModel", "bayes_values", "fit_sigma", "LOG_ESTIMATES"]


def fit_sigma(err: np.ndarray, flux: np.ndarray, additionalerror: float) -> np.ndarray:
    """The σ of χ² (mJy): catalogue error ⊕ ``additionalerror`` × flux, in quadrature. Residuals use it too."""
    return np.sqrt(err**2 + (additionalerror * flux) ** 2)


@dataclass
class SourceData:
    """Observations of sources that share one model redshift (mJy)."""

    flux: np.ndarray  # [s, b], NaN where missing
    err: np.ndarray  # [s, b]
    upper_limit: np.ndarray  # [s, b] bool
    additionalerror: float = 0.1

    def __post_init__(self) -> None:
        det = np.isfinite(self.flux) & np.isfinite(self.err) & ~self.upper_limit
        sigma2 = fit_sigma(self.err, self.flux, self.additionalerror) ** 2
        self.w = np.where(det, 1.0 / np.where(det, sigma2, 1.0), 0.0)
        self.obs = np.where(det, self.flux, 0.0)
        self.n_det = det.sum(axis=1)
        self.lim = np.isfinite(self.flux) & self.upper_limit
        self.n_used = self.n_det + self.lim.sum(axis=1)
        self.a = np.sum(self.w * self.obs**2, axis=1)
        self.wo = self.w * self.obs


@dataclass
class BestModel:
    chi2: float = np.inf
    scale: float = np.nan
    fluxes: FloatArray | None = None  # scaled model fluxes, mJy
    params: dict[str, Any] = field(default_factory=dict)
    props: dict[str, float] = field(default_factory=dict)

    @property
    def redshift(self) -> float:
        """The model's redshift where its chunk carried one (photometric redshifts), else NaN."""
        return float(self.params.get("universe", {}).get("redshift", np.nan))


class FitAccumulator:
    """Accumulates χ², best models and Bayesian moments for several sources over chunks."""

    def __init__(self, data: SourceData, track_blocks: bool = False, track_marginals: bool = False):
        self.data = data
        # Σ likelihood per value of every grid parameter ("sfh.tau_main", "nebular.logU"...): the
        # agents read where the posterior mass lies to complete a neighbourhood before estimating
        self.track_marginals = track_marginals
        self.marginals: dict[str, dict[float, np.ndarray]] = {}
        # and Σ likelihood × log10 M* per value: the mean log M* at each value, so the agents know
        # which parameters the mass depends on (those must not be held at one value to save models)
        self.mass_marginals: dict[str, dict[float, np.ndarray]] = {}
        # the best model of every chunk (one block of non-SFH parameters): other basins for the agents
        self.track_blocks = track_blocks
        self.block_best: list[list[tuple[float, dict[str, Any]]]] = [[] for _ in range(data.flux.shape[0])]
        s = data.flux.shape[0]
        self.chi2_min = np.full(s, np.inf)
        self.sum_l = np.zeros(s)
        self.sum_l2 = np.zeros(s)  # for the effective number of well-fitting models
        self.moments: dict[str, list[np.ndarray]] = {}
        # Σ likelihood per redshift, for chunks that carry one (photometric redshifts: P(z))
        self.pz: dict[float, np.ndarray] = {}
        self.best = [BestModel() for _ in range(s)]
        self.n_models = 0

    def chi2(self, fluxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """χ² [s, m] and scale [s, m] of models ``fluxes`` [m, b] (mJy per M☉)."""
        d = self.data
        b = d.wo @ fluxes.T
        c = d.w @ (fluxes**2).T
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = b / c
            chi2 = d.a[:, None] - b * scale
        chi2 = np.where(scale > 0, np.maximum(chi2, 0.0), np.inf)
        if d.lim.any():
            for i in np.flatnonzero(d.lim.any(axis=1)):
                j = np.flatnonzero(d.lim[i])
                sig = d.err[i, j][None, :]
                model = scale[i][:, None] * fluxes[:, j]
                # log Φ stays finite for a badly violated limit, where 1 + erf underflows to 0
                chi2[i] += -2 * np.sum(log_ndtr((d.flux[i, j][None, :] - model) / sig), axis=1)
        return chi2, scale

    def add(self, chunk: ModelChunk) -> None:
        chi2, scale = self.chi2(chunk.fluxes)
        self.n_models += len(chunk)
        new_min = np.minimum(self.chi2_min, chi2.min(axis=1))
        # rescale previous sums to the new reference χ²
        with np.errstate(invalid="ignore"):
            shift = np.where(np.isfinite(self.chi2_min), np.exp(-(self.chi2_min - new_min) / 2), 0.0)
        shift = np.where(np.isfinite(new_min), shift, 0.0)
        self.sum_l *= shift
        self.sum_l2 *= shift**2
        for mom in self.moments.values():
            mom[0] *= shift
            mom[1] *= shift
        for per_value in [*self.marginals.values(), *self.mass_marginals.values(), self.pz]:
            for v in per_value.values():
                v *= shift
        self.chi2_min = new_min
        like = np.exp(-(chi2 - new_min[:, None]) / 2)
        like[~np.isfinite(like)] = 0.0
        self.sum_l += like.sum(axis=1)
        self.sum_l2 += (like**2).sum(axis=1)
        z = chunk.params.get("universe", {}).get("redshift")
        if z is not None:
            self.pz[z] = self.pz.get(z, 0.0) + like.sum(axis=1)
        props = self._chunk_props(chunk)
        live = like > 0
        for key, value in props.items():
            x = value[None, :] * scale if key in EXTENSIVE else np.broadcast_to(value, like.shape)
            self._moment(key, like, np.where(live, x, 0.0))
        log_scale = np.log10(np.where(live, scale, 1.0))  # one log of the scales for every key
        tiny = np.finfo(float).tiny  # per M☉ formed, an SFR may be 0: its log is only bounded here
        logs = {
            key: np.log10(np.maximum(props[key], tiny))[None, :] + log_scale for key in LOG_ESTIMATES if key in props
        }
        for key, log_value in logs.items():
            # the floor applies to the scaled value (M☉, M☉/yr), not to the one per M☉ formed
            self._moment(f"{key}_log", like, np.where(live, np.maximum(log_value, np.log10(LOG_FLOOR)), 0.0))
        if self.track_marginals:
            self._add_marginals(chunk, like, self.marginals)
            if "stellar.m_star" in logs:
                self._add_marginals(chunk, like * np.where(live, logs["stellar.m_star"], 0.0), self.mass_marginals)
        best_idx = chi2.argmin(axis=1)
        if self.track_blocks:
            for i, k in enumerate(best_idx):
                if np.isfinite(chi2[i, k]):
                    self.block_best[i].append((float(chi2[i, k]), _model_params(chunk, k)))
        for i, k in enumerate(best_idx):
            if chi2[i, k] < self.best[i].chi2:
                s = scale[i, k]
                self.best[i] = BestModel(
                    chi2=float(chi2[i, k]),
                    scale=float(s),
                    fluxes=chunk.fluxes[k] * s,
                    params=_model_params(chunk, k),
                    props={key: float(v[k] * s if key in EXTENSIVE else v[k]) for key, v in props.items()},
                )

    def _moment(self, key: str, like: np.ndarray, x: np.ndarray) -> None:
        mom = self.moments.setdefault(key, [np.zeros_like(self.sum_l), np.zeros_like(self.sum_l)])
        mom[0] += np.sum(like * x, axis=1)
        mom[1] += np.sum(like * x * x, axis=1)

    @staticmethod
    def _add_marginals(chunk: ModelChunk, like: np.ndarray, into: dict[str, dict[float, np.ndarray]]) -> None:
        """Σ ``like`` [s, m] per value of every parameter of the chunk's models, added ``into``."""
        total = like.sum(axis=1)
        for cat, params in chunk.params.items():
            for k, v in (params or {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    per_value = into.setdefault(f"{cat}.{k}", {})
                    per_value[float(v)] = per_value.get(float(v), 0.0) + total
        burst = chunk.props.get("sfh.f_burst")
        for key in _sfh_param_keys(chunk):
            values = chunk.props[key]
            weights = like
            if key in BURST_SHAPE and burst is not None:  # without a burst its shape is moot (one copy)
                weights = like * (burst > 0)
            uniq, inv = np.unique(values, return_inverse=True)
            per_value = into.setdefault(key, {})
            for i in range(like.shape[0]):
                sums = np.bincount(inv, weights=weights[i], minlength=uniq.size)
                for u, w in zip(uniq.tolist(), sums):
                    arr = per_value.setdefault(float(u), np.zeros(like.shape[0]))
                    arr[i] += w

    def redshift_pdf(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Source ``i``'s Σ likelihood per redshift (photo-z chunks), on the sorted redshift grid."""
        z = np.array(sorted(self.pz))
        return z, np.array([self.pz[v][i] for v in z])

    def posterior(self, i: int) -> tuple[float, dict[str, list[list[float]]]]:
        """Source ``i``'s Σ likelihood (relative to its best χ²) and, when tracked, the Σ likelihood
        per value of every parameter as ``{key: [[value, weight], ...]}`` (JSON-safe)."""
        marg = {
            key: [[v, float(w[i])] for v, w in sorted(per_value.items())] for key, per_value in self.marginals.items()
        }
        return float(self.sum_l[i]), marg

    def log_mass_by_value(self, i: int) -> dict[str, list[list[float]]]:
        """Source ``i``'s likelihood-weighted mean log10 M* at each value of every parameter (tracked
        with the marginals): ``{key: [[value, mean log M*], ...]}``, values without likelihood left out."""
        out: dict[str, list[list[float]]] = {}
        for key, per_value in self.mass_marginals.items():
            weights = self.marginals[key]  # filled by the same loop, value for value
            out[key] = [[v, float(x[i] / weights[v][i])] for v, x in sorted(per_value.items()) if weights[v][i] > 0]
        return out

    @staticmethod
    def _chunk_props(chunk: ModelChunk) -> dict[str, np.ndarray]:
        n = len(chunk)
        props = dict(chunk.props)
        consts = {
            "stellar.metallicity": chunk.params["stellar"]["metallicity"],
            "attenuation.E_BV_lines": chunk.params["attenuation"].get("E_BV_lines"),
            "attenuation.E_BVs": chunk.params["attenuation"].get("E_BVs"),
        }
        for cat, names in (
            ("universe", ("redshift",)),
            ("photoz", ("lya_case_b",)),  # a photo-z model's Lyα choice (photoz.lya_variants)
            ("nebular", ("logU", "zgas", "f_esc", "f_dust")),
            ("dust", ("qpah", "umin", "gamma")),
            ("agn", ("fracAGN", "EBV")),
        ):
            for k in names:
                if k in chunk.params.get(cat, {}):
                    consts[f"{cat}.{k}"] = chunk.params[cat][k]
        for k, v in consts.items():
            if v is not None:
                props[k] = np.full(n, float(v))
        return props

    def results(self) -> list[dict[str, Any]]:
        """One dict of CIGALE-like columns per source."""
        out = []
        d = self.data
        for i, best in enumerate(self.best):
            row: dict[str, Any] = {
                "best.chi_square": best.chi2,
                "best.reduced_chi_square": best.chi2 / max(int(d.n_used[i]) - 1, 1),
                "n_bands": int(d.n_used[i]),
                "models_evaluated": self.n_models,
                # (Σ L)² / Σ L²: how many models carry the likelihood
                "n_models_effective": float(self.sum_l[i] ** 2 / self.sum_l2[i]) if self.sum_l2[i] > 0 else 0.0,
            }
            for key, mom in self.moments.items():
                mean = mom[0][i] / self.sum_l[i] if self.sum_l[i] > 0 else np.nan
                var = mom[1][i] / self.sum_l[i] - mean**2 if self.sum_l[i] > 0 else np.nan
                row[f"bayes.{key}"] = mean
                row[f"bayes.{key}_err"] = float(np.sqrt(max(var, 0.0))) if np.isfinite(var) else np.nan
            for key, v in best.props.items():
                row[f"best.{key}"] = v
            out.append(row)
        return out


def _sfh_param_keys(chunk: ModelChunk) -> list[str]:
    """The SFH's grid parameters among a chunk's per-model properties ("sfh.tau_main"...; not its SFRs)."""
    return [key for key in chunk.props if key.startswith("sfh.") and not key.startswith("sfh.sfr")]


def _model_params(chunk: ModelChunk, k: int) -> dict[str, Any]:
    sfh = {key.split(".", 1)[1]: float(chunk.props[key][k]) for key in _sfh_param_keys(chunk)}
    return {"sfh": sfh, **{c: dict(v) for c, v in chunk.params.items()}}


def bayes_values(row: dict[str, Any]) -> dict[str, float]:
    """The ``bayes.*`` estimates of a results row, without prefix or errors."""
    return {k[6:]: float(v) for k, v in row.items() if k.startswith("bayes.") and not k.endswith("_err")}
