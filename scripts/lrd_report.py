"""Write docs/lrd.md from an agent run on the Kokorev et al. (2024) Little Red Dots:

    mephisto-sed fit ../shared/data/kokorev2024_lrd/lrd_table_v1.1.fits --preset kokorev2024_lrd \\
        --out lrd-run --max-models 40000 --max-steps 40 --no-knowledge
    python scripts/lrd_report.py lrd-run [more run folders]
"""

import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

GOOD = 2.0  # reduced χ² of a "good fit" here
WARNING_KINDS = (  # mephisto_sed/plausibility.py's warnings, by their first words
    ("sSFR", "sSFR over 10 Myr above 1e-7/yr"),
    ("instantaneous SFR", "a burst of a few Myr: instantaneous SFR > 5x the 100 Myr average"),
    ("stellar mass", "stellar mass outside 10^6-10^12.5 Msun"),
    ("age", "age older than the Universe at z"),
)


def classify(best: dict, modules: list[str]) -> str:
    agn = best.get("agn", {})
    att = best.get("dustatt_modified_starburst", {}) or best.get("dustatt_calzleit", {})
    ebv_s = (
        att.get("E_BV_lines", 0.0) * att.get("E_BV_factor", 0.44)
        if "E_BV_lines" in att
        else att.get("E_BVs_young", 0.0)
    )
    dusty = ebv_s >= 0.2
    strong_agn = "agn" in modules and agn.get("fracAGN", 0.0) >= 0.3
    if strong_agn and dusty:
        return "AGN + dusty starburst"
    if strong_agn:
        return "AGN-dominated"
    if dusty:
        return "dusty starburst"
    return "stars, little dust"


def _read_runs(runs: list[Path]) -> tuple[list[tuple[Any, dict, str]], dict[str, Path]]:
    """(result row, trace, class) per source, and the run folder each source's files are in."""
    rows, where = [], {}
    for run in runs:
        for r in Table.read(run / "results.csv", format="ascii.csv"):
            path = run / "traces" / f"{r['id']}.json"
            if not path.exists():  # a source whose search failed has no trace
                rows.append((r, {"best": {"model": {}, "modules": []}}, "failed"))
                continue
            tr = json.loads(path.read_text())
            rows.append((r, tr, classify(tr["best"]["model"], tr["best"]["modules"])))
            where[str(r["id"])] = run
    return rows, where


def _copy_examples(good: list, anomalies: list, where: dict[str, Path], docs: Path) -> list[tuple[str, Any]]:
    """One plot per class (and the first anomaly) into docs/lrd/, replacing the last run's; returns
    the examples as (class, result row)."""
    (docs / "lrd").mkdir(parents=True, exist_ok=True)
    for old in (docs / "lrd").glob("*.png"):  # only this run's examples stay
        old.unlink()
    examples = []
    for cls in ("AGN-dominated", "AGN + dusty starburst", "dusty starburst", "stars, little dust"):
        examples += [(cls, p) for p in [r for r, c in good if c == cls][:1]]
    if anomalies:
        examples.append(("anomaly", anomalies[0][0]))
    for _, r in examples:
        src = where.get(str(r["id"]), Path(".")) / f"{r['id']}.png"
        if src.exists():
            shutil.copy(src, docs / "lrd" / f"{r['id']}.png")
    return examples


