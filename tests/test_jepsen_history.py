"""Jepsen's history files (properties/jepsen_history.py) and `kafkaproof analyse`: EDN read
as edn_format (the EDN library on PyPI) reads it, written so that it reads back the same,
and a file that is not a Kafka history refused with the line and the reason (exit 2)."""

import json

import edn_format
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafkaproof.properties.jepsen_history import (
    HistoryError,
    Keyword,
    dumps_edn,
    edn_forms,
    parse,
    write_edn,
    write_jsonl,
)
from kafkaproof.properties.jepsen_kafka import analysis

from kafkaproof.cli import main


def plain(v):
    """edn_format's value in this module's terms: keywords as names, vectors as lists."""
    if isinstance(v, edn_format.Keyword):
        return v.name
    if isinstance(v, edn_format.Symbol):
        return v.name
    if hasattr(v, "items"):  # edn_format's ImmutableDict
        return {plain(k): plain(x) for k, x in v.items()}
    if isinstance(v, (frozenset, set)):
        return frozenset(plain(x) for x in v)
    if isinstance(v, edn_format.Char):
        return str(v)
    if isinstance(v, (list, tuple, edn_format.ImmutableList)):
        return [plain(x) for x in v]
    return v


def ours(v):
    if isinstance(v, dict):
        return {(list(k) if isinstance(k, tuple) else k): ours(x) for k, x in v.items()}
    if isinstance(v, (frozenset, set)):
        return frozenset(v)
    if isinstance(v, (list, tuple)):
        return [ours(x) for x in v]
    return v


JEPSEN_LINES = """\
{:type :invoke, :f :send, :value [[:send 5 140]], :time 13620301650, :process 23, :index 7796}
{:process 23, :type :ok, :f :send, :value ([:send 5 [272 140]]), :index 7797, :time 13620301650}
#jepsen.history.Op{:index 7798, :time 13620301651, :type :info, :process :nemesis, :f :kill, :value {"n1" :killed}}
{:process 187, :type :ok, :f :poll, :value [[:poll {5 [[272 140] [273 142]], 6 []}]], :poll-ms 1000, :index 24255}
{:index 9, :type :fail, :f :txn, :value [[:send :x -1] [:poll]], :error [:abort "txn \\"aborted\\"\\n"], :ok? false, :t 1.5}
{:index 10, :type :ok, :f :assign, :value #{0 1 2}, :k nil, :c \\a, :s sym/bol}
"""


def test_the_reader_agrees_with_edn_format_on_jepsen_s_lines():
    edn_format.add_tag("jepsen.history.Op", lambda op: op)  # Jepsen's record: the map
    for (_, mine), theirs in zip(edn_forms(JEPSEN_LINES), JEPSEN_LINES.splitlines(), strict=True):
        assert ours(mine) == plain(edn_format.loads(theirs))


edn_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8)
    | st.from_regex(r"[a-z][a-z0-9\-?!]{0,6}", fullmatch=True).map(Keyword)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.integers(-5, 5) | st.from_regex(r"[a-z]{1,4}", fullmatch=True).map(Keyword), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(edn_values)
def test_what_it_writes_edn_format_reads_and_it_reads_back(value):
    text = dumps_edn(value)
    [(_, back)] = list(edn_forms(text))
    assert ours(back) == ours(value)
    assert ours(back) == plain(edn_format.loads(text))


def history():
    return [{"index": 0, "time": 1, "process": 0, "type": "invoke", "f": "send", "value": [["send", "x", "a"]]},
            {"index": 1, "time": 2, "process": 0, "type": "ok", "f": "send", "value": [["send", "x", [0, "a"]]]},
            {"index": 2, "time": 3, "process": "nemesis", "type": "info", "f": "kill", "value": "n1"},
            {"index": 3, "time": 4, "process": 1, "type": "invoke", "f": "poll", "value": [["poll"]]},
            {"index": 4, "time": 5, "process": 1, "type": "ok", "f": "poll", "value": [["poll", {"x": [[0, "a"]], 7: []}]],
             "log-end": {7: 0}}]


@pytest.mark.parametrize("write", [write_edn, write_jsonl])
def test_a_history_round_trips_with_its_header(write):
    ops, header = parse(write(history(), {"final-read": False}))
    assert ops == history() and header["final-read"] is False
    assert analysis(ops).errors == {}


