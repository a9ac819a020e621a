"""The agents: expert rules, validated actions, tree search with budgets, anomalies, knowledge."""

import json

import numpy as np
import pytest

from mephisto_sed.agents import execute as execute_mod
from mephisto_sed.agents.actions import Action, ActionError, apply_action, parse_action
from mephisto_sed.agents.domain import Domain
from mephisto_sed.agents.evaluate import Evaluation, evaluate
from mephisto_sed.agents.execute import Source, execute
from mephisto_sed.agents.knowledge import KnowledgeBase, Rule
from mephisto_sed.agents.policy import ExpertPolicy, ProposalContext, action_key
from mephisto_sed.agents.records import dump, load
from mephisto_sed.agents.search import Budget, SearchTree, Step, search
from mephisto_sed.agents.space import SearchSpace
from mephisto_sed.config import Configuration
from mephisto_sed.mock import make_mock_catalog

from .conftest import BROAD_BANDS

IR_BANDS = BROAD_BANDS + ["spitzer.irac.I3", "spitzer.irac.I4", "jwst.miri.F1800W", "spitzer.mips.24"]

BASE = {
    "sfhdelayed": {
        "tau_main": [100.0, 300.0, 1000.0, 3000.0],
        "age_main": [100.0, 300.0, 1000.0, 2000.0, 4000.0],
        "f_burst": [0.0, 0.1, 0.3],
        "age_burst": [20.0],
        "tau_burst": [50.0],
    },
    "bc03": {"imf": 1, "metallicity": [0.004, 0.02]},
    "nebular": {"logU": [-3.0, -2.0], "zgas": [0.008]},
    "dustatt_modified_starburst": {"E_BV_lines": [0.0, 0.1, 0.2, 0.4, 0.7, 1.0], "E_BV_factor": 0.44},
    "dl2014": {"qpah": 2.5, "umin": 1.0, "alpha": 2.0, "gamma": 0.1},
    "redshifting": {"redshift": ""},
}


def _space(bands=BROAD_BANDS, **overrides):
    mods = {**BASE, **overrides}
    space = SearchSpace.from_config(Configuration.from_modules(mods, additionalerror=0.05))
    space.bands = list(bands)
    return space


def _mock(config_mods, bands, seed=3, **kw):
    cfg = Configuration.from_modules(config_mods, additionalerror=0.05)
    cat, truth = make_mock_catalog(cfg, bands, 1, seed=seed, **kw)
    return Source.from_catalog(cat, 0, bands), truth


def _evaluation(**kw) -> Evaluation:
    base = dict(
        chi2=30.0,
        chi2_red=3.0,
        n_bands=11,
        residuals={},
        plausibility=[],
        n_effective=10.0,
        regimes={r: {"n": 2, "mean": 0.0, "rms": 1.0} for r in ("FUV", "NUV", "optical", "NIR", "MIR")}
        | {"FIR": {"n": 0, "mean": 0.0, "rms": 0.0}},
        patterns=[],
        edges=[],
        bayes={"stellar.m_star": 1e10, "sfh.sfr": 1.0},
        score=-3.0,
        best={
            "sfhdelayed": {"tau_main": 300.0, "age_main": 1000.0, "f_burst": 0.0},
            "bc03": {"metallicity": 0.02},
            "nebular": {"logU": -2.0, "zgas": 0.008},
            "dustatt_modified_starburst": {"E_BV_lines": 0.2},
        },
        redshift=1.0,
    )
    base.update(kw)
    return Evaluation(**base)


def _proposals(evaluation, space=None, modules=None):
    space = space or _space()
    state = space.state(modules or space.base)
    ctx = ProposalContext(space, None, state, evaluation)
    return [a for a in ExpertPolicy().propose(ctx)]


def _has(props, **match):
    return any(all(getattr(a, k) == v for k, v in match.items()) for a in props)


# -- each expert rule on a case built to trigger it ---------------------------------------------
def test_rule_edge_widens_beyond_the_best_value():
    ev = _evaluation(edges=[{"module": "sfhdelayed", "param": "age_main", "side": "high", "value": 4000.0}])
    assert _has(_proposals(ev), type="widen", module="sfhdelayed", param="age_main", direction="up", rule="edge")


def test_rule_uv_too_blue_asks_for_more_dust():
    props = _proposals(_evaluation(patterns=["uv_too_blue"]))
    assert _has(props, type="widen", param="E_BV_lines", direction="up", rule="uv_too_blue")


def test_rule_uv_too_red_asks_for_less_dust_or_a_burst():
    props = _proposals(_evaluation(patterns=["uv_too_red"]))
    assert _has(props, type="widen", param="E_BV_lines", direction="down", rule="uv_too_red")
    assert _has(props, type="add_burst", rule="uv_too_red")


def test_rule_infrared_excess_adds_an_agn_then_strengthens_it():
    props = _proposals(_evaluation(patterns=["infrared_excess"]))
    assert _has(props, type="add_module", module="agn", rule="infrared_excess")
    space = _space()
    mods = [*space.base, "agn"]
    ev = _evaluation(patterns=["infrared_excess"], best={**_evaluation().best, "agn": {"fracAGN": 0.3}})
    assert _has(_proposals(ev, space, mods), type="widen", module="agn", param="fracAGN", rule="infrared_excess")


def test_rule_poor_fit_with_a_red_excess_tries_an_agn():
    ev = _evaluation(chi2_red=6.0, patterns=["optical_underpredicted"])
    assert _has(_proposals(ev), type="add_module", module="agn", rule="poor_fit_ir")
    assert not _has(_proposals(_evaluation(chi2_red=1.2)), type="add_module")


def test_rule_red_optical_with_heavy_dust_compares_an_agn():
    best = {**_evaluation().best, "dustatt_modified_starburst": {"E_BV_lines": 0.7}}
    ev = _evaluation(chi2_red=1.0, colours={"uv_opt": 0.8}, best=best)
    assert _has(_proposals(ev), type="add_module", module="agn", rule="red_optical")
    assert not _has(_proposals(_evaluation(chi2_red=1.0, colours={"uv_opt": 0.1})), rule="red_optical")


def test_rule_poor_fit_swaps_the_attenuation_law():
    props = _proposals(_evaluation(patterns=["poor_fit_no_pattern"]))
    assert _has(props, type="swap_module", module="dustatt_modified_starburst", to="dustatt_calzleit")


