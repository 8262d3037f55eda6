"""Space-time diagrams (kafkaproof/diagram.py), checked in a real browser: headless
Chromium loads them, and the test fails on any JavaScript error, reads the DOM for the
witness operations and the message arrows, moves the pointer to change the state panel
and saves a screenshot."""

import json
import pathlib

from kafkaproof.impl.engine.setup import build_setup

from kafkaproof import diagram
from kafkaproof.counterexample import load
from kafkaproof.verify import check, confirm, values_of

ROOT = pathlib.Path(__file__).resolve().parent.parent
ACKS1 = next((ROOT / "counterexamples").glob("acks-1-leader-failure--*.json"))


def marks(page, name: str) -> int:
    """How many marks the layer called `name` drew (Vega names their SVG group `{name}_marks`)."""
    return page.eval_on_selector_all(f"g.role-mark.{name}_marks > *", "els => els.length")


def panel_lines(page) -> list[str]:
    return page.eval_on_selector_all("g.role-mark.state_marks text", "els => els.map(e => e.textContent)")


def test_a_counterexample_diagram_in_chromium(browser, tmp_path):
    spec, reproduced, why, history, violation = diagram.draw(ACKS1)
    assert reproduced, why  # recording messages and states does not change the run
    path = tmp_path / "acks1.html"
    path.write_text(diagram.html(spec, "acks=1"))
    page, errors = browser(path)
    assert errors == [] and page.evaluate("document.body.dataset.ready") == "1"
    # The witness operation is drawn, highlighted (its own layer, red), tagged and listed
    # with the operations that wrote or read the value its detail names.
    named = diagram.named_in(history, violation["detail"])
    assert len(violation["witness"]) == 1 and marks(page, "witness") == len(set(violation["witness"]) | set(named))
    tags = page.eval_on_selector_all("g.role-mark.witness_labels_marks text", "els => els.map(e => e.textContent)")
    assert tags[0] == "w1"
    listed = page.eval_on_selector_all("g.role-mark.witness_list_marks text", "els => els.map(e => e.textContent)")
    assert len(listed) == len(tags) and any(history.ops[violation["witness"][0]].value in line for line in listed)
    fill = page.eval_on_selector("g.role-mark.witness_marks path", "e => e.getAttribute('fill')")
    assert fill.lower() == diagram.WITNESS_COLOUR
    # Messages as arrows between lanes, faults as bands, offsets as step lines.
    assert marks(page, "arrows") > 100 and marks(page, "heads") == marks(page, "arrows")
    assert marks(page, "faults") >= 2  # the cut and the crash
    assert page.eval_on_selector_all("g.role-mark.offsets_marks path", "els => els.length") == 6  # LEO, HW x 3
    assert all(line.startswith("w") for line in listed)
    # At open the window that matters is selected and the panel shows the witness's step.
    lo, hi = diagram.window(history, violation["witness"])
    brush = page.eval_on_selector("g.role-mark.brush_brush path", "e => e.getBoundingClientRect().width")
    whole = page.eval_on_selector("g.role-mark.brush_brush_bg", "e => e.parentNode.getBoundingClientRect().width")
    end = history.ops[-1].time
    assert abs(brush / whole - (hi - lo) / end) < 0.05 and lo > 0  # the window, not the whole run
    before = panel_lines(page)
    assert len(before) == 3 and all("LEO" in line and "HW" in line and "ISR" in line for line in before)
    box = page.eval_on_selector("g.role-mark.steps_voronoi", "e => { const r = e.getBoundingClientRect();"
                                " return [r.x, r.y, r.width, r.height]; }")
    page.mouse.move(box[0] + box[2] * 0.05, box[1] + box[3] / 2)
    page.wait_for_timeout(200)
    after = panel_lines(page)
    assert len(after) == 3 and after != before  # the state under the pointer
    page.screenshot(path=str(tmp_path / "acks1.png"), full_page=True)
    assert (tmp_path / "acks1.png").stat().st_size > 20_000
    assert errors == []


def test_a_verify_counterexample_shows_the_model_trace_step_for_step(browser, tmp_path):
    setup = build_setup(sets=["acks=1"])
    v = check("durability", values_of(setup))
    confirm(v, setup, out=str(tmp_path))
    assert v.confirmed, v.confirmation
    trace = load(v.counterexample)[2]["model_trace"]
    assert [s["action"] for s in trace] == [s.action for s in v.trace]
    spec, reproduced, *_ = diagram.draw(v.counterexample)
    assert reproduced and "hconcat" in spec
    model = spec["hconcat"][1]["data"]["values"]
    # Every fault step of the model is matched to the fault that struck in the run.
    faults = [s for s in trace if s.get("fault")]
    assert faults and sum("= run " in row["line"] for row in model) == len(faults)
    path = tmp_path / "verify.html"
    path.write_text(diagram.html(spec, "verify"))
    page, errors = browser(path)
    assert errors == []
    shown = page.eval_on_selector_all("g.role-mark.model_marks text", "els => els.map(e => e.textContent).join('\\n')")
    assert all(s["action"] in shown for s in trace)


def test_a_broken_spec_is_an_error_the_page_reports(browser, tmp_path):
    # The mutation the first test must catch: a page that fails to draw is not "ready".
    path = tmp_path / "broken.html"
    path.write_text(diagram.html({"mark": "no-such-mark", "data": {"values": []}}, "broken"))
    page, errors = browser(path)
    assert page.evaluate("document.body.dataset.ready") is None
    assert page.evaluate("document.body.dataset.error") and errors


def test_a_diagram_is_one_self_contained_file(tmp_path):
    spec, *_ = diagram.draw(ACKS1)
    page = diagram.html(spec, "acks=1")
    assert "vegaEmbed" in page and "<script src=" not in page and "http://" not in page.split("<script>")[0]
    shared = diagram.html(spec, "acks=1", bundle="vega-bundle.js")
    assert '<script src="vega-bundle.js">' in shared and len(shared) < len(page) / 2
    png = diagram.png(spec)
    assert png.startswith(b"\x89PNG")
    json.dumps(spec)  # plain data