def main(runs: list[Path], docs: Path) -> None:
    rows, where = _read_runs(runs)
    n = len(rows)
    chi = np.array([float(r["best.reduced_chi_square"]) for r, _, _ in rows])
    anomalies = [(r, tr) for r, tr, _ in rows if str(r["anomaly"]) == "True"]
    good = [(r, c) for (r, _, c), x in zip(rows, chi) if x <= GOOD and str(r["anomaly"]) != "True"]
    classes = Counter(c for _, c in good)
    all_classes = Counter(c for _, _, c in rows)
    examples = _copy_examples(good, anomalies, where, docs)
    models = np.array([int(r["models_evaluated"]) for r, _, _ in rows])
    lines = [
        "# Little Red Dots: what the agents make of them",
        "",
        "The 260 photometric Little Red Dots of Kokorev et al. (2024, ApJ 968, 38) — HST + JWST/NIRCam",
        "fluxes, EAZY photometric redshifts 4 < z < 9 — fitted by the expert agent at their `z_phot`",
        "(`mephisto-sed fit ... --preset kokorev2024_lrd --no-knowledge`, the built-in search space plus the",
        "optional AGN and Calzetti-Leitherer modules, 40,000 models and 40 steps per source at most). Regenerate with",
        "`python scripts/lrd_report.py RUN_DIR...`.",
        "",
        "## Headline numbers",
        "",
        f"* sources: {n}; median models evaluated per source: {np.median(models):,.0f}",
        f"* explained by a good fit (reduced χ² ≤ {GOOD:g}, no anomaly): **{len(good)}** ({len(good) / n:.0%})",
        f"* flagged as anomalies: **{len(anomalies)}** ({len(anomalies) / n:.0%})",
        f"* median best reduced χ²: {np.median(chi):.2f}",
        "",
        "| best configuration | good fits | all sources |",
        "|---|---:|---:|",
    ]
    for cls in ("AGN-dominated", "AGN + dusty starburst", "dusty starburst", "stars, little dust"):
        lines.append(f"| {cls} | {classes.get(cls, 0)} | {all_classes.get(cls, 0)} |")
    lines += [
        "",
        "Classes: *AGN* when the best model holds the AGN with fracAGN ≥ 0.3 of the rest "
        "0.1–10 µm luminosity; *dusty* when the stellar E(B−V) ≥ 0.2.",
        "",
        "## Anomalies",
        "",
    ]
    lines += [
        "An anomaly is a source whose data keep features no allowed physics explained after the search "
        "tried what could explain them; an implausible estimate alone is a warning (below). Ranked by "
        "`misfit_sigma`, the significance of the best fit's χ² as a Gaussian σ.",
        "",
    ]
    reasons = Counter()
    for r, _ in anomalies:
        reason = str(r["anomaly_reason"])
        if "Lyman limit" in reason:
            reasons["flux below the Lyman limit unexplained"] += 1
        if "reduced chi2" in reason:
            reasons["no configuration fits (χ²_red > 5)"] += 1
        if "another redshift fits better" in reason:
            reasons["another redshift fits better by Δχ² ≥ 9 (the EAZY z_phot may be wrong)"] += 1
    for k, v in reasons.most_common():
        lines.append(f"* {k}: {v}")
    moved = [
        r
        for r, _ in anomalies
        if "other_redshift.better" in r.colnames and str(r["other_redshift.better"]) in ("True", "1.0")
    ]
    if moved:
        lines += [
            "",
            "Before an anomaly is reported the source is tried at every other redshift (a first look over "
            "0.01 < z < 7): where one fits better by Δχ² ≥ 9 the reason names it. Those here:",
            "",
            "| id | z_phot (EAZY) | χ² there | other z | χ² there (first look) |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in sorted(moved, key=lambda r: float(r["redshift"])):
            lines.append(
                f"| {r['id']} | {float(r['redshift']):.2f} | {float(r['best.chi_square']):.1f} | "
                f"{float(r['other_redshift.z']):.2f} | {float(r['other_redshift.chi2']):.1f} |"
            )
        lines.append("")
    ranked = sorted(anomalies, key=lambda a: -float(a[0]["misfit_sigma"]) if "misfit_sigma" in a[0].colnames else 0)
    for r, _ in ranked[:10]:
        sig = f", {float(r['misfit_sigma']):.1f} sigma" if "misfit_sigma" in r.colnames else ""
        lines.append(f"  * {r['id']} (z = {float(r['redshift']):.2f}{sig}): {r['anomaly_reason']}")
    warned = [r for r, _, _ in rows if "warnings" in r.colnames and str(r["warnings"]) not in ("", "--", "nan")]
    lines += ["", "## Warnings (implausible estimates, not anomalies)", ""]
    lines.append(f"* sources with a warning: {len(warned)}")
    kinds = Counter()
    for r in warned:
        for w in str(r["warnings"]).split("; "):
            kinds[next((label for key, label in WARNING_KINDS if w.startswith(key)), w)] += 1
    for k, v in kinds.most_common():
        lines.append(f"  * {k}: {v}")
    lines += ["", "## Examples", ""]
    for cls, r in examples:
        lines.append(
            f"**{cls}** — source {r['id']}, z = {float(r['redshift']):.2f}, "
            f"reduced χ² = {float(r['best.reduced_chi_square']):.2f}"
        )
        lines.append("")
        lines.append(f"![{r['id']}](lrd/{r['id']}.png)")
        lines.append("")
    lines += [
        "## Caveats",
        "",
        "* Redshifts are photometric; an LRD at the wrong z will look anomalous.",
        "* The AGN is our simple disk + torus + polar-dust model (docs/physics.md), not a "
        "radiative-transfer grid; at z > 4 NIRCam reaches only the rest optical/near-IR, so the torus "
        "is constrained weakly and the AGN is recognised mostly by its reddened disk.",
        "* Photometry is not corrected for Galactic extinction (as delivered).",
    ]
    (docs / "lrd.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {docs / 'lrd.md'}: {n} sources, {len(good)} good fits, {len(anomalies)} anomalies; {dict(classes)}")


if __name__ == "__main__":
    # usage: lrd_report.py RUN_DIR [RUN_DIR ...]  (several when the catalogue was split across processes)
    main([Path(a) for a in sys.argv[1:]], Path(__file__).resolve().parents[1] / "docs")
