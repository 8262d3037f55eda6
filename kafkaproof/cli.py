"""The `kafkaproof` command line. Exit codes: 0 ok, 1 a finding (corruption,
violation), 2 a usage or input error."""

from __future__ import annotations

import argparse
import sys

from kafkaproof import __version__


def _dump_log(args: argparse.Namespace) -> int:
    from kafkaproof.impl.storage.dump import dump_segment, segment_files

    try:
        files = segment_files(args.path)
    except OSError as exc:
        print(f"kafkaproof dump-log: {exc}", file=sys.stderr)
        return 2
    if not files:
        print(f"kafkaproof dump-log: {args.path}: no .log segment files here", file=sys.stderr)
        return 2
    all_ok = True
    for path in files:
        try:
            for line, ok in dump_segment(path, records=args.records):
                print(line)
                all_ok &= ok
        except OSError as exc:
            print(f"kafkaproof dump-log: {path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0 if all_ok else 1


def _demo(args: argparse.Namespace) -> int:
    from kafkaproof.demo import run

    return run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafkaproof",
        description="A Kafka-compatible broker and a kit that proves, breaks and explains "
        "Kafka's delivery guarantees.",
    )
    parser.add_argument("--version", action="version", version=f"kafkaproof {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("dump-log", help="print the batches of a segment file or partition directory")
    p.add_argument("path", help="a .log segment file or a partition directory")
    p.add_argument("--records", action="store_true", help="print every record too")
    p.set_defaults(func=_dump_log)

    p = sub.add_parser("demo", help="show what one broker's log keeps through crashes")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
