"""Plots an astronomer expects: observed photometry with errors, the best-fit spectrum and its
components, model fluxes, and a residual panel in σ."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .filters import get_filter  # noqa: E402
from .gridfit import SourceFit  # noqa: E402

_COLOURS = {
    "stellar.old": "tab:red",
    "stellar.young": "tab:blue",
    "nebular.continuum": "tab:green",
    "nebular.lines": "tab:green",
    "dust": "tab:brown",
    "agn.disk": "tab:purple",
    "agn.torus": "tab:purple",
    "agn.polar": "tab:pink",
}


def _inset_pz(ax, fit: SourceFit) -> None:
    """P(z) of a photometric redshift, with its 68 % interval, in the upper left corner."""
    assert fit.pz is not None
    z, p = fit.pz
    inset = ax.inset_axes([0.06, 0.62, 0.3, 0.32])
    inset.plot(z, p, color="tab:blue", lw=0.9)
    lo, hi = fit.row.get("photoz.z_lo68", np.nan), fit.row.get("photoz.z_hi68", np.nan)
    if np.isfinite(lo) and np.isfinite(hi):
        inset.axvspan(lo, hi, color="tab:blue", alpha=0.2, lw=0)
    inset.set_xlabel("z", fontsize=7, labelpad=1)
    inset.set_ylabel("P(z)", fontsize=7, labelpad=1)
    inset.tick_params(labelsize=6)
    inset.set_yticks([])


def plot_fit(fit: SourceFit, path: str | Path | None = None, *, show_components: bool = True):
    """Plot one source's fit; returns the matplotlib Figure (saved to ``path`` when given)."""
    from .best_sed import sed_table

    pivots = np.array([get_filter(b).pivot_wavelength / 1e4 for b in fit.bands])  # µm
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lo, hi = pivots.min() / 1.5, pivots.max() * 1.5
    if fit.sed is not None:
        sed = sed_table(fit)
        w = np.asarray(sed["wavelength"]) / 1e3
        m = (w > lo) & (w < hi)
        ax.plot(w[m], sed["Fnu"][m], color="k", lw=0.8, label="best model")
        if show_components:
            for name in sed.colnames:
                if name in _COLOURS and np.nanmax(sed[name][m]) > 0:
                    ax.plot(w[m], sed[name][m], lw=0.6, alpha=0.7, color=_COLOURS[name], label=name)
    det = np.isfinite(fit.flux) & ~fit.upper_limit
    ax.errorbar(
        pivots[det],
        fit.flux[det],
        yerr=fit.err[det],
        fmt="o",
        ms=4,
        color="tab:orange",
        ecolor="tab:orange",
        label="observed",
        zorder=5,
    )
    lim = np.isfinite(fit.flux) & fit.upper_limit
    if lim.any():
        ax.errorbar(pivots[lim], fit.flux[lim], yerr=0.3 * fit.flux[lim], uplims=True, fmt="v", color="tab:orange")
    if fit.best.fluxes is not None:
        ax.plot(pivots, fit.best.fluxes, "s", mfc="none", mec="k", ms=6, label="model fluxes", zorder=4)
        res = fit.residuals
        axr.axhline(0, color="k", lw=0.6)
        axr.fill_between([lo, hi], -1, 1, color="0.9")
        axr.plot(pivots[det], res[det], "o", color="tab:orange", ms=4)
    good = fit.flux[det]
    if good.size:
        top = max(np.nanmax(good + fit.err[det]), np.nanmax(fit.best.fluxes) if fit.best.fluxes is not None else 0)
        bottom = np.nanmin(good[good > 0]) if np.any(good > 0) else top * 1e-3
        ax.set_ylim(bottom / 10, top * 5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylabel(r"$F_\nu$ [mJy]")
    chi = fit.row.get("best.reduced_chi_square", np.nan)
    mass = fit.row.get("bayes.stellar.m_star", np.nan)
    ztext = f"z={fit.redshift:.3f}" if np.isfinite(fit.redshift) else f"z_phot={fit.model_redshift:.3f}"
    if fit.pz is not None:
        _inset_pz(ax, fit)
    ax.set_title(
        f"{fit.id}  {ztext}  "
        + r"$\chi^2_\nu$"
        + f"={chi:.2f}  "
        + r"$\log M_\star$"
        + f"={np.log10(mass) if mass > 0 else np.nan:.2f}",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="best", ncol=2)
    axr.set_xlabel(r"observed wavelength [$\mu$m]")
    axr.set_ylabel(r"(obs$-$model)/$\sigma$" + (f" (σ ⊕ {fit.additionalerror:g} F)" if fit.additionalerror else ""))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
