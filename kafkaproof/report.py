"""A report for a run of check, guarantees, hunt or the wire test: a directory whose
index.html holds the verdict table (each verdict with its failure model and the danger
events its runs reached), plots per guarantee - throughput, send latency, Jepsen's
real-time lag, time to first violation - and a link to each counterexample's
space-time diagram (kafkaproof/diagram.py), drawn beside it. report.json holds the
same data; `junit` writes the verdicts as JUnit XML for CI systems.
"""

from __future__ import annotations

import json
import pathlib
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from html import escape

from kafkaproof import diagram

BUNDLE = "vega-bundle.js"
# A JUnit failure: a guarantee broken (check, hunt, the campaigns, Jepsen's analysis), an
# unsafe choice some command missed, two commands contradicting each other.
FAILING = ("VIOLATED", "INVALID", "MISSED", "CONTRADICTED")
UNDECIDED = ("NOT SHOWN", "NOT FOUND", "UNKNOWN")  # skipped: no evidence either way


@dataclass
class Verdict:
    """One guarantee's row. `verdict`: HELD, VIOLATED, NOT SHOWN, UNKNOWN (or a table's own
    word); `evidence`: what backs it (runs, danger events reached); `counterexample`: a
    counterexample file, drawn into the report."""

    guarantee: str
    verdict: str
    evidence: str
    failure_model: str
    scope: str = ""  # the configuration or table row it belongs to
    runs: int | None = None
    first_violation: str = ""  # the first violating seed, example or run; time to it
    counterexample: str | None = None
    dangers: dict[str, int] = field(default_factory=dict)


@dataclass
class Run:
    """One run's plots: its seed, what it violated and RunResult.stats (or the wire test's)."""

    label: str
    violated: list[str]
    stats: dict


def from_check(rows: dict, results, failure_model: str, scope: str, said: dict | None = None) -> tuple[list, list]:
    """check's rows (kafkaproof/guided.check_runs) and results as (verdicts, runs); `said`:
    verify's status per guarantee, quoted beside the evidence."""
    verdicts = [Verdict(g, row["verdict"], row["evidence"] + (f" (verify: {said[g]})" if said else ""), failure_model,
                        scope, row["runs"],
                        "" if row["first_violating_seed"] is None else f"seed {row['first_violating_seed']}",
                        row.get("counterexample"), row["reached"]) for g, row in rows.items()]
    return verdicts, [Run(f"seed {r.seed}", r.violated, r.stats or {}) for r in results]


def write(directory, title: str, context: list[str], verdicts: list[Verdict], runs: list[Run] = (),
          clock: str = "simulated") -> pathlib.Path:
    """Writes directory/index.html (and report.json, the Vega bundle, diagrams/): returns index.html's path.
    `clock`: what the runs' times are ("simulated", or "wall" for a real cluster's)."""
    import vl_convert as vlc

    out = pathlib.Path(directory)
    (out / "diagrams").mkdir(parents=True, exist_ok=True)
    (out / BUNDLE).write_text(vlc.javascript_bundle())
    drawn: dict[str, str] = {}
    runs_drawn: dict = {}  # (several guarantees' counterexamples are often one run: replayed once)
    for v in verdicts:
        if v.counterexample and v.counterexample not in drawn:
            name = pathlib.Path(v.counterexample).stem
            spec, *_ = diagram.draw(v.counterexample, runs=runs_drawn)
            (out / "diagrams" / f"{name}.html").write_text(diagram.html(spec, name, bundle=f"../{BUNDLE}"))
            drawn[v.counterexample] = f"diagrams/{name}.html"
    (out / "report.json").write_text(json.dumps({"title": title, "context": context,
                                                 "verdicts": [asdict(v) for v in verdicts],
                                                 "runs": [asdict(r) for r in runs]}, indent=1))
    charts = plots(verdicts, list(runs), clock)
    index = out / "index.html"
    index.write_text(_page(title, context, verdicts, drawn, charts))
    return index


def plots(verdicts: list[Verdict], runs: list[Run], clock: str = "simulated") -> dict | None:
    """Per guarantee (chosen in the page's menu; violating runs of it drawn in red):
    operations per second, send latency (p99), real-time lag over the runs' time, and each
    violating run's time to its first violation."""
    if not runs:
        return None
    guarantees = list(dict.fromkeys(v.guarantee for v in verdicts))
    rows = [{**row, "run": r.label, "violated": r.violated} for r in runs for row in r.stats.get("rows", ())]
    firsts = [{"run": r.label, "guarantee": g, "ms": ms}
              for r in runs for g, ms in (r.stats.get("first_violation_ms") or {}).items() if ms is not None]
    pick = {"name": "guarantee", "value": guarantees[0] if guarantees else "",
            "bind": {"input": "select", "options": guarantees, "name": "guarantee: "}}
    red = {"condition": {"test": "indexof(datum.violated, guarantee) >= 0", "value": diagram.WITNESS_COLOUR},
           "value": "#4c78a8"}
    x = {"field": "t", "type": "quantitative", "title": f"{clock} time (s)"}

    def over_time(field_: str, title: str, extra: dict | None = None) -> dict:
        return {"width": 900, "height": 150, "title": title, "data": {"name": "rows"},
                "mark": {"type": "line", "interpolate": "step-after", "opacity": 0.7, **(extra or {})},
                "encoding": {"x": x, "y": {"field": field_, "type": "quantitative", "title": None},
                             "detail": {"field": "run"}, "color": red,
                             "tooltip": [{"field": "run"}, {"field": "t"}, {"field": field_}]}}

    charts = [over_time("sends", "acknowledged sends per second, per run (red: violated the chosen guarantee)"),
              over_time("polls", "polls per second"),
              over_time("p99", "send latency, 99th percentile (ms)"),
              over_time("lag", "real-time lag (ms): how long ago the first record a poll could not see was"
                               " acknowledged (Jepsen's realtime-lag)")]
    charts.append({"width": 900, "height": 80, "title": "time to the first violation of the chosen guarantee,"
                                                        f" per violating run ({clock} ms)",
                   "data": {"name": "firsts"}, "transform": [{"filter": "datum.guarantee == guarantee"}],
                   "mark": {"type": "tick", "thickness": 3, "color": diagram.WITNESS_COLOUR},
                   "encoding": {"x": {"field": "ms", "type": "quantitative", "title": f"{clock} ms",
                                      "scale": {"zero": True}},
                                "tooltip": [{"field": "run"}, {"field": "ms"}]}})
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "params": [pick],
            "datasets": {"rows": rows, "firsts": firsts}, "vconcat": charts}


