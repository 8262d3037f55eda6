"""What security costs `serve`: produce and consume throughput over PLAINTEXT (the baseline,
measured in the same run), SSL and SASL_SSL with SCRAM-SHA-512, with librdkafka
(confluent-kafka) as the client; each as a ratio to PLAINTEXT, and each broker process's
peak RSS. One broker per protocol (`serve --brokers 1`, its own process), 100 KiB
messages, acks=1, replication factor 1: the figure is the listener's cost, not replication's.
The protocols take turns for --rounds rounds and each keeps its best figure (the first
broker started otherwise pays for the machine warming up).

    python benchmarks/security.py [--mb 96] [--rounds 3]
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from broker import CHUNK, consume_mb_s, produce_mb_s, rss_of  # noqa: E402

SIZE = 100 * 1024


def start(protocol: str, d: str, data: str) -> tuple[subprocess.Popen, dict]:
    sets = {"PLAINTEXT": [], "SSL": ["listeners=SSL://:9093"],
            "SASL_SSL": ["listeners=SASL_SSL://:9093", "sasl.enabled.mechanisms=SCRAM-SHA-512"]}[protocol]
    if protocol != "PLAINTEXT":
        sets += ["ssl.keystore.type=PEM", f"ssl.keystore.location={d}/broker.pem"]
    args = [x for s in sets for x in ("--set", s)]
    p = subprocess.Popen([sys.executable, "-m", "kafkaproof", "serve", "--brokers", "1", "--port", "0", "--data-dir",
                          f"{d}/{data}", "--log-level", "WARNING", "--users", f"{d}/users", *args],
                         stdout=subprocess.PIPE, text=True)
    bootstrap = p.stdout.readline().strip().split("=", 1)[1]
    conf = {"bootstrap.servers": bootstrap}
    if protocol != "PLAINTEXT":
        conf |= {"security.protocol": protocol, "ssl.ca.location": f"{d}/ca.pem"}
    if protocol == "SASL_SSL":
        conf |= {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "bench", "sasl.password": "bench-secret"}
    return p, conf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=96, help="MiB produced per protocol and round")
    parser.add_argument("--rounds", type=int, default=3, help="turns of the three protocols")
    args = parser.parse_args()
    import trustme

    with tempfile.TemporaryDirectory() as d:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(f"{d}/ca.pem")
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(f"{d}/broker.pem")
        with open(f"{d}/users", "w") as f:
            f.write("bench=bench-secret\n")
        figures: dict[str, tuple[float, float, float]] = {}
        for r in range(args.rounds):
            for protocol in ("PLAINTEXT", "SSL", "SASL_SSL"):
                p, conf = start(protocol, f"{d}", f"{protocol}-{r}")
                bootstrap = conf.pop("bootstrap.servers")  # (the rest: the security settings)
                try:
                    produced = produce_mb_s(bootstrap, "bench", SIZE, args.mb, "1", **conf)
                    consumed = consume_mb_s(bootstrap, "bench", args.mb * CHUNK // SIZE * SIZE, **conf)
                    rss = rss_of(p.pid, "VmHWM")
                finally:
                    p.terminate()
                    p.wait(30)
                best = figures.get(protocol, (0.0, 0.0, 0.0))
                figures[protocol] = (max(best[0], produced), max(best[1], consumed), max(best[2], rss))
        for protocol, (produced, consumed, rss) in figures.items():
            report(f"{protocol} produce (best of {args.rounds})", produced, "MB/s")
            report(f"{protocol} consume (best of {args.rounds})", consumed, "MB/s")
            report(f"{protocol} broker peak RSS", rss, "MB")
        base = figures["PLAINTEXT"]
        for protocol in ("SSL", "SASL_SSL"):
            report(f"{protocol} / PLAINTEXT produce", figures[protocol][0] / base[0])
            report(f"{protocol} / PLAINTEXT consume", figures[protocol][1] / base[1])
    report("benchmark process peak RSS", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