def test_rule_unneeded_agn_is_removed():
    space = _space()
    ev = _evaluation(best={**_evaluation().best, "agn": {"fracAGN": 0.05}})
    assert _has(_proposals(ev, space, [*space.base, "agn"]), type="remove_module", module="agn")


def test_rule_converge_and_scans_are_always_offered():
    props = _proposals(_evaluation(chi2_red=1.1, patterns=["good_fit"]))
    assert props[0].type == "scan"
    assert _has(props, type="zoom", rule="converge")


def test_rule_block_scans_search_coupled_parameters_jointly_over_their_whole_ladders():
    """The nebular lines with metallicity and burst, and the attenuation with age, e-folding time,
    burst and metallicity: each block over its full ladders at once, the rest at the best model."""
    space = _space()
    state = space.state(space.base)
    best = _evaluation().best
    props = _proposals(_evaluation(chi2_red=1.1, patterns=["good_fit"]))
    blocks = {a.module: a for a in props if a.type == "scan" and len(a.couple) == 4}
    assert set(blocks) == {"nebular", "dustatt_modified_starburst"}
    full = {
        "nebular": ["nebular.logU", "nebular.zgas", "bc03.metallicity", "sfhdelayed.f_burst", "sfhdelayed.age_burst"],
        "dustatt_modified_starburst": ["dustatt_modified_starburst.E_BV_lines", "sfhdelayed.age_main"]
        + ["sfhdelayed.tau_main", "sfhdelayed.f_burst", "bc03.metallicity"],
    }
    for module, action in blocks.items():
        scanned = apply_action(space, state, action, best)
        for m, p, idx in scanned.choice:
            n = len(space.ladders[m][p])
            if f"{m}.{p}" in full[module]:
                assert idx == tuple(range(n)), (module, m, p)  # the whole ladder
            else:
                assert len(idx) == 1, (module, m, p)  # the rest at the best model
    # ranked right after the one-module scans of the SFH and the attenuation
    order = [a for a in props if a.type == "scan"]
    assert order.index(blocks["nebular"]) < 4 and order.index(blocks["dustatt_modified_starburst"]) < 5


def test_evaluation_sees_uv_over_predicted_by_a_dust_free_model():
    """A dusty mock fitted without dust: the model's UV is too bright, the expert asks for dust."""
    src, _ = _mock(
        {
            **BASE,
            "dustatt_modified_starburst": {"E_BV_lines": 1.0, "E_BV_factor": 0.44},
            "sfhdelayed": {"tau_main": 3000.0, "age_main": 300.0},
        },
        BROAD_BANDS,
        z_range=(2.0, 2.01),
        log_mstar_range=(10.5, 10.5),
    )
    # young stars only and almost no dust allowed: the fit cannot redden the UV
    space = _space(
        dustatt_modified_starburst={"E_BV_lines": [0.0, 0.05], "E_BV_factor": 0.44},
        sfhdelayed={"tau_main": [1000.0, 3000.0], "age_main": [100.0, 300.0], "f_burst": [0.0]},
    )
    ex = execute(space, space.reference_state(), src)
    ev = evaluate(ex, src, space)
    assert "uv_too_blue" in ev.patterns or "FUV_overpredicted" in ev.patterns or "NUV_overpredicted" in ev.patterns
    assert len(ev.summary()) < 2000 and "chi2_red" in ev.summary()
    assert ev.signature().shape == (12,) and np.all(np.isfinite(ev.signature()))


# -- search --------------------------------------------------------------------------------------
def test_mock_agn_is_found_when_the_start_lacks_it():
    agn = {"fracAGN": 0.6, "EBV": 0.0, "covering_factor": 0.5, "temperature": 100.0, "lambda_fracAGN": "0.1/10"}
    src, truth = _mock(
        {
            **BASE,
            "agn": agn,
            "dustatt_modified_starburst": {"E_BV_lines": 0.1, "E_BV_factor": 0.44},
            "sfhdelayed": {"tau_main": 1000.0, "age_main": 2000.0},
        },
        IR_BANDS,
        z_range=(0.8, 0.81),
        log_mstar_range=(10.5, 10.5),
        seed=5,
    )
    space = _space(IR_BANDS)
    assert "agn" not in space.base and "agn" in space.ladders
    res = search(src, space, ExpertPolicy(), Budget(max_models=60_000, max_steps=40))
    assert "agn" in res.best.state.modules, res.trace_markdown()
    assert res.best.evaluation.chi2_red < 2.0
    assert not res.anomaly
    # what it teaches later first looks (which never hold the AGN): the best model without it, not
    # the stellar values that make room for the AGN (issue 17)
    from mephisto_sed.agents.distill import distill

    kb = KnowledgeBase(path=":memory:")
    distill(res, kb)
    without_agn = min((n for n in res.nodes if n.state.modules == tuple(space.base)), key=lambda n: n.chi2)
    learned = kb.outcomes(src.redshift)
    assert "agn" not in learned
    for m, params in learned.items():
        for p, values in params.items():
            assert values == [float(without_agn.execution.best_model[m][p])], (m, p)
    assert without_agn.execution.best_model != res.best.execution.best_model


def test_unexplainable_source_is_an_anomaly():
    rng = np.random.default_rng(0)
    flux = 10 ** rng.uniform(-3, -1, len(BROAD_BANDS))  # a zigzag no stellar population makes
    src = Source("weird", 1.5, list(BROAD_BANDS), flux, 0.01 * flux, np.zeros(flux.size, bool))
    res = search(src, _space(), ExpertPolicy(), Budget(max_models=20_000, max_steps=10))
    assert res.anomaly and "chi2" in res.anomaly_reason


@pytest.mark.parametrize("max_models, max_steps", [(3_000, 50), (40_000, 4)])
def test_budgets_are_never_exceeded(max_models, max_steps):
    src, _ = _mock(BASE, BROAD_BANDS, seed=11)
    budget = Budget(max_models=max_models, max_steps=max_steps)
    res = search(src, _space(), ExpertPolicy(), budget)
    searched = [s for s in res.trace if s["rule"] != "estimate"]
    assert sum(s["models"] for s in searched) <= max_models
    assert len(searched) <= max_steps
    # the posterior box after the search has its own budget, no larger than the search's
    assert res.estimate["estimate.models"] <= min(budget.max_estimate_models, max_models)
    assert sum(s["models"] for s in res.trace) == res.models_evaluated


