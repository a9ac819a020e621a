"""Agent fits of whole catalogues: one tree search per source, results in CIGALE-like columns,
a trace (JSON and Markdown) and a plot per source."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from tqdm.auto import tqdm

from ..catalog import Catalog
from ..gridfit import SourceFit
from ..likelihood import bayes_values
from ..model_grid import ModelGrid
from ..plausibility import estimate_warnings
from .distill import distill
from .execute import Source
from .policy import ExpertPolicy, Policy
from .search import Budget, SearchResult, search
from .space import SearchSpace

__all__ = ["AgentResults", "agent_fit_catalog", "result_row", "rows_table", "write_agent_results"]

log = logging.getLogger(__name__)


@dataclass
class AgentResults:
    table: Table
    searches: list[SearchResult]
    space: SearchSpace


def misfit_sigma(chi2: float, dof: int) -> float:
    """The significance of a misfit: χ² with ``dof`` degrees of freedom as a one-sided Gaussian σ
    (0 for a fit as good as its errors; large where features stay unexplained). Ranks anomalies."""
    from scipy.stats import chi2 as chi2_dist
    from scipy.stats import norm

    if not np.isfinite(chi2) or dof < 1:
        return float("inf") if not np.isfinite(chi2) else 0.0
    log_p = chi2_dist.logsf(chi2, dof)
    if np.isfinite(log_p) and log_p > -700:
        return float(max(-norm.ppf(np.exp(log_p)), 0.0))
    # far in the tail: the Wilson–Hilferty normal approximation of χ²
    k = float(dof)
    return float(((chi2 / k) ** (1 / 3) - (1 - 2 / (9 * k))) / np.sqrt(2 / (9 * k)))


def result_row(res: SearchResult) -> dict[str, Any]:
    ex = res.best.execution
    row: dict[str, Any] = {"id": res.source.id, "redshift": res.source.redshift}
    row.update({k: v for k, v in ex.row.items() if k != "models_evaluated"})
    # the estimates come from the completed posterior box around the best model, not the best node
    row.update(res.estimate)
    row.update(
        {
            "anomaly": res.anomaly,
            "anomaly_reason": res.anomaly_reason,
            # how significant what stays unexplained is: the best χ²'s tail probability as Gaussian σ
            "misfit_sigma": misfit_sigma(res.best.evaluation.chi2, res.best.evaluation.n_bands - 1),
            "warnings": "; ".join(estimate_warnings(bayes_values(row), ex.best_model, res.source.redshift)),
            "models_evaluated": res.models_evaluated,
            "steps": res.steps,
            "stop_reason": res.stop_reason,
            "modules": "+".join(res.best.state.modules),
            "policy": res.policy,
            "tokens": res.tokens,
            "llm_cost_usd": res.cost_usd,
            "patterns": ",".join(res.best.evaluation.patterns),
            # best values at the end of the allowed range: the estimate there is bounded by the prior
            "at_limits": ",".join(f"{e['module']}.{e['param']}={e['value']:g}" for e in res.best.evaluation.limits),
        }
    )
    row.update(res.extra_row)
    # every model of a first look over redshift counts: a photometric redshift's, or the one that
    # tried an anomaly at other redshifts
    row["models_evaluated"] = (
        res.models_evaluated
        + int(res.extra_row.get("photoz.first_look_models", 0))
        + int(res.extra_row.get("photoz.other_search_models", 0))
        + int(res.extra_row.get("other_redshift.models", 0))
    )
    if "photoz.searched_at" in res.extra_row:  # a photometric redshift: none was given
        row["redshift"] = np.nan
    return row


def agent_fit_catalog(
    catalog: Catalog,
    space: SearchSpace,
    policy: Policy | None = None,
    budget: Budget | None = None,
    knowledge: Any | None = None,
    learn: bool = False,
    progress: bool = True,
    seed: int = 0,
    critic: Any | None = None,
) -> AgentResults:
    """Search every source; with ``learn`` each finished search is distilled into ``knowledge``."""
    policy = policy or ExpertPolicy()
    bands = [b for b in space.bands if b in catalog.bands] if space.bands else list(catalog.bands)
    if not bands:
        raise ValueError("no band of the search space is in the catalogue")
    space.bands = bands
    searches, failed = [], []
    for i in tqdm(range(len(catalog)), desc=f"agent fit ({policy.name})", unit="src", disable=not progress):
        src = Source.from_catalog(catalog, i, bands)
        try:
            if np.isfinite(src.redshift):
                res = search(src, space, policy, budget, knowledge=knowledge, seed=seed)
            else:  # a first look spanning redshift, then the search at the surviving redshifts
                from .photoz_search import search_without_redshift

                res = search_without_redshift(
                    src,
                    space,
                    policy,
                    lambda s: search(
                        s, space, policy, budget, knowledge=knowledge, seed=seed, check_other_redshift=False
                    ),
                )
        except Exception as exc:  # one source's failure must not lose the others' work
            log.exception("source %s: search failed", src.id)
            failed.append(
                {
                    "id": src.id,
                    "redshift": src.redshift,
                    "anomaly": True,
                    "models_evaluated": 0,
                    "steps": 0,
                    "anomaly_reason": f"search failed: {type(exc).__name__}: {exc}",
                }
            )
            continue
        if learn and knowledge is not None:
            distill(res, knowledge, words=critic)
        searches.append(res)
    rows = [result_row(r) for r in searches]
    if critic is not None:  # an LLM's verdict on each best fit, next to the numbers
        from ..llm.backends import LLMError
        from ..llm.roles import critique

        for row, res in zip(rows, searches):
            try:
                c = critique(critic, res.best.evaluation)
                row.update(critique_verdict=c.verdict, critique_notes=c.notes, critique_tokens=c.tokens)
            except LLMError as exc:
                row.update(critique_verdict="", critique_notes=f"no critique: {str(exc)[:120]}", critique_tokens=0)
    return AgentResults(rows_table(rows + failed), searches, space)


def rows_table(rows: list[dict[str, Any]]) -> Table:
    """One row per source; columns in first-seen order, NaN where a row lacks one."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    return Table({k: [r.get(k, np.nan) for r in rows] for k in keys})