def _page(title: str, context: list[str], verdicts: list[Verdict], drawn: dict[str, str], charts: dict | None) -> str:
    colour = {**dict.fromkeys(FAILING, "#c0392b"),
              **dict.fromkeys(("HELD", "VALID", "PROVED", "AGREE", "FOUND"), "#1e8449")}
    # Each verdict names its failure model: the models once, numbered, the rows by number.
    models = list(dict.fromkeys(v.failure_model for v in verdicts))
    rows = []
    for v in verdicts:
        link = (f'<a class="diagram" href="{escape(drawn[v.counterexample])}">diagram</a> '
                f'<code title="{escape(v.counterexample)}">{escape(pathlib.Path(v.counterexample).name[:40])}</code>'
                if v.counterexample in drawn else "")
        reached = ", ".join(f"{d} {n}x" for d, n in v.dangers.items() if n) or ""
        n = models.index(v.failure_model) + 1
        rows.append(f'<tr class="verdict" data-verdict="{escape(v.verdict)}"><td>{escape(v.scope)}</td>'
                    f"<td>{escape(v.guarantee)}</td>"
                    f'<td style="color:{colour.get(v.verdict, "#b7950b")}"><b>{escape(v.verdict)}</b></td>'
                    f"<td>{escape(v.evidence)}</td><td>{escape(reached)}</td>"
                    f'<td><a href="#model-{n}" title="{escape(v.failure_model)}">model {n}</a></td>'
                    f"<td>{'' if v.runs is None else v.runs}</td><td>{escape(v.first_violation)}</td><td>{link}</td></tr>")
    listed = "".join(f'<li id="model-{i}">{escape(m)}</li>' for i, m in enumerate(models, start=1))
    head = "".join(f"<th>{h}</th>" for h in ("scope", "guarantee", "verdict", "evidence", "danger events reached",
                                              "failure model", "runs", "first violation", "counterexample"))
    embed = ""
    if charts is not None:
        packed = json.dumps(charts, separators=(",", ":")).replace("</", "<\\/")
        embed = f"""<h2>Runs</h2><div id="plots">drawing...</div>
<script>
vegaEmbed("#plots", {packed}, {{renderer: "svg", actions: false}})
  .then(r => {{ window.view = r.view; document.body.dataset.ready = "1"; }})
  .catch(e => {{ document.body.dataset.error = String(e); console.error(e); }});
</script>"""
    else:
        embed = '<script>document.body.dataset.ready = "1";</script>'
    lines = "".join(f"<p>{escape(line)}</p>" for line in context)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)}</title><script src="{BUNDLE}"></script>
<style>body{{font-family:sans-serif;margin:16px}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}} p{{margin:2px 0}}</style></head>
<body><h1>{escape(title)}</h1>{lines}
<h2>Verdicts</h2><table><tr>{head}</tr>{''.join(rows)}</table>
<h2>Failure models</h2><ol class="models">{listed}</ol>
{embed}
</body></html>
"""


def write_reports(args, title: str, context: list[str], verdicts: list[Verdict], runs: list[Run] = (),
                  clock: str = "simulated") -> int:
    """A command's --report DIR and --junit FILE, when asked: 0, or 2 with the reason on stderr."""
    import sys

    try:
        if getattr(args, "report", None):
            index = write(args.report, title, context, verdicts, runs, clock)
            print(f"report: {index}", file=sys.stderr)
        if getattr(args, "junit", None):
            junit(args.junit, title, verdicts)
    except OSError as exc:
        print(f"kafkaproof {args.command}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def junit(path, suite: str, verdicts: list[Verdict]) -> None:
    """JUnit XML: one test case per verdict (classname: its scope), failed when VIOLATED,
    skipped when nothing was shown either way (NOT SHOWN, UNKNOWN), passed otherwise."""
    failures = sum(v.verdict in FAILING for v in verdicts)
    skipped = sum(v.verdict in UNDECIDED for v in verdicts)
    root = ET.Element("testsuites", name="kafkaproof", tests=str(len(verdicts)), failures=str(failures))
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(verdicts)), failures=str(failures),
                       errors="0", skipped=str(skipped))
    for v in verdicts:
        case = ET.SubElement(ts, "testcase", classname=v.scope or suite, name=v.guarantee)
        text = f"{v.verdict}: {v.evidence}; failure model: {v.failure_model}"
        if v.counterexample:
            text += f"; counterexample: {v.counterexample}"
        if v.verdict in FAILING:
            ET.SubElement(case, "failure", message=f"{v.guarantee} {v.verdict}", type=v.verdict).text = text
        elif v.verdict in UNDECIDED:
            ET.SubElement(case, "skipped", message=text)
        ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    pathlib.Path(path).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