def test_search_is_deterministic_and_never_repeats_a_configuration():
    src, _ = _mock(BASE, BROAD_BANDS, seed=2)
    a = search(src, _space(), ExpertPolicy(), Budget(max_models=30_000), seed=4)
    b = search(src, _space(), ExpertPolicy(), Budget(max_models=30_000), seed=4)
    strip = lambda t: [{k: v for k, v in s.items() if k != "seconds"} for s in t]  # noqa: E731
    assert strip(a.trace) == strip(b.trace)
    keys = [n.state.key for n in a.nodes]
    assert len(keys) == len(set(keys))
    # nor a configuration whose every model an earlier one already fitted (a scan at the best
    # model of a wider scan): such a step could only spend models
    assert len(a.nodes) > 5
    for i, node in enumerate(a.nodes):
        if node.action is not None and node.action.rule == "estimate":
            continue  # the posterior box may re-fit part of an earlier step, on purpose: its own posterior
        assert not any(node.state.within(earlier.state) for earlier in a.nodes[:i]), node.action
    data = json.loads(a.trace_json())
    assert data["steps"] == a.steps and data["steps_detail"][0]["action"] == "initial"
    assert "| step |" in a.trace_markdown()


def test_a_search_restored_from_its_record_after_every_step_ends_the_same():
    """The platform keeps the tree between steps as JSON: a resumed search must not differ."""
    src, _ = _mock(BASE, BROAD_BANDS, seed=2)
    budget = Budget(max_models=30_000)
    ref = search(src, _space(), ExpertPolicy(), budget)
    space = _space()
    tree = SearchTree(src, space, ExpertPolicy(), budget)
    step = tree.begin()
    while step is not None:
        record = json.loads(json.dumps(tree.to_dict()))
        tree = SearchTree.from_dict(record, space, ExpertPolicy())
        step = load(Step, json.loads(json.dumps(dump(step))))
        ex = execute(space, step.state, tree.source)
        tree.record(step, ex, evaluate(ex, tree.source, space))
        tree = SearchTree.from_dict(json.loads(json.dumps(tree.to_dict())), space, ExpertPolicy())
        step = tree.next()
    res = tree.result()
    strip = lambda t: [{k: v for k, v in s.items() if k != "seconds"} for s in t]  # noqa: E731
    assert res.steps > 3
    assert strip(res.trace) == strip(ref.trace)
    assert res.best.execution.row == ref.best.execution.row
    assert res.stop_reason == ref.stop_reason


def test_search_records_come_from_their_types_and_name_a_bad_field():
    """One typed layer (agents/records.py) writes and reads every record of a search: a node read
    back from its JSON is written again byte for byte; keys a record does not know are ignored (older
    records still read); a malformed one is refused naming the field."""
    import pydantic

    from mephisto_sed.agents.evaluate import Evaluation
    from mephisto_sed.agents.execute import Execution, Source
    from mephisto_sed.agents.search import Node

    src, _ = _mock(BASE, BROAD_BANDS, seed=2)
    res = search(src, _space(), ExpertPolicy(), Budget(max_models=10_000))
    for node in res.nodes:
        text = json.dumps(dump(node))
        back = load(Node, json.loads(text))
        assert json.dumps(dump(back)) == text
        assert isinstance(back.execution, Execution) and isinstance(back.evaluation, Evaluation)
        assert back.execution.best.fluxes is not None and back.execution.best.fluxes.dtype == float
    assert "proposals" not in dump(res.nodes[0]) and "hints" not in dump(res.nodes[0])
    s = load(Source, {**dump(src), "note": "from an older writer"})
    assert s.upper_limit.dtype == bool and np.array_equal(s.flux, src.flux)
    bad = {**dump(res.best.evaluation), "n_bands": "many"}
    with pytest.raises(pydantic.ValidationError, match="n_bands"):
        load(Evaluation, bad)


def test_a_stalled_search_from_a_learned_first_look_tries_the_even_one_once():
    """Knowledge may place the first look for galaxies unlike this one: when the search from it
    stalls without a good fit, the even first look runs (once, as a second root), and a search
    restored from its record after every step does the same."""
    from mephisto_sed.agents.policy import initial_state

    rng = np.random.default_rng(0)
    flux = 10 ** rng.uniform(-3, -1, len(BROAD_BANDS))  # no model fits it: the search stalls
    src = Source("weird", 1.5, list(BROAD_BANDS), flux, 0.01 * flux, np.zeros(flux.size, bool))
    space = _space(sfhdelayed={**BASE["sfhdelayed"], "tau_main": [50.0, 100.0, 200.0, 400.0, 1000.0, 2000.0, 5000.0]})
    kb = KnowledgeBase(path=":memory:")
    for i in range(10):  # ten galaxies that ended at short e-folding times
        tau = {"sfhdelayed": {"tau_main": 50.0 if i % 2 else 100.0}}
        kb.add_outcome(f"g{i}", 1.5, [0.1] * 12, tau, Domain.of(src))  # galaxies like this one
    budget = Budget(max_models=40_000, max_steps=30)
    res = search(src, space, ExpertPolicy(), budget, patience=2, knowledge=kb)
    roots = [t for t in res.trace if t["parent"] is None]
    assert len(roots) == 2 and "placed where similar galaxies ended" in roots[0]["rationale"]
    assert "even first look" in roots[1]["rationale"]
    even = res.nodes[roots[1]["node"]].state
    assert even == initial_state(space, src, budget.max_models) != res.nodes[0].state
    before = res.trace[: roots[1]["step"]]
    assert sum(1 for t in before[-2:] if t["best_chi2"] >= before[-3]["best_chi2"] * 0.99) == 2  # it had stalled

    tree = SearchTree(src, space, ExpertPolicy(), budget, patience=2, hints=kb.hints, outcomes=kb.outcomes)
    step = tree.begin()
    while step is not None:
        tree = SearchTree.from_dict(json.loads(json.dumps(tree.to_dict())), space, ExpertPolicy())
        ex = execute(space, step.state, tree.source)
        tree.record(step, ex, evaluate(ex, tree.source, space))
        tree = SearchTree.from_dict(json.loads(json.dumps(tree.to_dict())), space, ExpertPolicy())
        step = tree.next()
    strip = lambda t: [{k: v for k, v in s.items() if k != "seconds"} for s in t]  # noqa: E731
    assert strip(tree.result().trace) == strip(res.trace)
    kb.close()


