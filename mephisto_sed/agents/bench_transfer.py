"""``mephisto-sed bench transfer``: does knowledge learned on one population help on others?

Knowledge is learned by self-play on one set's training galaxies and used on every set's test
galaxies (each pair, the same set included). Every set is searched in one space, the COSMOS
team's expert grid for 2.5 < z < 3 with each set's own bands, so a rule means the same thing
everywhere and the reference is always that grid's best χ² (cached on disk, as ``bench search``):

* ``cosmos_2.50_2.75`` and ``cosmos_2.75_3.00``: the COSMOS2020 spec-z galaxies, split in redshift;
* ``lrd``: the JWST Little Red Dots of Kokorev et al. (2024) at their photometric redshifts;
* ``bagpipes_uvista``: bagpipes' UltraVISTA example catalogue (its own 12 filter curves, other depths);
* ``mocks_quiescent``: old, quenched, little-dust galaxies at 0.4 < z < 1.2 drawn from the grid —
  a population unlike the star-forming COSMOS set.

Per pair: the median models to reach the tolerance (5 % of the grid's best χ²) and Δχ² ≤ 2, with and
without knowledge, and the fraction of galaxies that reach them in each arm.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..catalog import Catalog, read_catalog
from ..config import Configuration, read_pcigale_ini
from .bench_search import DCHI2_ABSOLUTE, DEFAULT_CATALOG, DEFAULT_INI, _cache_path, reference_cache, reference_chi2
from .execute import Source
from .policy import ExpertPolicy
from .search import Budget, SearchResult, search
from .space import SearchSpace

__all__ = ["TransferSet", "bench_transfer", "transfer_sets", "pair_scores"]

DATA = DEFAULT_CATALOG.parent.parent
UVISTA = DATA / "bagpipes_examples"
UVISTA_BANDS = {  # catalogue column -> bagpipes' curve file (uvista.filt_list)
    "u": "CFHT_u.txt",
    "g": "CFHT_g.txt",
    "r": "CFHT_r.txt",
    "i": "CFHT_i+i2.txt",
    "z": "CFHT_z.txt",
    "z_sub": "subaru_z",
    "Y": "VISTA_Y.txt",
    "J": "VISTA_J.txt",
    "H": "VISTA_H.txt",
    "K": "VISTA_Ks.txt",
    "IRAC1": "IRAC1",
    "IRAC2": "IRAC2",
}
QUIESCENT = {  # on the COSMOS grid's own values: short τ, old, no burst, little dust
    "tau_main": [50.0, 100.0, 200.0],
    "age_main": [2000.0, 2500.0],
    "f_burst": [0.0],
    "E_BV_lines": [0.0, 0.05, 0.1],
}


@dataclass
class TransferSet:
    """Galaxies of one population: ``test`` to search, ``train`` to learn from (disjoint)."""

    name: str
    space: SearchSpace
    test: list[Source]
    train: list[Source]
    cache: Path | None  # the full-grid reference per test galaxy, on disk


def _space(cfg: Configuration, bands: list[str]) -> SearchSpace:
    space = SearchSpace.from_config(cfg)
    space.bands = list(bands)
    return space


def _cache(name: str, cfg_text: str, bands: list[str]) -> Path:
    return reference_cache(cfg_text, name, ",".join(bands))


def _split(cat: Catalog, bands: list[str], rows: list[int], n: int, n_train: int) -> tuple[list[Source], list[Source]]:
    sources = [Source.from_catalog(cat, i, bands) for i in rows[: n + n_train]]
    return sources[:n], sources[n:]


def read_uvista(path: Path = UVISTA / "UltraVISTA_catalogue.cat") -> Catalog:
    """bagpipes' UltraVISTA example: fluxes in erg s⁻¹ cm⁻² Hz⁻¹ (-99: not observed), its own curves
    registered as ``bagpipes.uvista.<column>``, the catalogue's ``med_zphot`` as the redshift."""
    from ..filters import register_filter_file

    header = path.read_text().splitlines()[0].lstrip("#").split()
    data = np.loadtxt(path)
    col = {name: data[:, i] for i, name in enumerate(header)}
    bands = []
    for column, curve in UVISTA_BANDS.items():
        bands.append(f"bagpipes.uvista.{column}")
        register_filter_file(bands[-1], path.parent / "uvista" / curve)
    flux = np.column_stack([col[c] for c in UVISTA_BANDS])
    err = np.column_stack([col[f"{c}_err"] for c in UVISTA_BANDS])
    missing = (flux <= -99) | (err <= 0) | ~np.isfinite(err)
    flux = np.where(missing, np.nan, flux * 1e26)  # erg/s/cm²/Hz -> mJy
    err = np.where(missing, np.nan, err * 1e26)
    ids = np.array([str(int(i)) for i in col["ID"]])
    return Catalog(ids, col["med_zphot"], bands, flux, err, np.zeros_like(missing), source_file=str(path))


