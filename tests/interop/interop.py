#!/usr/bin/env python3
"""Interoperability checks between kafkawire (its CLI) and librdkafka (confluent-kafka).

Run by scripts/interop against a Tansu broker:

    interop.py --bootstrap 127.0.0.1:PORT --kafkawire /path/to/kafkawire

Each check prints one line, `ok   NAME` or `FAIL NAME: reason` (or `xfail NAME: reason` for a
known kafkawire bug listed in EXPECTED_FAILURES), and the last line is
`interop: N passed, M failed`. Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaException,
    Producer,
    TopicPartition,
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 3
RECORDS = 2000
CONSUME_TIMEOUT_S = 30.0
SUBPROCESS_TIMEOUT_S = 60.0

# Checks that fail because of a known kafkawire bug: name -> issue description. A failing check
# listed here counts as passed-with-note ("xfail") so CI stays green until the lead fixes it; if it
# starts passing, it is reported as "XPASS" (and counted as a failure, so the entry is removed).
EXPECTED_FAILURES: dict[str, str] = {}

UTF8_TEXT = "héllo wörld ✓ 日本語 ключ 🎉"


class CheckFailed(Exception):
    pass


class Runner:
    def __init__(self, bootstrap: str, kafkawire: str, verbose: bool):
        self.bootstrap = bootstrap
        self.kafkawire = kafkawire
        self.verbose = verbose
        self.passed = 0
        self.failed = 0
        self.run_id = uuid.uuid4().hex[:8]
        self.rdk_log: list[str] = []
        self.last_stats: dict | None = None
        # Bytes on the wire per (direction, codec): a codec's must be well below "none"'s.
        self.wire: dict[tuple[str, str], int] = {}
        # librdkafka's log lines are kept (not printed) and shown with -v when a check fails.
        self.logger = logging.getLogger("librdkafka")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        handler = logging.Handler()
        handler.emit = lambda rec: self._log(rec.levelname.lower(), rec.getMessage())
        self.logger.addHandler(handler)

    # ---- plumbing ---------------------------------------------------------------------------

    def check(self, name, fn, *args):
        started = time.monotonic()
        self.rdk_log.clear()
        try:
            fn(*args)
            err = None
        except CheckFailed as e:
            err = str(e)
        except Exception as e:  # noqa: BLE001 - a crash in one check must not stop the others
            err = f"{type(e).__name__}: {e}"
        secs = time.monotonic() - started
        expected = EXPECTED_FAILURES.get(name)
        if err is None and expected is None:
            self.passed += 1
            print(f"ok   {name} ({secs:.1f} s)", flush=True)
        elif err is None:
            self.failed += 1
            print(f"XPASS {name}: passes now; remove it from EXPECTED_FAILURES ({expected})", flush=True)
        elif expected is not None:
            self.passed += 1
            print(f"xfail {name}: {shorten(err)} (known kafkawire bug: {expected})", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {shorten(err)}", flush=True)
            if self.verbose and self.rdk_log:
                for line in self.rdk_log[-10:]:
                    print(f"     librdkafka: {line}", flush=True)

    def _log(self, level, msg):
        if len(self.rdk_log) < 1000:
            self.rdk_log.append(f"{level} {msg}")

    def _stats(self, js):
        self.last_stats = json.loads(js)

    def wire_bytes(self, field: str) -> int:
        """Sum of `field` (rxbytes, txbytes) over the brokers in the last statistics."""
        return sum(b.get(field, 0) for b in (self.last_stats or {}).get("brokers", {}).values())

    def compare_wire(self, direction: str, codec: str, field: str):
        """Records the bytes librdkafka's statistics counted for this codec; for a codec other
        than none, they must be well below what the same data took uncompressed."""
        n = self.wire_bytes(field)
        if n <= 0:
            raise CheckFailed(f"librdkafka statistics have no {field} (no statistics received?)")
        self.wire[(direction, codec)] = n
        plain = self.wire.get((direction, "none"))
        if codec != "none" and plain is not None and n > 0.8 * plain:
            raise CheckFailed(
                f"{field} {n} with {codec} vs {plain} uncompressed: the records were not compressed"
            )

    def rdk_conf(self, **extra):
        conf = {
            "bootstrap.servers": self.bootstrap,
            "broker.address.family": "v4",
            "error_cb": lambda err: self._log("error", err),
            "logger": self.logger,
            # Statistics tell how many bytes crossed the wire: proof that a codec was used.
            "statistics.interval.ms": 100,
            "stats_cb": self._stats,
        }
        conf.update(extra)
        return conf

    def topic(self, label: str) -> str:
        return f"interop-{self.run_id}-{label}"

    def kw(self, *args, stdin: bytes | None = None) -> bytes:
        cmd = [self.kafkawire, "--bootstrap", self.bootstrap, *args]
        try:
            p = subprocess.run(
                cmd,
                input=stdin if stdin is not None else b"",
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=SUBPROCESS_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"`kafkawire {' '.join(args)}` did not finish in {SUBPROCESS_TIMEOUT_S:.0f} s")
        if p.returncode != 0:
            tail = p.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise CheckFailed(f"`kafkawire {' '.join(args)}` exited {p.returncode}: {' | '.join(tail)}")
        return p.stdout

    def create_topic(self, topic: str, partitions: int = PARTITIONS):
        self.kw("topics", "create", topic, "--partitions", str(partitions))

    def rdk_read_all(self, topic: str, expected: int, partitions: int = PARTITIONS):
        """Reads `expected` records from every partition of `topic` from the beginning."""
        c = Consumer(
            self.rdk_conf(
                **{
                    "group.id": f"interop-{self.run_id}-{uuid.uuid4().hex[:6]}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                    "fetch.wait.max.ms": 50,
                }
            )
        )
        try:
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
            got = []
            deadline = time.monotonic() + CONSUME_TIMEOUT_S
            while len(got) < expected and time.monotonic() < deadline:
                for m in c.consume(num_messages=1000, timeout=0.5):
                    if m.error():
                        raise CheckFailed(f"librdkafka consumer error: {m.error()}")
                    got.append(m)
            # A little longer, to catch records beyond the expected count (duplicates) and to
            # receive statistics that include everything fetched.
            self.last_stats = None
            end = time.monotonic() + 0.3
            while time.monotonic() < end or (self.last_stats is None and time.monotonic() < end + 2):
                for m in c.consume(num_messages=1000, timeout=0.1):
                    if not m.error():
                        got.append(m)
            return got
        finally:
            c.close()

    def rdk_produce(self, topic: str, records, **conf):
        """Produces (key, value, headers, partition|None) tuples; returns delivery reports in
        the records' order as (partition, offset, timestamp)."""
        p = Producer(self.rdk_conf(**{"linger.ms": 5, "acks": "all", **conf}))
        reports: list = [None] * len(records)
        errors = []

        def on_delivery(i):
            def cb(err, msg):
                if err is not None:
                    errors.append(f"record {i}: {err}")
                else:
                    reports[i] = (msg.partition(), msg.offset(), msg.timestamp())

            return cb

        for i, (key, value, headers, partition) in enumerate(records):
            kwargs = {"key": key, "value": value, "on_delivery": on_delivery(i)}
            if headers:
                kwargs["headers"] = headers
            if partition is not None:
                kwargs["partition"] = partition
            while True:
                try:
                    p.produce(topic, **kwargs)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        left = p.flush(30)
        if left:
            raise CheckFailed(f"librdkafka producer: {left} records still undelivered after 30 s")
        self.last_stats = None
        deadline = time.monotonic() + 2
        while self.last_stats is None and time.monotonic() < deadline:
            p.poll(0.05)
        if errors:
            raise CheckFailed(f"librdkafka delivery errors ({len(errors)}): {errors[0]}")
        return reports

    # ---- data -------------------------------------------------------------------------------

    @staticmethod
    def kw_lines(prefix: str):
        """(key, value) byte pairs for kafkawire produce --key-separator TAB: unique keys of
        varied lengths (all murmur2 tail sizes) and scripts, UTF-8 values, values containing
        TABs (only the first TAB of a line separates), and a few ~10 KB values."""
        out = []
        for i in range(RECORDS):
            if i % 10 == 3:
                key = f"{prefix}ключ-{i}"
            elif i % 10 == 7:
                key = f"{prefix}鍵🎉{i}"
            else:
                key = f"{prefix}key-{i}" + "x" * (i % 7)
            if i % 400 == 17:
                value = f"long-{i}-" + ("0123456789abcdef" * 640)  # ~10 KB
            elif i % 50 == 5:
                value = f"value-{i} {UTF8_TEXT}"
            elif i % 97 == 1:
                value = f"value-{i}\twith\ttabs"
            else:
                value = f"value-{i} " + "v" * (i % 23)
            out.append((key.encode(), value.encode()))
        return out

    # ---- checks -----------------------------------------------------------------------------

    def kafkawire_to_librdkafka(self, codec: str, key_partitions: dict):
        topic = self.topic(f"kw2rdk-{codec}")
        self.create_topic(topic)
        lines = self.kw_lines(f"{codec}-")
        stdin = b"".join(k + b"\t" + v + b"\n" for k, v in lines)
        t0 = int(time.time() * 1000)
        self.kw(
            "produce", "--topic", topic, "--key-separator", "\t", "--header", "src=kafkawire",
            "--compression", codec, stdin=stdin,
        )
        t1 = int(time.time() * 1000)
        got = self.rdk_read_all(topic, len(lines))
        index = {k: i for i, (k, _) in enumerate(lines)}
        seen: dict[int, tuple] = {}
        last_index_in_partition: dict[int, tuple] = {}
        for m in sorted(got, key=lambda m: (m.partition(), m.offset())):
            key, value = m.key(), m.value()
            if key not in index:
                raise CheckFailed(f"unexpected key {key!r} at {m.partition()}/{m.offset()}")
            i = index[key]
            where = f"record {i} (key {key[:30]!r}) at partition {m.partition()} offset {m.offset()}"
            if i in seen:
                raise CheckFailed(f"{where}: duplicate, also at {seen[i]}")
            seen[i] = (m.partition(), m.offset())
            if value != lines[i][1]:
                raise CheckFailed(f"{where}: value {value[:40]!r}... != {lines[i][1][:40]!r}...")
            if m.headers() != [("src", b"kafkawire")]:
                raise CheckFailed(f"{where}: headers {m.headers()!r} != [('src', b'kafkawire')]")
            ts_type, ts = m.timestamp()
            if ts_type != TIMESTAMP_CREATE_TIME or not (t0 - 5000 <= ts <= t1 + 5000):
                raise CheckFailed(f"{where}: timestamp {(ts_type, ts)} not a CreateTime within [{t0}, {t1}]")
            prev = last_index_in_partition.get(m.partition())
            if prev is not None and prev[0] > i:
                raise CheckFailed(
                    f"order in partition {m.partition()}: record {prev[0]} at offset {prev[1]} "
                    f"before record {i} at offset {m.offset()}"
                )
            last_index_in_partition[m.partition()] = (i, m.offset())
            key_partitions[key] = m.partition()
        if len(seen) != len(lines):
            missing = sorted(set(range(len(lines))) - set(seen))
            raise CheckFailed(
                f"librdkafka read {len(seen)} of {len(lines)} records in {CONSUME_TIMEOUT_S:.0f} s; "
                f"first missing: record {missing[0]} key {lines[missing[0]][0]!r}"
            )
        if len(last_index_in_partition) != PARTITIONS:
            raise CheckFailed(f"records landed in only {sorted(last_index_in_partition)} of {PARTITIONS} partitions")
        self.compare_wire("kw2rdk", codec, "rxbytes")

    def murmur2_partitioning(self, key_partitions: dict):
        if len(key_partitions) < RECORDS:
            raise CheckFailed(f"only {len(key_partitions)} keys partitioned by kafkawire to compare (check 1 failed)")
        topic = self.topic("murmur2")
        self.create_topic(topic)
        keys = list(key_partitions)
        reports = self.rdk_produce(
            topic, [(k, b"x", None, None) for k in keys], partitioner="murmur2_random"
        )
        diffs = [(k, key_partitions[k], r[0]) for k, r in zip(keys, reports) if key_partitions[k] != r[0]]
        if diffs:
            k, kwp, rdp = diffs[0]
            raise CheckFailed(
                f"{len(diffs)} of {len(keys)} keys partitioned differently, e.g. key {k!r}: "
                f"kafkawire {kwp}, librdkafka murmur2_random {rdp}"
            )

    def librdkafka_to_kafkawire(self, codec: str):
        topic = self.topic(f"rdk2kw-{codec}")
        self.create_topic(topic)
        records = []
        for i in range(RECORDS):
            key = (f"rk-{codec}-{i}" if i % 5 else f"rk-{codec}-ключ-{i}").encode()
            if i % 400 == 11:
                value = f"long-{i}-" + ("fedcba9876543210" * 640)
            elif i % 30 == 2:
                value = f"value-{i} {UTF8_TEXT}"
            else:
                value = f"value-{i} " + "w" * (i % 19)
            headers = [("src", b"librdkafka"), ("seq", str(i).encode())]
            if i % 10 == 4:
                headers += [("utf", f"ü€-{i}".encode()), ("dup", b"a"), ("dup", b"b")]
            records.append((key, value.encode(), headers, None))
        reports = self.rdk_produce(topic, records, **{"compression.type": codec})
        self.compare_wire("rdk2kw", codec, "txbytes")
        expected = {(r[0], r[1]): (i, r[2]) for i, r in enumerate(reports)}
        if len(expected) != len(records):
            raise CheckFailed("librdkafka delivery reports repeat a (partition, offset)")
        out = self.kw(
            "consume", "--topic", topic, "--exit-at-end", "--format", r"%p\t%o\t%T\t%k\t%v\t%h\n"
        )
        lines = out.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        seen = set()
        for n, line in enumerate(lines):
            fields = line.split(b"\t")
            if len(fields) != 6:
                raise CheckFailed(f"output line {n + 1} has {len(fields)} fields, not 6: {line[:80]!r}")
            p, o, ts, k, v, h = fields
            pos = (int(p), int(o))
            if pos not in expected:
                raise CheckFailed(f"kafkawire printed a record at {pos[0]}/{pos[1]} that librdkafka did not report")
            if pos in seen:
                raise CheckFailed(f"kafkawire printed {pos[0]}/{pos[1]} twice")
            seen.add(pos)
            i, (ts_type, want_ts) = expected[pos]
            key, value, headers, _ = records[i]
            where = f"record {i} at {pos[0]}/{pos[1]}"
            if k != key:
                raise CheckFailed(f"{where}: key {k!r} != {key!r}")
            if v != value:
                raise CheckFailed(f"{where}: value {v[:40]!r}... != {value[:40]!r}...")
            want_h = b",".join(hk.encode() + b"=" + hv for hk, hv in headers)
            if h != want_h:
                raise CheckFailed(f"{where}: headers {h!r} != {want_h!r}")
            if ts_type == TIMESTAMP_CREATE_TIME and int(ts) != want_ts:
                raise CheckFailed(f"{where}: timestamp {int(ts)} != {want_ts} (librdkafka CreateTime)")
        if len(seen) != len(expected):
            missing = sorted(set(expected) - seen)
            raise CheckFailed(
                f"kafkawire printed {len(seen)} of {len(expected)} records; first missing "
                f"{missing[0][0]}/{missing[0][1]}"
            )
        # Offsets within each partition are printed in order.
        last: dict[int, int] = {}
        for line in lines:
            p, o = (int(x) for x in line.split(b"\t", 2)[:2])
            if last.get(p, -1) >= o:
                raise CheckFailed(f"partition {p}: offset {o} printed after {last[p]}")
            last[p] = o

    def nulls_kafkawire_to_librdkafka(self):
        # With --key-separator TAB: a line without TAB has a null key; "k\t" an empty value;
        # "\tv" an empty key; an empty line a null key and an empty value. kafkawire produce
        # never sends a null value.
        topic = self.topic("nulls-kw2rdk")
        self.create_topic(topic, 1)
        lines = [b"no-key-value", b"k-empty-value\t", b"\tempty-key-value", b"\t", b"", b"k-last\tv-last"]
        want = [
            (None, b"no-key-value"),
            (b"k-empty-value", b""),
            (b"", b"empty-key-value"),
            (b"", b""),
            (None, b""),
            (b"k-last", b"v-last"),
        ]
        self.kw(
            "produce", "--topic", topic, "--partition", "0", "--key-separator", "\t",
            stdin=b"".join(line + b"\n" for line in lines),
        )
        got = sorted(self.rdk_read_all(topic, len(want), 1), key=lambda m: m.offset())
        have = [(m.key(), m.value()) for m in got]
        if have != want:
            raise CheckFailed(f"librdkafka read {have!r}, expected {want!r}")
        # Null keys without --partition: still delivered (sticky/random partition).
        topic2 = self.topic("nullkeys-kw2rdk")
        self.create_topic(topic2)
        values = [f"nk-{i}".encode() for i in range(50)]
        self.kw("produce", "--topic", topic2, stdin=b"".join(v + b"\n" for v in values))
        got = self.rdk_read_all(topic2, len(values))
        if sorted(m.value() for m in got) != sorted(values) or any(m.key() is not None for m in got):
            raise CheckFailed(
                f"null-key records without --partition: librdkafka read {len(got)} of {len(values)}, "
                f"keys {sorted({repr(m.key()) for m in got})}"
            )

    def nulls_librdkafka_to_kafkawire(self):
        # kafkawire's --format prints a null key or value as nothing, so null and empty print
        # alike; this checks that such records decode and print in the right places.
        topic = self.topic("nulls-rdk2kw")
        self.create_topic(topic, 1)
        records = [
            (None, b"no-key", None, 0),
            (b"k-empty-value", b"", None, 0),
            (b"k-null-value", None, None, 0),
            (None, None, None, 0),
            (b"", b"", [("h", b"")], 0),
            (b"k-last", b"v-last", None, 0),
        ]
        reports = self.rdk_produce(topic, records)
        out = self.kw("consume", "--topic", topic, "--exit-at-end", "--format", r"%o|%k|%v|%h\n")
        want = b"".join(
            b"%d|%s|%s|%s\n"
            % (r[1], rec[0] or b"", rec[1] or b"", b",".join(k.encode() + b"=" + v for k, v in rec[2] or []))
            for r, rec in zip(reports, records)
        )
        if out != want:
            raise CheckFailed(f"kafkawire printed {out!r}, expected {want!r}")


