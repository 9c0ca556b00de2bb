//! `kafkawire produce`: one record per line of standard input.

use std::io::BufRead;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use kafkawire::{Acks, Client, Compression, Error, Producer, ProducerConfig, ProducerRecord};

#[derive(Args, Debug)]
pub(crate) struct ProduceArgs {
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Partition to write to (default: by murmur2 of the key, or one partition per chunk of
    /// lines for records without a key).
    #[arg(long)]
    partition: Option<i32>,
    /// Split each line at the first SEP: the part before is the key, the rest the value
    /// (`\t` means a tab).
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Acknowledgement level: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// A header added to every record, KEY=VALUE (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// How long a batch waits for more records, in ms (linger).
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Largest batch per partition, in bytes (batch.size; the producer's default).
    #[arg(long, default_value_t = 256 * 1024)]
    batch_size: usize,
    /// Idempotent delivery (needs acks=all). Default: true with acks=all, else false.
    #[arg(long)]
    idempotence: Option<bool>,
    /// Send all of standard input as one transaction with this transactional id.
    #[arg(long, value_name = "ID")]
    transactional_id: Option<String>,
    /// Produce requests in flight per broker connection.
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
}

/// Records sent but not yet acknowledged before the reader waits for the oldest.
const MAX_UNACKED: usize = 100_000;

/// Lines read per chunk handed to the producer (bounded by bytes too).
const CHUNK_RECORDS: usize = 20_000;
const CHUNK_BYTES: usize = 900 * 1024;

pub(crate) async fn run(client: &Client, args: &ProduceArgs) -> Result<(), Error> {
    let acks: Acks = args.acks.parse()?;
    let compression: Compression = args.compression.parse().map_err(|_| {
        Error::Config(format!(
            "--compression must be none, gzip, snappy, lz4 or zstd, not {:?}",
            args.compression
        ))
    })?;
    let topic_name: std::sync::Arc<str> = args.topic.as_str().into();
    let mut headers = Vec::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--header {h:?} must be KEY=VALUE")))?;
        headers.push((k.to_owned(), Some(Bytes::copy_from_slice(v.as_bytes()))));
    }
    // Fail early, with the topic's name, if it does not exist.
    let topic = client.topic_metadata(&args.topic).await?;
    if let Some(p) = args.partition
        && !topic.partitions.iter().any(|m| m.partition == p)
    {
        return Err(Error::Config(format!(
            "topic {} has no partition {p} (it has {})",
            args.topic,
            topic.partitions.len()
        )));
    }
    let config = ProducerConfig {
        acks,
        compression,
        linger: Duration::from_millis(args.linger_ms),
        batch_size: args.batch_size,
        enable_idempotence: args
            .idempotence
            .unwrap_or(acks == Acks::All || args.transactional_id.is_some()),
        transactional_id: args.transactional_id.clone(),
        max_in_flight_per_connection: args.max_in_flight,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client, config)?;
    let printer = {
        let (c, p) = (client.clone(), producer.clone());
        crate::logging::StatsPrinter::start(move || {
            crate::logging::stats_line(&c.stats(), Some(&p.stats()), None)
        })
    };
    if args.transactional_id.is_some() {
        producer.init_transactions().await?;
        producer.begin_transaction()?;
    }

    // Standard input is read on a blocking thread, a chunk at a time, while the previous chunk
    // is being sent.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<Vec<u8>>>>(2);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        let mut chunk = Vec::new();
        let mut bytes = 0;
        loop {
            let mut line = Vec::new();
            match lock.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    bytes += line.len();
                    chunk.push(line);
                    if chunk.len() >= CHUNK_RECORDS || bytes >= CHUNK_BYTES {
                        if tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
                            return;
                        }
                        bytes = 0;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(chunk));
        }
    });

    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let sep = args.key_separator.as_deref().map(unescape);
    let sep = sep.as_deref();
    // Deliveries are awaited in order behind the sends, so the producer keeps batching and
    // pipelining while earlier records are acknowledged.
    let mut pending = std::collections::VecDeque::new();
    let mut failure = None;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk.map_err(|e| Error::Config(format!("cannot read standard input: {e}")))?;
        for line in chunk {
            let (key, value) = split_key(line, sep);
            bytes += (key.as_ref().map_or(0, Bytes::len) + value.len()) as u64;
            let record = ProducerRecord {
                topic: topic_name.clone(),
                partition: args.partition,
                key,
                value: Some(value),
                headers: headers.clone(),
                timestamp: None,
            };
            pending.push_back(producer.send(record).await?);
            records += 1;
            while pending.len() > MAX_UNACKED {
                if let Err(e) = pending.pop_front().expect("non-empty").await {
                    failure.get_or_insert(e);
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    for d in pending {
        if let Err(e) = d.await {
            failure.get_or_insert(e);
        }
    }
    if let Some(e) = failure {
        if args.transactional_id.is_some() {
            let _ = producer.abort_transaction().await;
        }
        return Err(e);
    }
    if args.transactional_id.is_some() {
        producer.commit_transaction().await?;
    }
    producer.close(Duration::from_secs(30)).await?;
    if let Some(p) = printer {
        p.finish();
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "produced {records} records ({bytes} bytes of keys and values) to {} in {secs:.2} s: {:.0} records/s, {:.2} MB/s",
        args.topic,
        records as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

/// `\t`, `\n` and `\\` in a separator mean tab, newline and backslash, as in `--format`.
fn unescape(s: &str) -> Vec<u8> {
    s.replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\\\", "\\")
        .into_bytes()
}

fn split_key(line: Vec<u8>, sep: Option<&[u8]>) -> (Option<Bytes>, Bytes) {
    let line = Bytes::from(line);
    let Some(sep) = sep.filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (Some(line.slice(..i)), line.slice(i + sep.len()..)),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_split_at_the_first_separator() {
        let (k, v) = split_key(b"user-1::a::b".to_vec(), Some(b"::"));
        assert_eq!(k.as_deref(), Some(&b"user-1"[..]));
        assert_eq!(&v[..], b"a::b");
        let (k, v) = split_key(b"no separator".to_vec(), Some(b"::"));
        assert_eq!((k, &v[..]), (None, &b"no separator"[..]));
        assert_eq!(unescape("\\t"), b"\t");
        assert_eq!(unescape(":"), b":");
        let (k, v) = split_key(b"::v".to_vec(), Some(b"::"));
        assert_eq!((k.as_deref(), &v[..]), (Some(&b""[..]), &b"v"[..]));
    }
}