class HostilePolicy(ExpertPolicy):
    """Proposes what a broken or malicious LLM might: nothing of it may reach the engine."""

    name = "hostile"

    def propose(self, ctx):
        bad = [
            Action("add_module", module="m2005"),
            Action("set", module="sfhdelayed", param="age_main", values=(1e9,)),
            Action("set", module="bc03", param="metallicity", values=(0.3,)),
            Action("scan", module="sfhdelayed", width=5),  # a huge grid
            Action("widen", module="nebular", param="../../etc/passwd"),
            Action("remove_module", module="bc03"),
            Action("swap_module", module="dustatt_modified_starburst", to="os.system"),
        ]
        return bad + super().propose(ctx)[:1]


def test_invalid_configurations_never_reach_the_engine(monkeypatch):
    seen = []
    real = execute_mod.ModelGrid

    def spy(config, bands, **kw):
        seen.append(config)
        return real(config, bands, **kw)

    monkeypatch.setattr(execute_mod, "ModelGrid", spy)
    src, _ = _mock(BASE, BROAD_BANDS, seed=1)
    space = _space()
    res = search(src, space, HostilePolicy(), Budget(max_models=20_000, max_steps=4, max_models_per_step=10_000))
    assert res.rejected_actions >= 7
    for cfg in seen:
        assert set(cfg.modules) <= set(space.ladders) | {"redshifting"}
        assert all(v <= 14000 for v in cfg.params["sfhdelayed"]["age_main"])
        assert cfg.n_models <= 20_000


@pytest.mark.parametrize(
    "payload",
    [
        "rm -rf /",
        ["zoom"],
        {"type": "exec", "cmd": "ls"},
        {"type": "zoom", "width": 99},
        {"type": "set", "module": "bc03", "param": "metallicity", "values": ["0.02; import os"]},
        {"type": "zoom", "__class__": "x"},
        {"type": "widen", "steps": True},
    ],
)
def test_hostile_action_payloads_are_rejected(payload):
    with pytest.raises(ActionError):
        parse_action(payload)


def test_actions_validate_against_ladders_and_caps():
    space = _space()
    state = space.reference_state()
    best = _evaluation().best
    with pytest.raises(ActionError, match="not an allowed value"):
        apply_action(space, state, Action("set", module="bc03", param="metallicity", values=(0.008,)), best)
    with pytest.raises(ActionError, match="over the cap"):
        apply_action(space, state, Action("add_module", module="agn"), best, max_models=10)
    good = apply_action(space, state, parse_action({"type": "zoom", "width": 1}), best)
    assert space.size(good) < space.size(state)


# -- knowledge -----------------------------------------------------------------------------------
def _learned_look_case():
    """A mock galaxy at z = 1.5 and a store of ten like it that ended at short e-folding times (so
    its first look is placed by knowledge)."""
    space = _space(sfhdelayed={**BASE["sfhdelayed"], "tau_main": [50.0, 100.0, 200.0, 400.0, 1000.0, 2000.0, 5000.0]})
    cfg = Configuration.from_modules(
        {**BASE, "sfhdelayed": {**BASE["sfhdelayed"], "tau_main": 100.0, "age_main": 1000.0}}, additionalerror=0.1
    )
    cat, _ = make_mock_catalog(cfg, list(BROAD_BANDS), 1, seed=4, z_range=(1.5, 1.5))
    src = Source.from_catalog(cat, 0, list(BROAD_BANDS))
    kb = KnowledgeBase(path=":memory:")
    for i in range(10):
        tau = {"sfhdelayed": {"tau_main": 100.0 if i % 2 else 50.0}}
        kb.add_outcome(f"g{i}", 1.5, [0.1] * 12, tau, Domain.of(src))
    return src, space, kb


def test_a_good_fit_from_a_learned_first_look_is_not_a_stop_before_the_even_look_ran():
    """Never stop on knowledge alone (issue 17): a search whose learned first look fits well still
    runs the even first look before it stops on a good fit, so both arms of a search stop on the
    same evidence. Without knowledge there is one root."""
    src, space, kb = _learned_look_case()
    budget = Budget(max_models=60_000, max_steps=40)
    res = search(src, space, ExpertPolicy(), budget, patience=2, knowledge=kb)
    roots = [t for t in res.trace if t["parent"] is None]
    assert res.stop_reason == "good fit, no longer improving"
    assert len(roots) == 2 and "placed where similar galaxies ended" in roots[0]["rationale"]
    assert "before stopping on a good fit" in roots[1]["rationale"]
    assert res.trace[roots[1]["step"] - 1]["best_chi2"] / (len(BROAD_BANDS) - 1) <= 1.5  # it was good already
    plain = search(src, space, ExpertPolicy(), budget, patience=2)
    assert [t["rationale"] for t in plain.trace if t["parent"] is None] == ["coarse first look at the base modules"]
    # the even look is then followed as the search without knowledge follows it (its best node
    # first) until it stalls, not only run: the same evidence
    even = roots[1]["node"]
    after = res.trace[roots[1]["step"] + 1 :]
    followed = [t for t in after if t["rule"] != "estimate"]
    assert len(followed) >= 2 and all(_descends(res, t["node"], even) for t in followed[:2]), after
    kb.close()


def test_a_search_from_a_learned_first_look_runs_the_even_one_by_half_its_budget():
    """Never run out of budget on knowledge alone (issue 17): a learned look can lead into a basin
    that improves a little at every step and never stalls; the even first look then runs once half
    the model budget is spent (here no stall can trigger it: patience is longer than the search)."""
    src, space, kb = _learned_look_case()
    for budget, by_models in ((Budget(max_models=30_000, max_steps=1_000), True), (Budget(10**7, max_steps=30), False)):
        res = search(src, space, ExpertPolicy(), budget, patience=1_000, knowledge=kb)
        roots = [t for t in res.trace if t["parent"] is None]
        assert len(roots) == 2 and "half the budget spent" in roots[1]["rationale"], [t["rationale"] for t in roots]
        k = roots[1]["step"]
        models = [t["models_cumulative"] / budget.max_models for t in res.trace]
        spent = models if by_models else [(i + 1) / budget.max_steps for i in range(len(res.trace))]
        assert spent[k - 1] >= 0.5 > spent[k - 2]  # at the first step after half the models (steps) were spent
    kb.close()