BAD = {
    "not-kafka.edn": ('{:index 0, :type :invoke, :process 0, :f :read, :value nil}\n', "not a Kafka workload history"),
    "register.edn": ('{:index 0, :type :invoke, :process 0, :f :assign, :value [1]}\n'
                     '{:index 1, :type :ok, :process 0, :f :assign, :value [1]}\n', "no send, poll or txn"),
    "noise.edn": ("hello world\n", "not a Jepsen operation"),
    "cut-mid-line.edn": (write_edn(history())[:-30], "truncated"),
    "cut-at-a-line.edn": ("".join(write_edn(history()).splitlines(keepends=True)[:4]), "truncated: 1 invocation"),
    "cut.jsonl": (write_jsonl(history())[:-12], "truncated"),
    "empty.edn": ("", "empty"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_file_that_is_not_a_whole_kafka_history_is_refused_with_exit_2(name, tmp_path, capsys):
    text, why = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(HistoryError, match=why):
        parse(text)
    assert main(["analyse", str(path)]) == 2
    err = capsys.readouterr().err
    assert why in err and str(path) in err, err


def test_analyse_judges_a_jepsen_history_and_writes_it_back(tmp_path, capsys):
    """A lost write Jepsen's own test case shows (kafka_test.clj, lost-write "consistent"):
    INVALID, exit 1, the same as the history written back as EDN and as JSON lines."""
    h = [{"index": 0, "process": 0, "type": "invoke", "f": "send", "value": [["send", "x", "a"]]},
         {"index": 1, "process": 0, "type": "ok", "f": "send", "value": [["send", "x", [0, "a"]]]},
         {"index": 2, "process": 1, "type": "invoke", "f": "send", "value": [["send", "x", "b"]]},
         {"index": 3, "process": 1, "type": "ok", "f": "send", "value": [["send", "x", [1, "b"]]]},
         {"index": 4, "process": 2, "type": "invoke", "f": "poll", "value": [["poll"]]},
         {"index": 5, "process": 2, "type": "ok", "f": "poll", "value": [["poll", {"x": [[1, "b"]]}]]}]
    src = tmp_path / "history.edn"
    src.write_text(write_edn(h))
    assert main(["analyse", str(src), "--json", "--edn", str(tmp_path / "back.edn"),
                 "--jsonl", str(tmp_path / "back.jsonl")]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert (verdict["verdict"], verdict["bad"], verdict["counts"]) == ("INVALID", ["lost-write"], {"lost-write": 1})
    assert verdict["faults"] == {} and verdict["final_read"] is True
    for back in ("back.edn", "back.jsonl"):
        assert main(["analyse", str(tmp_path / back), "--json"]) == 1
        assert json.loads(capsys.readouterr().out)["counts"] == {"lost-write": 1}


def test_analyse_says_unknown_when_nothing_or_too_little_was_judged(tmp_path, capsys):
    """An empty history (Jepsen: not valid) and acknowledged values never polled without a
    final read are UNKNOWN (exit 3), not VALID."""
    path = tmp_path / "h.jsonl"
    path.write_text(write_jsonl(history()[:2], {"final-read": False}))
    assert main(["analyse", str(path)]) == 3
    assert "UNKNOWN: 1 acknowledged values were never polled" in capsys.readouterr().out
    assert main(["analyse", str(path), "--final-read", "yes"]) == 1  # then it is unseen
    path.write_text(write_jsonl(history(), {"final-read": False}))
    assert main(["analyse", str(path)]) == 0
    out = capsys.readouterr().out
    assert "VALID" in out and "kill x1" in out  # the failure model: what the nemesis did


def test_analyse_reads_a_counterexample_s_history_with_the_oracle_beside_it(capsys):
    """acks=1's saved lost write: the history alone (no final read) is UNKNOWN, never a
    VALID that contradicts the oracle, and the oracle's verdict is printed beside it."""
    import glob

    [path] = glob.glob("counterexamples/acks-1-leader-failure--*.json")
    assert main(["analyse", path]) == 3
    out = capsys.readouterr().out
    assert "oracle (extra evidence): durability: lost-write" in out and "crash x1" in out
