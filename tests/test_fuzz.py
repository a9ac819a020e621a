"""Property-based fuzzing of every parser of outside input: a precise error or a valid result,
never another exception or a hang. Bounded examples keep it to seconds in CI; the seed is
derandomised so a failure reproduces."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.alerts import BadAlert, parse_alert
from gateway.validation import Invalid, check_observation, check_submit
from mephisto_sed.agents.actions import ActionError, apply_action, parse_action
from mephisto_sed.agents.knowledge_records import KnowledgeRecordError, parse_knowledge_file
from mephisto_sed.agents.space import default_space
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.catalog import CatalogError, read_catalog
from mephisto_sed.config import ConfigError, parse_pcigale_ini
from mephisto_sed.llm import LLMError
from mephisto_sed.llm.llm_policy import parse_reply

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FILTERS = ["subaru.suprime.r", "paranal.vircam.J", "spitzer.irac.I1", "jwst.nircam.F444W", "nope.F1", ""]
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e300, -1e300, 5e-324, 1e-11, 1e9, 1e10, -99.0, 0.1, 1.0]),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)

INI_LINES = [
    "sed_modules = sfhdelayed, bc03, nebular, dustatt_modified_starburst, dl2014, redshifting",
    "sed_modules = sfh2exp, bc03, redshifting",
    "[sed_modules_params]",
    "[[sfhdelayed]]",
    "tau_main = 100, 300, 1000",
    "age_main = 1000, abc",
    "f_burst = 0.0, 0.1",
    "[[bc03]]",
    "imf = 1",
    "metallicity = 0.02, 0.05",
    "[[nebular]]",
    "logU = -2.0",
    "[[redshifting]]",
    "redshift = ",
    "bands = galex.FUV, galex.FUV_err",
    "additionalerror = 0.1",
    "x = %(y)s",
    "[x",
    "]]]",
    'a = "unterminated',
    "tau_main = " + ", ".join(str(i + 1) for i in range(70)),
]


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(INI_LINES), st.text(max_size=40)), max_size=25))
def test_pcigale_ini_parser_gives_a_configuration_or_a_config_error(lines):
    try:
        cfg = parse_pcigale_ini("\n".join(lines), name="pcigale_ini")
    except ConfigError as exc:
        assert str(exc).startswith("pcigale_ini") and "<class" not in str(exc)
        return
    assert cfg.n_models >= 1 and cfg.modules


@FUZZ
@given(
    ids=st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=4),
    values=st.lists(NUMBERS, min_size=24, max_size=24),
    fmt=st.sampled_from(["csv", "fits", "votable", "cigale"]),
    redshift=st.one_of(NUMBERS, st.just(1.0)),
)
def test_catalogue_readers_give_a_catalogue_or_a_catalogue_error(tmp_path_factory, ids, values, fmt, redshift):
    n = len(ids)
    cols = {"id": ids, "redshift": [redshift] * n}
    for k, band in enumerate(FILTERS[:3]):
        cols[band] = values[k * 4 : k * 4 + n]
        cols[band + "_err"] = values[12 + k * 4 : 12 + k * 4 + n]
    path = (
        tmp_path_factory.mktemp("cat") / {"csv": "c.csv", "fits": "c.fits", "votable": "c.xml", "cigale": "c.txt"}[fmt]
    )
    table = Table(cols)
    try:
        if fmt == "cigale":
            table.write(path, format="ascii.commented_header")
        elif fmt == "csv":
            table.write(path, format="ascii.csv")
        else:
            table.write(path, format=fmt)
    except Exception:  # noqa: BLE001 - astropy cannot write this table at all: nothing to read
        return
    try:
        cat = read_catalog(path)
    except CatalogError as exc:
        assert str(path) in str(exc) or "catalogue" in str(exc)
        return
    assert len(cat.ids) == len(set(cat.ids)) == len(cat.redshift)
    present = np.isfinite(cat.flux)
    assert np.all(np.isfinite(cat.err[present])) and np.all(cat.err[present] > 0)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([".csv", ".fits", ".xml", ".txt"]))
def test_catalogue_readers_on_garbage_files(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("garbage") / f"cat{suffix}"
    path.write_bytes(data)
    with pytest.raises(CatalogError):
        read_catalog(path)


ALERT_FLUX = st.fixed_dictionaries(
    {},
    optional={
        "band": st.sampled_from(["g", "r", "i", "z", "y", "u", "q", 3]),
        "filter": st.sampled_from(FILTERS + [None, 7]),
        "psfFlux": st.one_of(NUMBERS, JSON),
        "psfFluxErr": st.one_of(NUMBERS, JSON),
        "upperLimit": st.one_of(st.booleans(), JSON),
    },
)
ALERTS = st.fixed_dictionaries(
    {},
    optional={
        "alertId": JSON,
        "diaObject": st.one_of(
            JSON, st.fixed_dictionaries({"diaObjectId": JSON}, optional={"redshift": st.one_of(NUMBERS, JSON)})
        ),
        "fluxUnit": st.sampled_from(["nJy", "uJy", "mJy", "Jy", "ABmag", 5]),
        "fluxes": st.one_of(JSON, st.lists(ALERT_FLUX, max_size=6)),
    },
)


@FUZZ
@given(st.one_of(ALERTS.map(lambda a: json.dumps(a).encode()), st.binary(max_size=100)))
def test_alert_parser_gives_an_observation_or_a_bad_alert(data):
    try:
        _, obs = parse_alert(data)
    except BadAlert as exc:
        assert str(exc)
        return
    try:
        check_observation(obs, "alert")
    except Invalid as exc:
        assert str(exc).startswith("alert.")
        return
    assert all(math.isfinite(b.flux_mjy) for b in obs.bands)  # without a redshift: a photometric one
    assert not obs.HasField("redshift") or 0 <= obs.redshift <= 10


RULE = st.fixed_dictionaries(
    {},
    optional={
        "signature": st.one_of(st.lists(NUMBERS, min_size=12, max_size=12), JSON),
        "action": st.one_of(JSON, st.just({"type": "add_module", "module": "agn"})),
        "text": st.one_of(st.text(max_size=30), JSON),
        "tried": st.one_of(st.integers(-2, 5), JSON),
        "helped": st.one_of(st.integers(-2, 5), JSON),
        "mean_gain": st.one_of(NUMBERS, JSON),
        "sources": st.one_of(st.lists(st.text(max_size=5), max_size=3), JSON),
    },
)


@FUZZ
@given(st.one_of(st.lists(RULE, max_size=4), st.fixed_dictionaries({"rules": st.lists(RULE, max_size=3)}), JSON))
def test_knowledge_files_give_records_or_a_record_error(data):
    try:
        parsed = parse_knowledge_file(data, "k.json")
    except KnowledgeRecordError as exc:
        assert str(exc).startswith("k.json")
        return
    for r in parsed.rules:
        assert len(r.signature) == 12 and 0 <= r.helped <= r.tried


BANDS = st.builds(
    pb.BandFlux,
    filter=st.sampled_from(FILTERS),
    flux_mjy=NUMBERS,
    error_mjy=NUMBERS,
    upper_limit=st.booleans(),
)


def _observation(source_id: str, redshift: float | None, bands: list[pb.BandFlux]) -> pb.Observation:
    obs = pb.Observation(source_id=source_id, bands=bands)
    if redshift is not None:
        obs.redshift = redshift
    return obs


OBSERVATIONS = st.builds(_observation, st.text(max_size=30), st.one_of(st.none(), NUMBERS), st.lists(BANDS, max_size=5))


@FUZZ
@given(
    st.lists(OBSERVATIONS, min_size=0, max_size=3),
    st.sampled_from(["", "sed_modules = sfhdelayed, bc03, redshifting\n", "[x\n", "x = %(y)s\n"]),
    st.text(max_size=30),
    st.integers(-5, 10**13),
)
def test_gateway_requests_give_a_space_or_an_invalid_naming_the_field(sources, ini, key, max_models):
    req = pb.SubmitBatchRequest(sources=sources, pcigale_ini=ini, idempotency_key=key)
    req.budget.max_models = max(0, max_models)
    try:
        space = check_submit(req, max_sources=1000)
    except Invalid as exc:
        field = str(exc).split(":")[0].split("[")[0].split(".")[0]
        assert field in {"sources", "pcigale_ini", "idempotency_key", "budget", "bands"}, str(exc)
        return
    assert space.bands


@FUZZ
@given(
    st.one_of(
        st.text(max_size=200),
        JSON.map(json.dumps),
        st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["widen", "zoom", "add_module", "swap_module", "scan", "exec", ""])},
                optional={
                    "module": st.sampled_from(["agn", "nebular", "sfhdelayed", "os", ""]),
                    "param": st.sampled_from(["tau_main", "fracAGN", "logU", "__class__"]),
                    "direction": st.sampled_from(["up", "down", "both", "left"]),
                    "steps": st.integers(-3, 9),
                    "width": st.integers(-3, 12),
                    "values": st.lists(NUMBERS, max_size=4),
                },
            ),
            max_size=4,
        ).map(lambda a: "```json\n" + json.dumps({"actions": a}) + "\n```"),
    )
)
def test_llm_replies_give_valid_states_or_precise_errors(text):
    space = default_space()
    space.bands = FILTERS[:3]
    state = space.state(space.base)
    best = next(space.to_config(state).iter_models())
    try:
        actions = parse_reply(text)
    except LLMError:
        return
    for data in actions:
        try:
            new = apply_action(space, state, parse_action(data), best)
        except ActionError:
            continue
        space.to_config(new)  # what an accepted action yields is a configuration that validates


@FUZZ
@given(st.sampled_from([300, 504, 703, 1000, 1101, 999]), st.binary(max_size=400))
def test_rubin_packets_of_any_bytes_give_an_observation_or_a_bad_alert(schema_id, body):
    """Whatever follows a Confluent header (a known schema id or not), the alert parser answers with
    an observation or a BadAlert naming the problem: no other exception, no hang."""
    data = b"\x00" + schema_id.to_bytes(4, "big") + body
    try:
        _, obs = parse_alert(data)
    except BadAlert as exc:
        assert str(exc).startswith("Rubin alert:")
        return
    assert all(b.filter.startswith("lsst.") for b in obs.bands)