def _descends(res, node: int, root: int) -> bool:
    while node is not None:
        if node == root:
            return True
        node = res.nodes[node].parent
    return False


def test_an_in_memory_knowledge_base_stays_in_memory_whatever_qdrant_url_names(monkeypatch):
    """``path=":memory:"`` is a throwaway store: a QDRANT_URL in the environment (an operator's
    server) is never written by it."""
    monkeypatch.setenv("QDRANT_URL", "http://127.0.0.1:1")  # nothing listens there
    kb = KnowledgeBase(path=":memory:")
    assert kb.where == ":memory:" and kb.count() == 0
    kb.close()


def test_knowledge_merges_round_trips_and_survives_restart(tmp_path):
    path = tmp_path / "kb"
    kb = KnowledgeBase(path=path)
    sig = [0.1] * 12
    action = {"type": "add_module", "module": "agn"}
    kb.add(Rule(sig, action, "IR excess: add an AGN", tried=1, helped=1, mean_gain=0.3, sources=["a"]))
    kb.add(
        Rule([0.1] * 11 + [0.1001], action, "IR excess: add an AGN", tried=1, helped=0, mean_gain=0.0, sources=["b"])
    )  # a near-duplicate merges its evidence
    kb.add(Rule([0.9, -0.5] + [0.0] * 10, {"type": "zoom", "width": 1}, "converge", tried=2, helped=1))
    assert kb.count() == 2
    merged = [r for r in kb.all() if r.key == action_key(action)][0]
    assert (merged.tried, merged.helped, sorted(merged.sources)) == (2, 1, ["a", "b"])
    hits = kb.search(sig, limit=1)
    assert hits[0][0].key == "add_module:agn" and hits[0][1] > 0.99
    assert [r.key for r, _ in kb.search(sig, action_type="zoom")] == ["zoom"]
    kb.export(tmp_path / "rules.json")
    kb.close()

    again = KnowledgeBase(path=path)  # restart of the local store
    assert again.count() == 2
    again.close()
    fresh = KnowledgeBase(path=":memory:")
    assert fresh.import_(tmp_path / "rules.json") == 2
    assert {r.key for r in fresh.all()} == {"add_module:agn", "zoom"}
    fresh.close()


def test_selfplay_distills_rules_that_rank_later_proposals(tmp_path):
    from mephisto_sed.agents.selfplay import selfplay

    kb = KnowledgeBase(path=":memory:")
    srcs = [_mock(BASE, BROAD_BANDS, seed=s)[0] for s in (21, 22)]
    results = selfplay(srcs, _space(), ExpertPolicy(), kb, budget=Budget(max_models=15_000), progress=False)
    assert kb.count() > 0
    hints = kb.hints(results[0].best.evaluation)
    assert hints and all(0 <= h.similarity <= 1.0001 for h in hints)
    kb.close()


def test_knowledge_ranks_by_gain_per_model():
    """Two actions with the same record of χ² gain: the one that spends fewer models goes first;
    an action whose record shows no gain falls behind one that gained; thin evidence counts less."""
    from mephisto_sed.agents.policy import KnowledgeHint

    space = _space()
    state = space.state(space.base)
    ev = _evaluation(chi2_red=1.1, patterns=["good_fit"])
    props = _proposals(ev)
    big = next(a for a in props if a.type == "scan" and a.module == "dustatt_modified_starburst" and a.couple)
    small = next(a for a in props if a.type == "scan" and a.module == "bc03")
    converge = next(a for a in props if a.type == "zoom" and a.rule == "converge")
    size = {action_key(a): space.size(apply_action(space, state, a, ev.best)) for a in (big, small, converge)}
    assert size[action_key(big)] > 10 * size[action_key(small)]

    def rank(records: dict) -> list[str]:
        hints = [
            KnowledgeHint(a.to_dict(), 1.0, tried, 0, gain, "", size[action_key(a)])
            for a, (tried, gain) in records.items()
        ]
        ranked = ExpertPolicy().propose(ProposalContext(space, None, state, ev, knowledge=hints))
        return [action_key(a) for a in ranked]

    plain = rank({})
    assert plain.index(action_key(big)) < plain.index(action_key(small))  # the expert's order
    same_gain = rank({big: (10, 0.1), small: (10, 0.1)})
    assert same_gain[0] == action_key(small)
    assert same_gain.index(action_key(small)) < same_gain.index(action_key(big))
    # no gain on record, against a step that gained: the converge step (last of the scans) goes first
    assert plain.index("zoom") > plain.index(action_key(big))
    demoted = rank({big: (10, 0.0), small: (10, 0.0), converge: (10, 0.05)})
    assert demoted.index("zoom") < min(demoted.index(action_key(big)), demoted.index(action_key(small)))
    # one try of a small gain moves the converge step less than ten tries do
    assert rank({converge: (1, 0.001)}).index("zoom") > rank({converge: (10, 0.001)}).index("zoom")


