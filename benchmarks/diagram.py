"""Space-time diagrams (issue 21): for a counterexample of 30 simulated seconds and the longest, the
self-contained HTML's size (aim <= 2 MB) and the time headless Chromium takes from
opening the file to the drawn diagram (aim <= 2 s), against a page with the same Vega
bundle and a one-point chart measured in the same browser (the baseline); the time to
replay and build it, and peak memory (this process; Chromium's is apart).

    python benchmarks/diagram.py [--repeat 3]
"""

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402

from kafkaproof import diagram  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The first lasts 30 simulated seconds (the size; transactions: the busiest traffic), the
# second is the longest entry.
ENTRIES = ["late-marker-before-kip890", "unclean-leader-election"]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out = pathlib.Path(tempfile.mkdtemp())
    pages = {"baseline": out / "baseline.html"}
    pages["baseline"].write_text(diagram.html({"mark": "point", "data": {"values": [{"x": 1}]},
                                               "encoding": {"x": {"field": "x", "type": "quantitative"}}}, "baseline"))
    for name in ENTRIES:
        path = next((ROOT / "counterexamples").glob(f"{name}--*.json"))
        t0 = time.perf_counter()
        spec, reproduced, _, history, _ = diagram.draw(path)
        page = diagram.html(spec, name)
        built = time.perf_counter() - t0
        pages[name] = out / f"{name}.html"
        pages[name].write_text(page)
        report(f"{name}_simulated_seconds", history.ops[-1].time / 1000)
        report(f"{name}_html_bytes", len(page.encode()), "(aim <= 2,000,000)")
        report(f"{name}_replay_and_build_seconds", built)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium: not installed (apt-get install chromium): render times not measured")
    else:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
            times = {name: [] for name in pages}
            for _ in range(args.repeat):
                for name, path in pages.items():
                    page = browser.new_page(viewport={"width": 1500, "height": 1000})
                    t0 = time.perf_counter()
                    page.goto(path.as_uri())
                    page.wait_for_function("document.body.dataset.ready || document.body.dataset.error")
                    times[name].append(time.perf_counter() - t0)
                    assert page.evaluate("document.body.dataset.ready") == "1", name
                    page.close()
            browser.close()
        base = statistics.median(times["baseline"])
        report("baseline_render_seconds", base, "(the same bundle, one point)")
        for name in ENTRIES:
            median = statistics.median(times[name])
            report(f"{name}_render_seconds", median, "(aim <= 2)")
            report(f"{name}_render_vs_baseline", median / base)
    shutil.rmtree(out)
    report("peak_rss", peak_rss_mb(), "MB (this process)")


if __name__ == "__main__":
    main()
