"""``mephisto-sed`` command line: grid fits, filter lists, configuration files, benchmarks."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import FLUX_UNITS, PRESETS, CatalogError, read_catalog
from .config import DEFAULT_CONFIG, ConfigError, Configuration, read_pcigale_ini, write_pcigale_ini
from .filters import UnknownFilterError
from .settings import settings

if TYPE_CHECKING:
    from .llm.llm_policy import CostModel

log = logging.getLogger("mephisto_sed")


def example_catalog_path() -> Path:
    return Path(str(resources.files("mephisto_sed") / "data" / "example_catalogue.txt"))


def _load_config(path: str | None) -> Configuration:
    if path is None:
        return Configuration.from_modules(DEFAULT_CONFIG)
    return read_pcigale_ini(path)


def cmd_grid(args: argparse.Namespace) -> int:
    import numpy as np

    from .gridfit import fit_catalog
    from .outputs import SourceFiles, write_table

    cfg = _load_config(args.config)
    cat = load_catalog(args, photoz=args.engine != "cigale")
    if len(cat) == 0:
        print("no valid source to fit", file=sys.stderr)
        return 2
    print(f"{len(cat)} sources, {len(cat.bands)} bands, {cfg.n_models:,} models per redshift", file=sys.stderr)
    n_photoz = int(np.sum(~np.isfinite(cat.redshift)))
    if n_photoz:
        from .gridfit import fixed_redshift
        from .photoz import redshift_grid

        if fixed_redshift(cfg) is None:
            zs = redshift_grid(cfg)
            print(
                f"{n_photoz} sources without a redshift: photometric redshifts over {len(zs)} redshifts "
                f"({zs[0]:g}-{zs[-1]:g})",
                file=sys.stderr,
            )
    if args.engine == "cigale":
        from .cigale_engine import CigaleNotInstalled, fit_with_cigale

        out = Path(args.out)
        try:
            results = fit_with_cigale(cat, cfg, out / "cigale")
        except CigaleNotInstalled as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
        write_table(results.table, out)
    else:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        asked = str(cfg.extra.get("analysis_params", {}).get("save_best_sed", "False")).lower() == "true"
        files = SourceFiles(out, plots=not args.no_plots, seds=args.save_best_sed or asked)
        results = fit_catalog(
            cat,
            cfg,
            redshift_decimals=args.redshift_decimals,
            progress=not args.quiet,
            with_sed=files.needs_sed,
            on_fit=files,
            keep_fits=False,
        )
        write_table(results.table, out)
        (out / "bands.json").write_text(json.dumps(results.bands, indent=1))
    if cat.rejected:
        import csv

        with open(out / "rejected.csv", "w", encoding="utf-8", newline="") as fh:
            rows = csv.writer(fh)
            rows.writerow(["id", "column", "reason"])
            rows.writerows([r.source, r.column, r.reason] for r in cat.rejected)
    t = results.table
    print(
        f"wrote {out}/results.csv ({len(t)} sources); median reduced chi2 = "
        f"{np.nanmedian(t['best.reduced_chi_square']):.2f}"
    )
    return 0


# fit, selfplay, knowledge and `up` share it


def knowledge_path(args: argparse.Namespace) -> str:

    return str(Path(args.knowledge or settings().knowledge).expanduser())


def search_space(args: argparse.Namespace, cat):
    from .agents.space import SearchSpace, default_space

    space = SearchSpace.from_config(read_pcigale_ini(args.config)) if args.config else default_space()
    space.bands = [b for b in space.bands if b in cat.bands] if space.bands else list(cat.bands)
    return space


def load_catalog(args: argparse.Namespace, photoz: bool = False):
    """The catalogue named on the command line (or the embedded example), with every band not fitted
    and every rejected row reported, trimmed to ``--limit``; with ``photoz`` sources without a
    redshift are kept for a photometric one."""
    catalog_path = args.catalog or str(example_catalog_path())
    if args.catalog is None:
        print(f"no catalogue given: using the embedded example {catalog_path}", file=sys.stderr)
    skip = [b for s in getattr(args, "skip_bands", []) for b in s.split(",") if b]
    cat = read_catalog(
        catalog_path,
        flux_unit=args.flux_unit,
        preset=args.preset,
        skip_bands=skip,
        on_unknown="skip" if args.skip_unknown_bands else "error",
        redshift_column=getattr(args, "redshift_column", "redshift"),
        id_column=getattr(args, "id_column", "id"),
        photoz=photoz,
    )
    for band, why in cat.dropped_bands.items():
        print(f"not fitted: {band}: {why}", file=sys.stderr)
    for rej in cat.rejected:
        print(f"rejected: {rej}", file=sys.stderr)
    if args.limit:
        cat = cat.select(slice(0, args.limit))
    return cat


def _policy(args: argparse.Namespace):
    """The expert policy, or an LLM policy (with the expert as its fallback) when --llm is given."""
    if not getattr(args, "llm", None):
        return None
    from .llm import backend_from_url
    from .llm.llm_policy import LLMPolicy

    backends = [backend_from_url(args.llm)] + ([backend_from_url(args.llm_large)] if args.llm_large else [])
    return LLMPolicy(backends, cost=cost_model(args), mode=getattr(args, "llm_mode", None))


def _llm_summary(policy, n_sources: int) -> dict:
    from dataclasses import asdict

    s = asdict(policy.stats)
    tokens = s["prompt_tokens"] + s["completion_tokens"]
    s.update(tokens_per_source=tokens / max(n_sources, 1), cost_usd_per_source=s["cost_usd"] / max(n_sources, 1))
    return s


def cmd_fit(args: argparse.Namespace) -> int:
    from .agents.agentfit import agent_fit_catalog, write_agent_results
    from .agents.knowledge import KnowledgeBase
    from .agents.search import Budget

    cat = load_catalog(args, photoz=True)  # sources without a redshift get a photometric one
    space = search_space(args, cat)
    kb = None if args.no_knowledge else KnowledgeBase(path=knowledge_path(args))
    budget = Budget(
        max_models=args.max_models,
        max_steps=args.max_steps,
        max_seconds=args.max_seconds,
        max_tokens=args.max_tokens,
        max_estimate_models=args.max_estimate_models,
    )
    policy = _policy(args)
    try:
        res = agent_fit_catalog(
            cat,
            space,
            policy=policy,
            budget=budget,
            knowledge=kb,
            learn=args.learn,
            progress=not args.quiet,
            critic=policy.backends[0] if policy is not None and args.llm_critique else None,
        )
    finally:
        if kb is not None:
            kb.close()
    out = write_agent_results(res, args.out, plots=not args.no_plots, progress=not args.quiet)
    if policy is not None:
        llm = _llm_summary(policy, len(res.table))
        summary = json.loads((out / "summary.json").read_text())
        (out / "summary.json").write_text(json.dumps({**summary, "llm": llm}, indent=1))
        print(
            f"LLM {policy.name}: {llm['calls']} calls, {llm['tokens_per_source']:,.0f} tokens per source"
            f"{' (estimated)' if llm['estimated_tokens'] else ''}, ${llm['cost_usd']:.4f}, "
            f"{llm['fallbacks']} fallbacks to the expert policy, {llm['rejected_actions']} actions rejected"
        )
    t = res.table
    print(
        f"wrote {out}/results.csv ({len(t)} sources, {int(sum(t['anomaly']))} anomalies); median reduced chi2 = "
        f"{float(__import__('numpy').nanmedian(t['best.reduced_chi_square'])):.2f}, median models per source = "
        f"{float(__import__('numpy').median(t['models_evaluated'])):,.0f}"
    )
    return 0


def cmd_selfplay(args: argparse.Namespace) -> int:
    from .agents.agentfit import agent_fit_catalog
    from .agents.knowledge import KnowledgeBase
    from .agents.search import Budget

    cat = load_catalog(args)
    space = search_space(args, cat)
    kb = KnowledgeBase(path=knowledge_path(args))
    try:
        before = kb.count()
        agent_fit_catalog(
            cat,
            space,
            policy=_policy(args),
            budget=Budget(max_models=args.max_models, max_tokens=args.max_tokens),
            knowledge=kb,
            learn=True,
            progress=not args.quiet,
        )
        print(f"knowledge base {kb.where}: {before} -> {kb.count()} rules, {kb.count_outcomes()} best fits")
    finally:
        kb.close()
    return 0


def cmd_knowledge(args: argparse.Namespace) -> int:
    from .agents.knowledge import KnowledgeBase, KnowledgeRecordError

    kb = KnowledgeBase(path=knowledge_path(args))
    try:
        if args.action == "list":
            rules = sorted(kb.all(), key=lambda r: (-r.tried, -r.helped))
            if rules:
                print(f"{'helped/tried':>12} {'mean gain':>9} {'per models':>10}  {'action':<55} rule")
            for r in rules[: args.limit]:
                print(
                    f"{f'{r.helped}/{r.tried}':>12} {r.mean_gain:>+9.1%} {r.mean_models:>10,.0f}  {r.key:<55} {r.text}"
                )
            print(f"{len(rules)} rules in {kb.where}, and {kb.count_outcomes()} finished searches' best fits")
        elif args.action == "search":
            import numpy as np

            sig = np.array([float(x) for x in args.signature.split(",")])
            for r, score in kb.search(sig, limit=args.limit):
                print(f"{score:.3f}  {r.helped}/{r.tried}  {r.key}  {r.text}")
        elif args.action == "export":
            print(f"exported {kb.export(args.file)} rules to {args.file}")
        elif args.action == "import":
            try:
                n = kb.import_(args.file)
            except KnowledgeRecordError as exc:
                print(f"error: {exc}; nothing was imported", file=sys.stderr)
                return 2
            print(f"imported {n} rules from {args.file}; {kb.count()} in the base")
    finally:
        kb.close()
    return 0


def cmd_filters(args: argparse.Namespace) -> int:
    from .filters import get_filter, known_filter_names

    names = args.names
    if args.catalog:
        cat = read_catalog(args.catalog, on_unknown="skip", preset=args.preset)
        names = list(cat.bands) + list(cat.dropped_bands)
    if not names:
        names = known_filter_names()
    rows = []
    for n in names:
        try:
            f = get_filter(n)
            rows.append({"band": n, "resolves_to": f.source, "pivot_um": round(f.pivot_wavelength / 1e4, 4)})
        except UnknownFilterError as exc:
            rows.append({"band": n, "resolves_to": None, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            target = r["resolves_to"] or f"UNRESOLVED ({r['error']})"
            pivot = f"{r['pivot_um']:>8.4f} µm  " if r.get("pivot_um") else ""
            print(f"{r['band']:<28} {pivot}{target}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    if Path(args.path).exists() and not args.force:
        print(f"error: {args.path} exists (edited?); --force overwrites it", file=sys.stderr)
        return 2
    cfg = Configuration.from_modules(DEFAULT_CONFIG)
    path = write_pcigale_ini(cfg, args.path)
    print(f"wrote {path} ({cfg.n_models:,} models per redshift)")
    return 0


def cosmos_default() -> str:
    """Real COSMOS2020 galaxies when ../shared/data is here, else the embedded example."""
    from .agents.bench_search import DEFAULT_CATALOG

    return str(DEFAULT_CATALOG if DEFAULT_CATALOG.is_file() else example_catalog_path())


def _bench_engine(args: argparse.Namespace) -> dict:
    from . import bench_engine as bench

    return bench.bench_engine(
        n_target=args.models, compare_bagpipes=not args.no_bagpipes, cosmos_grid=not args.no_cosmos_grid
    )


def _bench_search(args: argparse.Namespace) -> dict:
    from .agents.bench_search import bench_search

    result = bench_search(
        args.catalog,
        n=args.n,
        n_train=args.n_train,
        max_models=args.max_models,
        ini=args.config,
        progress=not args.json,
    )
    if not args.per_source:
        result.pop("per_source")
    return result


def _bench_accuracy(args: argparse.Namespace) -> dict:
    from .agents.bench_accuracy import bench_accuracy

    return bench_accuracy(
        n=args.n if args.n != 20 else 100,
        max_models=args.max_models,
        n_real=args.n_real,
        progress=not args.json,
        max_estimate_models=args.max_estimate_models,
    )


def _bench_memory(args: argparse.Namespace) -> dict:
    from .bench_memory import bench_memory

    return bench_memory(n_small=args.n_small, n_large=args.n_large)


def _bench_llm(args: argparse.Namespace) -> dict:
    from .agents.search import Budget
    from .llm.bench_llm import bench_llm

    cat = read_catalog(args.catalog or cosmos_default(), on_unknown="skip").select(slice(0, args.n))
    return bench_llm(cat, args.triton, Budget(max_models=args.max_models, max_steps=args.max_steps))


def _bench_backbones(args: argparse.Namespace) -> dict:
    from .llm.bench_backbones import bench_backbones

    return bench_backbones(
        args.llm or [],
        n=args.n if args.n != 20 else 6,
        n_train=args.n_train if args.n_train != 20 else 10,
        max_models=args.max_models if args.max_models != 190_000 else 40_000,
        max_tokens=args.max_tokens,
        catalog=args.catalog,
        ini=args.config,
        cost=cost_model(args),
        progress=not args.json,
    )


def _bench_photoz(args: argparse.Namespace) -> dict:
    from .bench_photoz import bench_photoz

    n = args.n if args.n != 20 else 100
    return bench_photoz(
        args.catalog,
        n=n,
        ini=args.config,
        progress=not args.json,
        n_agents=args.n_agents,
        full_grid_outliers=args.full_grid_outliers,
    )


def _bench_transfer(args: argparse.Namespace) -> dict:
    from .agents.bench_transfer import bench_transfer

    result = bench_transfer(
        n=args.n if args.n != 20 else 10,
        n_train=args.n_train,
        max_models=args.max_models,
        progress=not args.json,
        seed=args.seed,
    )
    if not args.per_source:
        for pair in result["pairs"]:
            pair.pop("per_source")
    return result


# name -> benchmark (args -> JSON-able dict); the platform registers its own (services/commands.py)
BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "engine": _bench_engine,
    "search": _bench_search,
    "accuracy": _bench_accuracy,
    "memory": _bench_memory,
    "llm": _bench_llm,
    "backbones": _bench_backbones,
    "photoz": _bench_photoz,
    "transfer": _bench_transfer,
}


def cmd_bench(args: argparse.Namespace) -> int:
    print(json.dumps(BENCHMARKS[args.what](args), indent=None if args.json else 1))
    return 0


def _register_plugins(sub: argparse._SubParsersAction) -> None:
    """Commands and benchmarks other packages add (entry points ``mephisto_sed.commands``: the
    platform's ``up``, ``submit``, ``bench platform`` and ``bench chaos``). The core imports none
    of them by name."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="mephisto_sed.commands"):
        ep.load()(sub, BENCHMARKS)


def add_llm_cost_args(a: argparse.ArgumentParser, what: str = "") -> None:
    """The LLM token budget and cost model of fit, submit, selfplay and bench backbones."""
    a.add_argument("--max-tokens", type=int, default=10_000, help=f"{what}LLM token budget per source")
    a.add_argument("--usd-per-m-prompt", type=float, default=0.0, help=f"{what}cost model: $ per 1M prompt tokens")
    a.add_argument("--usd-per-m-completion", type=float, default=0.0, help=f"{what}$ per 1M completion tokens")
    a.add_argument("--usd-per-gpu-second", type=float, default=0.0, help=f"{what}$ per second of LLM latency")


def cost_model(args: argparse.Namespace) -> CostModel:
    """The cost model of the command line's --usd-per-* flags."""
    from .llm.llm_policy import CostModel

    return CostModel(args.usd_per_m_prompt, args.usd_per_m_completion, args.usd_per_gpu_second)


def add_agent_args(a: argparse.ArgumentParser) -> None:
    """The catalogue, search-space, budget and LLM options of fit, submit and selfplay."""
    a.add_argument("catalog", nargs="?", help="observation table (default: the embedded example)")
    a.add_argument(
        "--config",
        help="reference pcigale.ini: its value lists are the search space (default: a broad built-in universe)",
    )
    a.add_argument(
        "--knowledge",
        help="knowledge base folder (default: $MEPHISTO_KNOWLEDGE or "
        "~/.local/share/mephisto-sed/knowledge; QDRANT_URL selects a server)",
    )
    a.add_argument("--flux-unit", default="mJy", choices=[*FLUX_UNITS, "ABmag"])
    a.add_argument("--preset", choices=list(PRESETS))
    a.add_argument("--skip-unknown-bands", action="store_true")
    a.add_argument("--limit", type=int, help="only the first N sources")
    a.add_argument("--max-models", type=int, default=200_000, help="model budget of the search per source")
    a.add_argument(
        "--llm",
        help="LLM proposer: triton://host:8001/ensemble or openai://host:8000/v1?model=NAME "
        "(default: the built-in expert policy, which is also the fallback)",
    )
    a.add_argument("--llm-large", help="the model to escalate to when proposals stall (e.g. the 70B)")
    a.add_argument(
        "--llm-mode",
        choices=["free", "choose"],
        help="free: the LLM writes actions; choose: it picks one expert candidate (default: $MEPHISTO_LLM_MODE or free)",
    )
    a.add_argument(
        "--llm-critique",
        action="store_true",
        help="with --llm: the LLM also critiques each best fit (results) and words learned rules (knowledge)",
    )
    add_llm_cost_args(a)
    a.add_argument("-q", "--quiet", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mephisto-sed", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grid", help="plain grid fit of every source (no agent)")
    g.add_argument("catalog", nargs="?", help="observation table (default: the embedded example)")
    g.add_argument("--config", help="pcigale.ini (default: a built-in sfhdelayed+bc03+nebular+dust grid)")
    g.add_argument("--out", default="out", help="output folder (default: out)")
    g.add_argument("--flux-unit", default="mJy", choices=[*FLUX_UNITS, "ABmag"])
    g.add_argument("--preset", choices=list(PRESETS), help="column layout of a published catalogue")
    g.add_argument("--id-column", default="id")
    g.add_argument("--redshift-column", default="redshift")
    g.add_argument("--skip-bands", action="append", default=[], help="bands not to fit (comma separated)")
    g.add_argument(
        "--skip-unknown-bands",
        action="store_true",
        help="fit without bands whose curves are unknown (they are listed, not silently dropped)",
    )
    g.add_argument("--redshift-decimals", type=int, default=2)
    g.add_argument(
        "--engine",
        choices=["builtin", "cigale"],
        default="builtin",
        help="builtin (default) or cigale: write pcigale.ini and run pcigale, where installed",
    )
    g.add_argument("--limit", type=int, help="fit only the first N sources")
    g.add_argument("--no-plots", action="store_true", help="no <id>.png per source")
    g.add_argument(
        "--save-best-sed",
        action="store_true",
        help="write <id>_best_model.fits per source (also when pcigale.ini's analysis_params say save_best_sed)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    g.set_defaults(func=cmd_grid)

    f = sub.add_parser("filters", help="which band names resolve, and to which curves")
    f.add_argument("names", nargs="*")
    f.add_argument("--catalog", help="list the bands of this catalogue")
    f.add_argument("--preset", choices=list(PRESETS))
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_filters)

    i = sub.add_parser("init", help="write the default configuration as pcigale.ini")
    i.add_argument("path", nargs="?", default="pcigale.ini")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(func=cmd_init)

    agent_args = add_agent_args

    fa = sub.add_parser("fit", help="agent fit: a tree search over configurations per source")
    agent_args(fa)
    fa.add_argument("--out", default="out-agent")
    fa.add_argument("--max-steps", type=int, default=80)
    fa.add_argument("--max-seconds", type=float, default=300.0)
    fa.add_argument(
        "--max-estimate-models",
        type=int,
        default=120_000,
        help="after the search: models of the posterior box around the best fit that bayes.* come from "
        "(at most --max-models; 0: the best step's own estimates)",
    )
    fa.add_argument("--no-knowledge", action="store_true", help="search without retrieved knowledge")
    fa.add_argument("--learn", action="store_true", help="distill every finished search into the knowledge")
    fa.add_argument("--no-plots", action="store_true")
    fa.set_defaults(func=cmd_fit)

    sp = sub.add_parser("selfplay", help="grow the knowledge base by searching a training catalogue")
    agent_args(sp)
    sp.set_defaults(func=cmd_selfplay)

    kn = sub.add_parser("knowledge", help="list, search, export or import learned rules")
    kn.add_argument("action", choices=["list", "search", "export", "import"])
    kn.add_argument("file", nargs="?", help="JSON file for export/import")
    kn.add_argument("--knowledge", help="knowledge base folder")
    kn.add_argument("--signature", default=",".join(["0"] * 12), help="12 comma-separated numbers (search)")
    kn.add_argument("--limit", type=int, default=30)
    kn.set_defaults(func=cmd_knowledge)

    _register_plugins(sub)  # the platform's up and submit, and its benchmarks
    b = sub.add_parser("bench", help="benchmarks printing JSON")
    b.add_argument("what", choices=sorted(BENCHMARKS))
    b.add_argument("--seed", type=int, default=0, help="chaos: which processes die when")
    b.add_argument("--n-small", type=int, default=1_000, help="memory: sources in the small catalogue")
    b.add_argument("--n-large", type=int, default=100_000, help="memory: sources in the large catalogue")
    b.add_argument("--triton", help="llm: Triton gRPC HOST:PORT (default: start PyTriton with a scripted responder)")
    b.add_argument("--catalog", help="search: catalogue (default: COSMOS2020 2.5<z<3)")
    b.add_argument("--config", help="search: reference pcigale.ini (default: the COSMOS team's 2.5<z<3 grid)")
    b.add_argument(
        "--n",
        type=int,
        default=20,
        help="search: test sources (accuracy: mocks, default 100; transfer: per set, default 10)",
    )
    b.add_argument(
        "--n-agents",
        type=int,
        default=0,
        help="photoz: also the agents' first look over redshift on the first N of the draw (~16 s each)",
    )
    b.add_argument(
        "--full-grid-outliers",
        action="store_true",
        help="photoz: fit the outliers at their spectroscopic z with the reference's whole grid (~10 s each)",
    )
    b.add_argument("--n-real", type=int, default=20, help="accuracy: real COSMOS galaxies against the full grid")
    b.add_argument("--max-estimate-models", type=int, default=120_000, help="accuracy: the posterior box's budget")
    b.add_argument(
        "--n-train",
        type=int,
        default=20,
        help="search: self-play sources for knowledge (transfer: per set)",
    )
    b.add_argument("--max-models", type=int, default=190_000, help="search: model budget per source")
    b.add_argument("--per-source", action="store_true", help="search: include per-source rows")
    b.add_argument("--max-steps", type=int, default=80, help="platform, chaos, compose: step budget per source")
    b.add_argument("--executors", type=int, default=1, help="platform: executor replicas")
    b.add_argument("--json", action="store_true", help="one-line JSON")
    b.add_argument(
        "--llm",
        action="append",
        help="backbones: an LLM URL to compare (repeatable; default: the local Gemma 3 270M on llama.cpp)",
    )
    add_llm_cost_args(b, "backbones: ")
    b.add_argument("--models", type=int, default=1_000_000, help="engine: approximate grid size")
    b.add_argument("--no-bagpipes", action="store_true", help="skip the bagpipes comparison")
    b.add_argument("--no-cosmos-grid", action="store_true", help="skip timing the COSMOS team's full grid")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (CatalogError, ConfigError, UnknownFilterError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
