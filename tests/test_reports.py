"""Reports (kafkaproof/report.py): check, hunt and guarantees write a directory whose
index.html holds the verdicts with their failure models and danger events, the runs'
plots and each counterexample's diagram - loaded in headless Chromium here - and JUnit
XML that a JUnit parser reads, one test case per guarantee."""

import json

from junitparser import Failure, JUnitXml, Skipped

from kafkaproof.cli import main
from kafkaproof.report import Verdict, junit


def cases(path) -> list:
    return [case for suite in JUnitXml.fromfile(str(path)) for case in suite]


def test_one_failing_guarantee_is_one_failing_test_case(tmp_path):
    verdicts = [Verdict("durability", "HELD", "held in 10 runs; reached: isr-shrank-to-leader 3x", "crashes", "acks=all"),
                Verdict("delivery", "VIOLATED", "2/10 runs (failed-send)", "crashes", "acks=all", 10, "seed 3"),
                Verdict("exactly-once", "NOT SHOWN", "no run reached a retried send", "crashes", "acks=all")]
    junit(tmp_path / "j.xml", "suite", verdicts)
    got = cases(tmp_path / "j.xml")
    assert [c.name for c in got] == ["durability", "delivery", "exactly-once"]
    assert [c.name for c in got if c.is_passed] == ["durability"]
    assert [c.name for c in got if any(isinstance(r, Failure) for r in c.result)] == ["delivery"]
    assert [c.name for c in got if any(isinstance(r, Skipped) for r in c.result)] == ["exactly-once"]
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "j.xml"))))
    assert (suite.tests, suite.failures, suite.skipped) == (3, 1, 1)


def test_check_writes_a_report_chromium_opens_and_junit_a_parser_reads(browser, tmp_path, capsys):
    report, xml = tmp_path / "report", tmp_path / "junit.xml"
    # (acks=0 on a lossy network: a lost write in every run, fast; the rest NOT SHOWN - skipped cases)
    code = main(["check", "--set", "acks=0", "--faults", "drop", "--runs", "2", "--seconds", "10", "--no-verify",
                 "--out", str(tmp_path / "cx"), "--report", str(report), "--junit", str(xml), "--json"])
    table = json.loads(capsys.readouterr().out)["guarantees"]
    violated = [g for g, row in table.items() if row["violated"]]
    assert code == 1 and "durability" in violated
    # JUnit: a case per guarantee, failed exactly where check says violated.
    got = cases(xml)
    assert sorted(c.name for c in got) == sorted(table)
    assert sorted(c.name for c in got if any(isinstance(r, Failure) for r in c.result)) == sorted(violated)
    assert sorted(c.name for c in got if any(isinstance(r, Skipped) for r in c.result)) == sorted(
        g for g, row in table.items() if row["verdict"] == "NOT SHOWN")
    # The page: no JavaScript error, a row per guarantee naming its failure model, plots drawn.
    page, errors = browser(report / "index.html")
    assert errors == [] and page.evaluate("document.body.dataset.ready") == "1"
    rows = page.eval_on_selector_all("tr.verdict", "els => els.map(e => e.dataset.verdict)")
    assert sorted(rows) == sorted(row["verdict"] for row in table.values())
    model = page.eval_on_selector("ol.models li", "e => e.textContent")
    assert "network faults: drop" in model and "no power loss" in model
    assert page.eval_on_selector_all("#plots g.role-mark path", "els => els.length") >= 8  # lines per run and plot
    # Every violated guarantee links its counterexample's diagram, which opens too.
    links = page.eval_on_selector_all("a.diagram", "els => els.map(e => e.getAttribute('href'))")
    assert len(links) == len({row["counterexample"] for row in table.values() if row["counterexample"]}) >= 1
    diagram, errors = browser(report / links[0])
    assert errors == [] and diagram.eval_on_selector_all("g.witness_marks path", "els => els.length") >= 1
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    data = json.loads((report / "report.json").read_text())
    assert len(data["runs"]) == 2 and all(run["stats"]["rows"] for run in data["runs"])


def test_hunt_reports_the_time_to_the_first_violation(tmp_path, capsys):
    code = main(["hunt", "--guarantee", "durability", "--set", "acks=1", "--budget", "20", "--out",
                 str(tmp_path / "cx"), "--report", str(tmp_path / "r"), "--junit", str(tmp_path / "j.xml")])
    assert code == 1
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    (v,) = data["verdicts"]
    assert v["verdict"] == "VIOLATED" and v["first_violation"].startswith("after ") and v["counterexample"]
    assert data["runs"][0]["stats"]["first_violation_ms"]["durability"] is not None
    assert [(c.name, c.is_passed) for c in cases(tmp_path / "j.xml")] == [("durability", False)]


def test_a_report_that_cannot_be_written_is_exit_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["check", "--set", "acks=all", "--runs", "1", "--seconds", "5", "--no-verify", "--no-save",
                 "--report", str(tmp_path / "file" / "report")]) == 2
    out = capsys.readouterr()
    assert "kafkaproof check" in out.err and "durability" in out.out  # the verdicts are shown all the same
    assert main(["hunt", "--guarantee", "durability", "--set", "acks=1", "--budget", "5", "--out", str(tmp_path / "cx"),
                 "--junit", str(tmp_path)]) == 2  # a directory where the file goes
    assert "kafkaproof hunt" in capsys.readouterr().err


def test_the_agreement_and_unsafe_tables_as_junit(tmp_path, monkeypatch, capsys):
    """Their rows' mapping (the tables themselves are slow: tests/test_agreement.py and
    tests/test_unsafe.py run them): a contradiction, or an unsafe choice a command missed,
    is a failing case; agreement and a choice every command found pass; not shown is skipped."""
    from kafkaproof import agreement, unsafe

    said = {"durability": agreement.Cell("PROVED", (1, 8), (0, 20)),
            "exactly-once": agreement.Cell("PROVED", (0, 8), (0, 20)),
            "partition-order": agreement.Cell("VIOLATED", (0, 8), (0, 20))}
    cells = {("acks=1", "crashes"): {g: said.get(g, agreement.Cell("UNKNOWN", (0, 8), (0, 20)))
                                       for g in agreement.GUARANTEES}}
    monkeypatch.setattr(agreement, "table", lambda *a, **k: cells)
    assert main(["guarantees", "--agreement", "--junit", str(tmp_path / "a.xml"), "--report", str(tmp_path / "a")]) == 1
    got = {c.name: (c.is_passed, [type(r).__name__ for r in c.result]) for c in cases(tmp_path / "a.xml")}
    assert {g: got[g] for g in said} == {"durability": (False, ["Failure"]), "exactly-once": (True, []),
                                         "partition-order": (False, ["Skipped"])}
    assert all(got[g] == (False, ["Skipped"]) for g in got if g not in said)  # unknown
    found = unsafe.Row(unsafe.CHOICES[0], "crashes", "PROVED", "VIOLATED", "VIOLATED 3/20", "VIOLATED", "found", True, 1)
    missed = unsafe.Row(unsafe.CHOICES[1], "crashes", "PROVED", "VIOLATED", "held", "HELD", "not found", False, 1)
    rows = iter([found, missed] + [found] * len(unsafe.CHOICES))
    monkeypatch.setattr(unsafe, "row", lambda *a, **k: next(rows))
    assert main(["guarantees", "--unsafe", "--junit", str(tmp_path / "u.xml")]) == 1
    failed = [c.classname for c in cases(tmp_path / "u.xml") if not c.is_passed]
    assert failed == [unsafe.CHOICES[1].name]
    capsys.readouterr()
