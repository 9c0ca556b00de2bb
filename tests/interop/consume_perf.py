"""Reads N records with confluent-kafka (librdkafka) and prints records/s, for the reference
figure in BENCHMARKS.md. Usage: consume_perf.py BOOTSTRAP TOPIC N PARTITIONS assigned|group"""
import sys, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, n, parts, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
conf = {"bootstrap.servers": bootstrap, "group.id": f"rdk-{time.time()}", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "check.crcs": True}
c = Consumer(conf)
if mode == "assigned":
    c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
else:
    conf["session.timeout.ms"] = 10000
    c.subscribe([topic])
count = 0; nbytes = 0; start = None
while count < n:
    msgs = c.consume(num_messages=min(10000, n - count), timeout=1.0)
    for m in msgs:
        if m.error():
            raise SystemExit(str(m.error()))
        v = m.value(); k = m.key()
        nbytes += (len(v) if v else 0) + (len(k) if k else 0)
    if msgs and start is None:
        start = time.perf_counter()
    count += len(msgs)
el = time.perf_counter() - start
print(f"librdkafka {mode}: {count} records, {count/el:.0f} records/s ({nbytes/el/2**20:.2f} MB/s) in {el:.2f} s")
c.close()