def source_fit(res: SearchResult, space: SearchSpace) -> SourceFit:
    """A SourceFit (for plots and SED files) of a search's best model."""
    src, ex = res.source, res.best.execution
    cfg = space.to_config(res.best.state)
    z = round(src.redshift, 2)
    fit = SourceFit(
        src.id,
        src.redshift,
        z,
        src.bands,
        src.flux,
        src.err,
        src.upper_limit,
        ex.best,
        ex.row,
        ex.best_model,
        additionalerror=space.additionalerror,
    )
    if ex.best_model:
        fit.sed = ModelGrid(cfg, src.bands).sed(ex.best_model, z)
    return fit


def write_agent_results(results: AgentResults, out_dir: str | Path, plots: bool = True, progress: bool = True) -> Path:
    from ..best_sed import sed_table
    from ..outputs import file_stem, write_table
    from ..plotting import plot_fit

    out = Path(out_dir)
    (out / "traces").mkdir(parents=True, exist_ok=True)
    write_table(results.table, out)
    for res in tqdm(results.searches, desc="writing traces and plots", unit="src", disable=not progress):
        safe = file_stem(res.source.id)
        (out / "traces" / f"{safe}.json").write_text(res.trace_json())
        (out / "traces" / f"{safe}.md").write_text(res.trace_markdown())
        if plots and res.best.execution.best_model:
            fit = source_fit(res, results.space)
            sed_table(fit).write(out / f"{safe}_best_model.fits", overwrite=True)
            plot_fit(fit, out / f"{safe}.png")
    summary = {
        "sources": len(results.searches),
        "anomalies": int(np.sum(results.table["anomaly"])),
        # anomalies ranked by how significant what stays unexplained is
        "anomalies_ranked": [
            {"id": str(r["id"]), "misfit_sigma": float(r["misfit_sigma"]), "reason": str(r["anomaly_reason"])}
            for r in sorted(
                (r for r in results.table if r["anomaly"] and "misfit_sigma" in results.table.colnames),
                key=lambda r: -float(r["misfit_sigma"]),
            )
        ],
        "median_reduced_chi2": float(np.nanmedian(results.table["best.reduced_chi_square"])),
        "median_models_evaluated": float(np.median(results.table["models_evaluated"])),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return out