def transfer_sets(n: int, n_train: int, seed: int = 0) -> list[TransferSet]:
    """The five populations, each with ``n`` test and ``n_train`` training galaxies."""
    from ..mock import make_mock_catalog

    cfg_text = DEFAULT_INI.read_text()
    cfg = read_pcigale_ini(DEFAULT_INI)
    cosmos = read_catalog(DEFAULT_CATALOG, on_unknown="skip")
    bands = [b for b in cfg.bands if b in cosmos.bands] if cfg.bands else list(cosmos.bands)
    out = []
    for lo, hi in ((2.5, 2.75), (2.75, 3.0)):
        rows = [i for i in range(len(cosmos)) if lo <= cosmos.redshift[i] < hi]
        test, train = _split(cosmos, bands, rows, n, n_train)
        out.append(
            TransferSet(
                f"cosmos_{lo:.2f}_{hi:.2f}", _space(cfg, bands), test, train, _cache_path(DEFAULT_INI, DEFAULT_CATALOG)
            )
        )
    lrd = read_catalog(DATA / "kokorev2024_lrd" / "lrd_table_v1.1.fits", preset="kokorev2024_lrd", on_unknown="skip")
    rows = [i for i in range(len(lrd)) if np.isfinite(lrd.redshift[i]) and lrd.redshift[i] > 0]
    test, train = _split(lrd, list(lrd.bands), rows, n, n_train)
    out.append(TransferSet("lrd", _space(cfg, list(lrd.bands)), test, train, _cache("lrd", cfg_text, list(lrd.bands))))
    uvista = read_uvista()
    k = min(n, len(uvista) // 2)  # ten galaxies: half to test, half to learn from
    test, train = _split(uvista, list(uvista.bands), list(range(len(uvista))), k, len(uvista) - k)
    out.append(
        TransferSet(
            "bagpipes_uvista",
            _space(cfg, list(uvista.bands)),
            test,
            train,
            _cache("uvista", cfg_text, list(uvista.bands)),
        )
    )
    quiet = {m: dict(p) for m, p in cfg.params.items()}
    for params in quiet.values():
        for p in params:
            if p in QUIESCENT:
                params[p] = list(QUIESCENT[p])
    mock_cfg = Configuration.from_modules(quiet, additionalerror=cfg.additionalerror)
    mocks, _ = make_mock_catalog(mock_cfg, bands, n + n_train, z_range=(0.4, 1.2), seed=seed, snr=20.0, snr_ir=8.0)
    test, train = _split(mocks, bands, list(range(len(mocks))), n, n_train)
    out.append(TransferSet("mocks_quiescent", _space(cfg, bands), test, train, _cache("mocks", cfg_text, bands)))
    return out


def _row(res: SearchResult, ref: dict[str, Any], tolerance: float) -> dict[str, Any]:
    return {
        "id": res.source.id,
        "reference_chi2": ref["chi2"],
        "agent_chi2": res.best.chi2,
        "models_to_tolerance": res.models_to_reach(ref["chi2"] * (1 + tolerance)),
        "models_to_dchi2_2": res.models_to_reach(ref["chi2"] + DCHI2_ABSOLUTE),
        "models_evaluated": res.models_evaluated,
    }


def pair_scores(without: list[dict[str, Any]], with_kb: list[dict[str, Any]]) -> dict[str, Any]:
    """Median models to tolerance (the search's whole count where it never got there) with and
    without knowledge, the reduction, and the fraction within tolerance in each arm; the same at
    Δχ² ≤ 2."""
    out: dict[str, Any] = {}
    for key, suffix in (("models_to_tolerance", ""), ("models_to_dchi2_2", "_dchi2_2")):
        med = [float(np.median([r[key] or r["models_evaluated"] for r in rows])) for rows in (without, with_kb)]
        out[f"median_models_without{suffix}"], out[f"median_models_with{suffix}"] = med
        out[f"reduction{suffix}"] = 1 - med[1] / med[0] if med[0] else 0.0
        out[f"within_without{suffix}"] = float(np.mean([r[key] is not None for r in without]))
        out[f"within_with{suffix}"] = float(np.mean([r[key] is not None for r in with_kb]))
    return out


def bench_transfer(
    sets: list[TransferSet] | None = None,
    n: int = 10,
    n_train: int = 20,
    tolerance: float = 0.05,
    max_models: int = 190_000,
    progress: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Every (train, test) pair of ``sets`` (default: :func:`transfer_sets`)."""
    from .knowledge import KnowledgeBase
    from .selfplay import selfplay

    t0 = time.perf_counter()
    sets = sets if sets is not None else transfer_sets(n, n_train, seed)
    policy, budget = ExpertPolicy(), Budget(max_models=max_models)
    refs = {s.name: reference_chi2(s.space, s.test, s.cache, progress) for s in sets}

    def run(test: TransferSet, kb: Any, label: str) -> list[dict[str, Any]]:
        rows = []
        for src in tqdm(test.test, desc=label, unit="src", disable=not progress):
            res = search(src, test.space, policy, budget, knowledge=kb, seed=seed)
            rows.append(_row(res, refs[test.name][src.id], tolerance))
        return rows

    without = {s.name: run(s, None, f"{s.name} without knowledge") for s in sets}
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for train in sets:
            kb = KnowledgeBase(path=Path(tmp) / train.name)
            selfplay(train.train, train.space, policy, kb, budget=budget, progress=progress)
            rules = kb.count()
            for test in sets:
                with_kb = run(test, kb, f"{test.name} with {train.name}'s knowledge")
                pairs.append(
                    {
                        "train": train.name,
                        "test": test.name,
                        "same_population": train.name == test.name,
                        "rules": rules,
                        **pair_scores(without[test.name], with_kb),
                        "per_source": {"without_knowledge": without[test.name], "with_knowledge": with_kb},
                    }
                )
            kb.close()
    return {
        "benchmark": "transfer",
        "sets": {s.name: {"test": len(s.test), "train": len(s.train), "bands": len(s.space.bands)} for s in sets},
        "tolerance": tolerance,
        "dchi2_absolute": DCHI2_ABSOLUTE,
        "max_models": max_models,
        "pairs": pairs,
        "min_reduction": float(min(p["reduction"] for p in pairs)),
        "pairs_never_worse": float(
            np.mean([p["reduction"] >= 0 and p["within_with"] >= p["within_without"] for p in pairs])
        ),
        "seconds": time.perf_counter() - t0,
    }