def test_knowledge_of_other_galaxies_best_fits_places_the_first_look(tmp_path):
    """Outcomes (where finished searches ended) move the first look's values towards them at the
    same size, survive export and import, and need a few galaxies before they count."""
    from mephisto_sed.agents.policy import initial_state

    fine = {  # ladders longer than the first look's counts (as in the COSMOS grid)
        "sfhdelayed": {**BASE["sfhdelayed"], "tau_main": [50.0, 100.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 2000.0]},
        "dustatt_modified_starburst": {
            "E_BV_lines": [0.0, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0],
            "E_BV_factor": 0.44,
        },
    }
    space = _space(**fine)
    src, _ = _mock(BASE, BROAD_BANDS, seed=5)
    kb = KnowledgeBase(path=tmp_path / "kb")
    answer = {"dustatt_modified_starburst": {"E_BV_lines": 0.1}, "sfhdelayed": {"tau_main": 100.0}}
    for i in range(6):
        kb.add_outcome(f"g{i}", src.redshift + 0.01 * i, [0.1] * 12, answer)
    kb.add_outcome("far", src.redshift + 3.0, [0.1] * 12, {"dustatt_modified_starburst": {"E_BV_lines": 1.0}})
    learned = kb.outcomes(src.redshift)
    assert learned["dustatt_modified_starburst"]["E_BV_lines"] == [0.1] * 6  # the z = +3 galaxy is not similar
    plain, placed = initial_state(space, src), initial_state(space, src, outcomes=learned)
    assert space.size(placed) == space.size(plain)
    ebv = space.ladders["dustatt_modified_starburst"]["E_BV_lines"]
    assert 0.1 not in [ebv[i] for i in plain.indices("dustatt_modified_starburst", "E_BV_lines")]
    assert 0.1 in [ebv[i] for i in placed.indices("dustatt_modified_starburst", "E_BV_lines")]
    assert 100.0 in [space.ladders["sfhdelayed"]["tau_main"][i] for i in placed.indices("sfhdelayed", "tau_main")]
    few = {m: {p: v[:3] for p, v in ps.items()} for m, ps in learned.items()}
    assert initial_state(space, src, outcomes=few) == plain  # three galaxies are not yet a prior
    kb.export(tmp_path / "kb.json")
    kb.close()
    fresh = KnowledgeBase(path=":memory:")
    fresh.import_(tmp_path / "kb.json")
    assert fresh.outcomes(src.redshift) == learned
    broken = json.loads((tmp_path / "kb.json").read_text())
    del broken["outcomes"][2]["redshift"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"outcomes\[2\]\.redshift: Field required"):
        fresh.import_(tmp_path / "broken.json")
    fresh.close()


