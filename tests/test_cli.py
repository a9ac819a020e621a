"""The command line as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

from mephisto_sed.cli import main


def test_grid_on_embedded_example_writes_every_output(tmp_path):
    assert main(["grid", "--out", str(tmp_path), "-q", "--save-best-sed"]) == 0
    res = Table.read(tmp_path / "results.fits")
    csv = Table.read(tmp_path / "results.csv", format="ascii.csv")
    assert len(res) == len(csv) == 8
    for col in ("best.reduced_chi_square", "bayes.stellar.m_star", "bayes.stellar.m_star_err", "bayes.sfh.sfr"):
        assert col in res.colnames and np.all(np.isfinite(res[col]))
    for sid in res["id"]:
        assert (tmp_path / f"{sid}.png").stat().st_size > 10_000
        sed = Table.read(tmp_path / f"{sid}_best_model.fits")
        assert {"wavelength", "Fnu", "stellar.old", "dust"} <= set(sed.colnames)


def test_example_masses_match_their_truth(tmp_path):
    from importlib import resources

    assert main(["grid", "--out", str(tmp_path), "-q", "--no-plots"]) == 0
    assert not list(tmp_path.glob("*.fits"))[1:]  # results.fits alone: SED files only when asked
    res = Table.read(tmp_path / "results.fits")
    truth = Table.read(str(resources.files("mephisto_sed") / "data" / "example_truth.csv"), format="ascii.csv")
    dlogm = np.log10(res["bayes.stellar.m_star"]) - truth["log_mstar"]
    assert np.median(np.abs(dlogm)) < 0.15


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    assert main(["grid", str(tmp_path / "missing.txt"), "--out", str(tmp_path)]) == 2
    assert "catalogue not found" in capsys.readouterr().err
    bad_ini = tmp_path / "bad.ini"
    bad_ini.write_text("sed_modules = sfhdelayed, bc03, m2005, redshifting\n")
    assert main(["grid", "--config", str(bad_ini), "--out", str(tmp_path)]) == 2
    assert "m2005" in capsys.readouterr().err


def test_filters_command_lists_resolution(capsys):
    assert main(["filters", "jwst.nircam.F444W", "subaru.suprime.NB711"]) == 0
    out = capsys.readouterr().out
    assert "sedpy:jwst_f444w.par" in out
    assert "UNRESOLVED" in out


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "mephisto_sed.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "grid" in proc.stdout


def test_bench_engine_prints_json(capsys):
    import json

    assert main(["bench", "engine", "--json", "--models", "20000", "--no-bagpipes", "--no-cosmos-grid"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("n_models", "n_bands", "models_per_s_cold", "models_per_s_warm", "peak_rss_mb"):
        assert result[key] > 0
    assert result["n_bands"] == 31


def test_cigale_engine_without_pcigale_is_a_clear_error(tmp_path, capsys):
    import shutil

    if shutil.which("pcigale"):
        pytest.skip("pcigale is installed: the run itself is tested in test_cigale_engine.py")
    assert main(["grid", "--engine", "cigale", "--out", str(tmp_path), "-q"]) == 2
    assert "pcigale is not installed" in capsys.readouterr().err


def test_agent_fit_and_knowledge_commands(tmp_path, capsys):
    kb = str(tmp_path / "kb")
    out = tmp_path / "agent"
    assert (
        main(
            [
                "fit",
                "--out",
                str(out),
                "-q",
                "--knowledge",
                kb,
                "--learn",
                "--limit",
                "3",
                "--max-models",
                "20000",
                "--no-plots",
            ]
        )
        == 0
    )
    res = Table.read(out / "results.csv", format="ascii.csv")
    for col in (
        "id",
        "redshift",
        "best.reduced_chi_square",
        "bayes.stellar.m_star",
        "bayes.stellar.m_star_err",
        "bayes.sfh.sfr",
        "anomaly",
        "models_evaluated",
        "steps",
    ):
        assert col in res.colnames
    # the search spends at most --max-models, the posterior box after it at most as many again
    assert np.all(res["models_evaluated"] - res["estimate.models"] <= 20000)
    assert np.all((res["estimate.models"] > 0) & (res["estimate.models"] <= 20000))
    for sid in res["id"]:
        assert (out / "traces" / f"{sid}.json").exists() and (out / "traces" / f"{sid}.md").exists()
    capsys.readouterr()
    assert main(["knowledge", "list", "--knowledge", kb]) == 0
    assert "rules in" in capsys.readouterr().out
    assert main(["knowledge", "export", str(tmp_path / "rules.json"), "--knowledge", kb]) == 0
    assert main(["knowledge", "import", str(tmp_path / "rules.json"), "--knowledge", str(tmp_path / "kb2")]) == 0
    assert "imported" in capsys.readouterr().out
    # a hostile file: refused whole, naming the record and the field; the base is unchanged
    data = json.loads((tmp_path / "rules.json").read_text())
    assert len(data["rules"]) >= 2
    data["rules"][1]["helped"] = "lots"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    assert main(["knowledge", "import", str(tmp_path / "bad.json"), "--knowledge", str(tmp_path / "kb3")]) == 2
    assert "rules[1].helped: Input should be a valid integer" in capsys.readouterr().err
    assert main(["knowledge", "list", "--knowledge", str(tmp_path / "kb3")]) == 0
    assert capsys.readouterr().out.startswith("0 rules")


def _example_rows(ids: list[str]) -> Table:
    from mephisto_sed.cli import example_catalog_path

    t = Table.read(example_catalog_path(), format="ascii")[: len(ids)]
    t["id"] = ids
    return t


def test_any_source_id_gets_its_results_and_its_own_files(tmp_path):
    """Non-ASCII ids reach results.fits (as UTF-8), a 300-character id gets a short file name,
    ``a/b`` and ``a_b`` get one file each: nothing is lost or overwritten."""
    ids = ["α-Cen galaxy", "x" * 300, "a/b", "a_b"]
    path = tmp_path / "cat.csv"
    _example_rows(ids).write(path, format="ascii.csv")
    assert main(["grid", str(path), "--out", str(tmp_path / "out"), "-q", "--no-plots", "--save-best-sed"]) == 0
    back = Table.read(tmp_path / "out" / "results.fits")
    assert [v.decode("utf-8") if isinstance(v, bytes) else v for v in back["id"]] == ids
    csv_ids = Table.read(tmp_path / "out" / "results.csv", format="ascii.csv", encoding="utf-8")["id"]
    assert list(csv_ids) == ids
    seds = sorted(p.name for p in (tmp_path / "out").glob("*_best_model.fits"))
    assert len(seds) == 4 and "a_b_best_model.fits" in seds and all(len(n) < 120 for n in seds)


def test_duplicated_ids_and_broken_fluxes_are_refused_by_row(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    _example_rows(["g1", "g2", "g1"]).write(path, format="ascii.csv")
    assert main(["grid", str(path), "--out", str(tmp_path / "o1"), "-q"]) == 2
    assert "id 'g1' is in rows 1 and 3" in capsys.readouterr().err

    t = _example_rows(["inf", "huge", "tiny_error", "all_negative", "good"])
    flux_cols = [c for c in t.colnames if c + "_err" in t.colnames]
    t[flux_cols[0]][0] = np.inf  # was silently a missing band
    t[flux_cols[1]][1] = 1e300
    t[flux_cols[2] + "_err"][2] = 5e-324
    for c in flux_cols:
        t[c][3] = -abs(t[c][3])
    t.write(path, format="ascii.csv", overwrite=True)
    assert main(["grid", str(path), "--out", str(tmp_path / "o2"), "-q", "--no-plots"]) == 0
    rejected = Table.read(tmp_path / "o2" / "rejected.csv", format="ascii.csv")
    why = {r["id"]: (r["column"], r["reason"]) for r in rejected}
    assert why["inf"] == (flux_cols[0], "flux or error is infinite (leave a missing band empty or NaN)")
    assert why["huge"][0] == flux_cols[1] and "beyond" in why["huge"][1]
    assert why["tiny_error"][0] == flux_cols[2] + "_err" and "below 1e-15 mJy" in why["tiny_error"][1]
    assert why["all_negative"] == ("fluxes", "no detection has a positive flux")
    results = Table.read(tmp_path / "o2" / "results.csv", format="ascii.csv")
    assert list(results["id"]) == ["good"] and np.isfinite(results["best.reduced_chi_square"][0])


def test_what_a_newcomer_tripped_on(tmp_path, capsys):
    """--help without the heavy stack (no plotting, servers or knowledge store imported; the
    platform's commands come from its light services.commands), init
    refusing to overwrite an edited pcigale.ini, knowledge list with column headers."""
    heavy = {"matplotlib", "qdrant_client", "grpc", "nats", "gateway", "scipy", "bagpipes", "services.platform"}
    probe = (
        "import sys; import mephisto_sed.cli as c; c.build_parser().format_help(); "
        f"print(sorted({{p for m in sys.modules for p in (m, m.split('.')[0])}} & set({sorted(heavy)!r})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    ini = tmp_path / "pcigale.ini"
    assert main(["init", str(ini)]) == 0
    ini.write_text(ini.read_text() + "# my edits\n")
    assert main(["init", str(ini)]) == 2 and "--force" in capsys.readouterr().err
    assert ini.read_text().endswith("# my edits\n")
    assert main(["init", str(ini), "--force"]) == 0 and "# my edits" not in ini.read_text()
    from mephisto_sed.agents.knowledge import KnowledgeBase, Rule

    kb = KnowledgeBase(path=tmp_path / "kb")
    kb.add(Rule([0.1] * 12, {"type": "add_module", "module": "agn"}, "IR excess: add an AGN", tried=3, helped=2))
    kb.close()
    capsys.readouterr()
    assert main(["knowledge", "list", "--knowledge", str(tmp_path / "kb")]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split() == ["helped/tried", "mean", "gain", "per", "models", "action", "rule"]
    assert row.split()[0] == "2/3" and "add_module:agn" in row
    held = KnowledgeBase(path=tmp_path / "kb")  # another process's `up` holding the store
    try:
        assert main(["knowledge", "list", "--knowledge", str(tmp_path / "kb")]) == 2
        assert "open in another process" in capsys.readouterr().err
    finally:
        held.close()