def shorten(s: str, n: int = 300) -> str:
    s = " ".join(s.split("\n"))
    return s if len(s) <= n else s[: n - 3] + "..."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True, help="HOST:PORT of the broker")
    ap.add_argument("--kafkawire", required=True, help="path to the kafkawire CLI binary")
    ap.add_argument("--only", help="run only checks whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true", help="show librdkafka log lines on failure")
    args = ap.parse_args()

    started = time.monotonic()
    r = Runner(args.bootstrap, args.kafkawire, args.verbose)
    checks = []
    key_partitions: dict = {}
    for codec in CODECS:
        checks.append((f"kafkawire->librdkafka {codec}", r.kafkawire_to_librdkafka, codec, key_partitions))
    checks.append(("murmur2 partitioning matches librdkafka murmur2_random", r.murmur2_partitioning, key_partitions))
    for codec in CODECS:
        checks.append((f"librdkafka->kafkawire {codec}", r.librdkafka_to_kafkawire, codec))
    checks.append(("null key / empty value kafkawire->librdkafka", r.nulls_kafkawire_to_librdkafka))
    checks.append(("null key / empty value librdkafka->kafkawire", r.nulls_librdkafka_to_kafkawire))

    for name, fn, *fargs in checks:
        if args.only and args.only not in name:
            continue
        r.check(name, fn, *fargs)

    print(f"interop: {r.passed + r.failed} checks in {time.monotonic() - started:.1f} s", flush=True)
    if args.verbose:
        print("bytes on the wire (librdkafka statistics):", {f"{d} {c}": n for (d, c), n in r.wire.items()})
    print(f"interop: {r.passed} passed, {r.failed} failed", flush=True)
    return 1 if r.failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KafkaException as e:
        print(f"interop: librdkafka error outside a check: {e}", file=sys.stderr)
        print("interop: 0 passed, 1 failed")
        sys.exit(1)