def test_outcomes_of_galaxies_nearest_in_sed_shape_place_the_first_look(tmp_path):
    """Issue 17: with the new galaxy's photometry by regime, the first look is placed by the half
    of the alike galaxies nearest to it in SED shape (at least five); brightness does not count,
    and a stored galaxy without levels (an older store) is the farthest."""
    from mephisto_sed.agents.evaluate import checked_levels, observed_levels, shape_distance

    src, _ = _mock(BASE, BROAD_BANDS, seed=5)
    levels = observed_levels(src)
    assert {"NUV", "optical", "NIR"} <= set(levels) and all(np.isfinite(list(levels.values())))
    brighter = {r: v + 1.0 for r, v in levels.items()}
    assert shape_distance(levels, brighter) == pytest.approx(0.0, abs=1e-12)
    redder = {r: v + (0.3 if r in ("NIR", "MIR") else 0.0) for r, v in levels.items()}
    assert shape_distance(levels, redder) > 0.1
    assert shape_distance(levels, {"NUV": 0.0}) == float("inf")  # one regime in common: no shape
    with pytest.raises(ValueError, match="levels: unknown regime 'UV'"):
        checked_levels({"UV": 1.0})
    with pytest.raises(ValueError, match=r"levels\[NIR\]"):
        checked_levels({"NIR": float("nan")})

    kb = KnowledgeBase(path=tmp_path / "kb")
    for i in range(12):  # galaxies ever redder in the near-IR, each ending at its own E(B-V)
        tilted = {r: v + (0.05 * i if r in ("NIR", "MIR") else 0.0) - 2.0 for r, v in levels.items()}
        kb.add_outcome(
            f"g{i}", src.redshift, [0.1] * 12, {"dustatt_modified_starburst": {"E_BV_lines": float(i)}}, levels=tilted
        )
    kb.add_outcome("old", src.redshift, [0.1] * 12, {"dustatt_modified_starburst": {"E_BV_lines": 99.0}})
    ebv = lambda o: sorted(o["dustatt_modified_starburst"]["E_BV_lines"])  # noqa: E731
    assert ebv(kb.outcomes(src.redshift)) == [*map(float, range(12)), 99.0]  # no levels: all of them
    assert ebv(kb.outcomes(src.redshift, levels=levels)) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # the nearer half
    red = {r: v + (0.05 * 11 if r in ("NIR", "MIR") else 0.0) for r, v in levels.items()}
    assert ebv(kb.outcomes(src.redshift, levels=red)) == [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    kb.export(tmp_path / "kb.json")
    kb.close()
    fresh = KnowledgeBase(path=":memory:")
    fresh.import_(tmp_path / "kb.json")  # the levels travel with the outcomes
    assert ebv(fresh.outcomes(src.redshift, levels=red)) == [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    fresh.close()


def test_a_learned_first_look_drops_an_even_value_only_on_evidence():
    """Issue 17: the learned look keeps every value the even look tries unless every one of at least
    MIN_OUTCOMES similar galaxies ended nearer another; galaxies spread over the ladder leave the
    even look as it is, and the freed values go where the galaxies ended."""
    from mephisto_sed.agents.policy import MIN_OUTCOMES, initial_state

    taus = [50.0, 100.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 2000.0, 3000.0, 5000.0]
    space = _space(sfhdelayed={**BASE["sfhdelayed"], "tau_main": taus})
    src, _ = _mock(BASE, BROAD_BANDS, seed=5)
    plain = initial_state(space, src)
    even = [taus[i] for i in plain.indices("sfhdelayed", "tau_main")]
    assert len(even) == 5 and even[0] == 50.0 and even[-1] == 5000.0

    def look(ended: list[float]) -> list[float]:
        state = initial_state(space, src, outcomes={"sfhdelayed": {"tau_main": ended}})
        return [taus[i] for i in state.indices("sfhdelayed", "tau_main")]

    assert look(even * 2) == even  # galaxies ended at every even value: no evidence against any
    # eight galaxies at 100 and one at 1000: 600 and 5000 have none in their stretch and are freed
    # for where they ended; 2000 keeps its value (1000 lies nearer it than 600), as do 50 and 200
    assert look([100.0] * 8 + [1000.0]) == [50.0, 100.0, 200.0, 1000.0, 2000.0]
    rng = np.random.default_rng(1)
    for _ in range(30):  # whatever the galaxies, an even value with one in its stretch stays
        ended = rng.choice(taus, int(rng.integers(MIN_OUTCOMES, 12))).tolist()
        kept = set(look(ended))
        at = taus.index
        for e in even:  # a galaxy at t lies in e's stretch when no other even value is nearer t
            stretch = [t for t in taus if abs(at(t) - at(e)) <= min(abs(at(t) - at(o)) for o in even)]
            assert e in kept or not set(ended) & set(stretch), (ended, e)
    assert look([100.0] * (MIN_OUTCOMES - 1)) == even  # too few galaxies: no evidence at all


def test_bench_search_reports_fractions_against_a_full_grid(tmp_path, monkeypatch):
    from importlib import resources

    from mephisto_sed.agents.bench_search import bench_search
    from mephisto_sed.config import write_pcigale_ini

    monkeypatch.setenv("MEPHISTO_CACHE", str(tmp_path / "cache"))
    ini = write_pcigale_ini(Configuration.from_modules(BASE, additionalerror=0.05), tmp_path / "ref.ini")
    catalog = resources.files("mephisto_sed") / "data" / "example_catalogue.txt"
    r = bench_search(str(catalog), n=3, n_train=2, ini=ini, max_models=3_000, progress=False)
    for key in (
        "sources",
        "grid_models",
        "median_fraction_of_grid",
        "frac_sources_within_tolerance",
        "median_fraction_with_knowledge",
        "median_fraction_without_knowledge",
        "frac_sources_within_dchi2_2",
        "median_fraction_to_dchi2_2",
    ):
        assert key in r
    assert r["sources"] == 3 and r["grid_models"] > 0
    # the search's 3,000 models and at most as many for the posterior box after it
    assert 0 < r["median_fraction_of_grid"] <= 2 * 3_000 / r["grid_models"] + 1e-12
    # the answers, not only χ²: the agent's mass against the full grid's
    assert 0 <= r["median_abs_dlogm_vs_grid"] < 0.3
    assert 0 <= r["frac_logm_inside_grid_1sigma"] <= 1
    rows = r["per_source"]["without_knowledge"]
    assert all(x["models_to_dchi2_2"] is None or x["models_to_dchi2_2"] <= x["models_evaluated"] for x in rows)
    assert r["knowledge_rules"] > 0
    assert (tmp_path / "cache").is_dir()  # the reference grid is cached


def test_parsed_actions_keep_every_field():
    a = parse_action(
        {
            "type": "scan",
            "module": "sfhdelayed",
            "width": 1,
            "rationale": "why",
            "couple": ["dustatt_modified_starburst.E_BV_lines"],
        }
    )
    assert a.rationale == "why" and a.couple == ("dustatt_modified_starburst.E_BV_lines",) and a.around == ()
    z = parse_action({"type": "zoom", "around": {"bc03.metallicity": 0.004}, "rationale": "other basin"})
    assert z.around == (("bc03.metallicity", 0.004),) and z.rationale == "other basin"
    assert parse_action(z.to_dict()) == z
    space = _space()
    state = space.reference_state()
    scanned = apply_action(space, state, a, _evaluation().best)
    assert len(scanned.indices("dustatt_modified_starburst", "E_BV_lines")) == 3  # best ± 1
    assert len(scanned.indices("bc03", "metallicity")) == 1  # the rest at the best model
    assert scanned.indices("sfhdelayed", "tau_main") == tuple(range(4))  # the scanned module: all of it


def test_agent_results_write_to_fits_with_anomaly_reasons(tmp_path):
    from astropy.table import Table

    from mephisto_sed.agents.agentfit import agent_fit_catalog, write_agent_results
    from mephisto_sed.catalog import Catalog

    rng = np.random.default_rng(0)
    flux = 10 ** rng.uniform(-3, -1, (1, len(BROAD_BANDS)))
    cat = Catalog(
        np.array(["weird"]), np.array([1.5]), list(BROAD_BANDS), flux, 0.01 * flux, np.zeros(flux.shape, bool)
    )
    res = agent_fit_catalog(cat, _space(), budget=Budget(max_models=5_000, max_steps=3), progress=False)
    out = write_agent_results(res, tmp_path, plots=False, progress=False)
    t = Table.read(out / "results.fits")
    assert bool(t["anomaly"][0]) and "chi2" in str(t["anomaly_reason"][0])
    assert (out / "traces" / "weird.md").exists()


def test_covering_is_exact_and_polynomial_on_long_ladders():
    """The learned first look's k-medians: equal to enumerating every subset on short ladders (ties
    broken the same way; with kept positions, every subset holding them), and quick on a 64-value ladder, where C(64, 5) subsets froze a proposer."""
    from itertools import combinations

    from mephisto_sed.agents.policy import PSEUDO_FRACTION, _covering

    def every_subset(ladder, allowed, values, k, keep=()):
        if k >= len(allowed):
            return list(allowed)
        weight = np.full(len(allowed), PSEUDO_FRACTION * len(values))
        for v in values:
            weight[int(np.argmin([abs(ladder[i] - v) for i in allowed]))] += 1.0
        pos = np.asarray(allowed, dtype=float)
        best, best_cost = (), np.inf
        for chosen in combinations(range(len(allowed)), k):
            if not {allowed.index(q) for q in keep} <= set(chosen):
                continue
            cost = float(np.sum(weight * np.min(np.abs(pos[:, None] - pos[list(chosen)][None, :]), axis=1)))
            if cost < best_cost - 1e-12:
                best, best_cost = chosen, cost
        return [allowed[i] for i in best]

    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(1, 9))
        ladder = sorted(rng.uniform(0, 50, n).round())
        allowed = sorted(rng.choice(n, int(rng.integers(1, n + 1)), replace=False).tolist())
        values = rng.choice(ladder, int(rng.integers(0, 10))).tolist()
        k = int(rng.integers(1, 6))
        assert _covering(ladder, allowed, values, k) == every_subset(ladder, allowed, values, k)
        keep = sorted(rng.choice(allowed, min(k, int(rng.integers(0, len(allowed) + 1))), replace=False).tolist())
        assert _covering(ladder, allowed, values, k, keep) == every_subset(ladder, allowed, values, k, keep)
    ladder = [float(v) for v in range(64)]
    chosen = _covering(ladder, list(range(64)), [3.0] * 20 + [60.0] * 20, 5)
    assert len(chosen) == 5 and 3 in chosen and 60 in chosen


def test_knowledge_import_checks_every_record_first_and_reads_skip_broken_ones(tmp_path):
    """A hostile import names the record and field and stores nothing; a record already broken in
    the store (another version, a hand edit) is skipped by list and search instead of breaking them."""
    from mephisto_sed.agents.knowledge import KnowledgeRecordError

    kb = KnowledgeBase(path=":memory:")
    good = {"signature": [0.1] * 12, "action": {"type": "add_module", "module": "agn"}, "text": "IR excess"}
    cases = [
        ({**good, "helped": "lots"}, "rules[1].helped: Input should be a valid integer"),
        ({**good, "tried": 1, "helped": 2}, "rules[1]: helped (2) exceeds tried (1)"),
        ({**good, "signature": [0.1] * 11}, "rules[1].signature: List should have at least 12 items"),
        ({**good, "signature": [float("nan")] * 12}, "rules[1].signature[0]: Input should be a finite number"),
        ({**good, "action": {"type": "exec", "module": "os"}}, "rules[1].action: unknown action type 'exec'"),
        ({**good, "text": "x" * 3000}, "rules[1].text: String should have at most 2000 characters"),
        ({**good, "evil": 1}, "rules[1].evil: Extra inputs are not permitted"),
    ]
    for bad, message in cases:
        (tmp_path / "k.json").write_text(json.dumps({"rules": [good, bad]}))
        with pytest.raises(KnowledgeRecordError) as e:
            kb.import_(tmp_path / "k.json")
        assert message in str(e.value), str(e.value)
        assert kb.count() == 0  # all or nothing: the good first rule was not stored either
    outcome = {"source": "g1", "redshift": 1.0, "signature": [0.0] * 12, "best": {"sfhdelayed": {"tau_main": 100.0}}}
    (tmp_path / "k.json").write_text(json.dumps({"rules": [good], "outcomes": [{**outcome, "redshift": -3}]}))
    with pytest.raises(KnowledgeRecordError, match=r"outcomes\[0\]\.redshift"):
        kb.import_(tmp_path / "k.json")
    (tmp_path / "k.json").write_text("{not json")
    with pytest.raises(KnowledgeRecordError, match="cannot read JSON"):
        kb.import_(tmp_path / "k.json")
    (tmp_path / "k.json").write_text(json.dumps({"rules": [good], "outcomes": [outcome]}))
    assert kb.import_(tmp_path / "k.json") == 1 and kb.count_outcomes() == 1

    broken = kb._models.PointStruct(
        id=str(__import__("uuid").uuid4()), vector=[0.1] * 12, payload={**good, "helped": "lots", "key": "x"}
    )
    kb.client.upsert(kb.collection, points=[broken])
    assert kb.count() == 2
    assert [r.text for r in kb.all()] == ["IR excess"]
    assert [r.text for r, _ in kb.search([0.1] * 12, limit=5)] == ["IR excess"]
    kb.close()


def test_knowledge_that_cannot_be_asked_is_recorded_in_the_trace_never_silent():
    from mephisto_sed.agents.search import KnowledgeUnavailable

    src = _mock(BASE, BROAD_BANDS, seed=31)[0]

    def no_distiller(_evaluation):
        raise KnowledgeUnavailable("no distiller answered within 2 s")

    def run(hints):
        space = _space()
        tree = SearchTree(src, space, ExpertPolicy(), Budget(max_models=8_000, max_steps=4), hints)
        step = tree.begin()
        while step is not None:
            step = load(Step, json.loads(json.dumps(dump(step))))  # as a worker would get it
            ex = execute(space, step.state, tree.source)
            tree.record(step, ex, evaluate(ex, tree.source, space))
            step = tree.next()
        return tree.result()

    blind = run(no_distiller)
    marked = [e for e in blind.trace if e.get("knowledge")]
    assert marked and all(e["knowledge"] == "unavailable: no distiller answered within 2 s" for e in marked)
    assert not any("knowledge" in e for e in run(lambda _e: []).trace)


def test_knowledge_applies_only_where_it_was_learned():
    """Rules and outcomes carry the domain they were learned on (redshift, rest-frame coverage):
    knowledge from galaxies unlike this one leaves its search exactly as without knowledge, while
    knowledge from alike galaxies is used (issue 17)."""
    from mephisto_sed.agents.distill import distill

    near = Domain(2.5, 0.1, 1.3)
    assert near.alike(Domain(2.8, 0.1, 1.2))  # COSMOS 2.5 < z < 2.75 and 2.75 < z < 3
    assert not near.alike(Domain(0.8, 0.2, 2.5))  # another redshift
    assert not near.alike(Domain(2.5, 0.9, 4.0))  # the same z, other rest-frame wavelengths

    budget = Budget(max_models=40_000, max_steps=12)
    low = Configuration.from_modules(BASE, additionalerror=0.1)
    kb = KnowledgeBase(path=":memory:")
    for seed in (1, 2, 3):  # galaxies at z = 0.3 teach rules and outcomes
        cat, _ = make_mock_catalog(low, list(BROAD_BANDS), 1, seed=seed, z_range=(0.3, 0.3))
        distill(search(Source.from_catalog(cat, 0, list(BROAD_BANDS)), _space(), ExpertPolicy(), budget), kb)
    assert kb.count() > 0 and all(r.domains and r.domains[0][0] == pytest.approx(0.3) for r in kb.all())

    cat, _ = make_mock_catalog(low, list(BROAD_BANDS), 1, seed=9, z_range=(2.5, 2.5))
    far = Source.from_catalog(cat, 0, list(BROAD_BANDS))
    without = search(far, _space(), ExpertPolicy(), budget)
    unlike = search(far, _space(), ExpertPolicy(), budget, knowledge=kb)
    strip = lambda t: [{k: v for k, v in s.items() if k != "seconds"} for s in t]  # noqa: E731
    assert strip(unlike.trace) == strip(without.trace)
    assert kb.hints(unlike.nodes[0].evaluation, domain=Domain.of(far)) == []

    cat, _ = make_mock_catalog(low, list(BROAD_BANDS), 1, seed=9, z_range=(0.32, 0.32))
    alike = Source.from_catalog(cat, 0, list(BROAD_BANDS))
    first = search(alike, _space(), ExpertPolicy(), Budget(max_models=5_000, max_steps=1)).nodes[0]
    assert kb.hints(first.evaluation, domain=Domain.of(alike))  # learned on galaxies like it: used
