//! Producer settings, their defaults (the Java client's) and their validation.

use std::sync::Arc;
use std::time::Duration;

use kafkawire_client::{Client, Error, Result};
use kafkawire_protocol::records::Compression;

use crate::partitioner::{DefaultPartitioner, Partitioner};

/// `d` for an error message: milliseconds, or "Duration::MAX".
fn describe(d: Duration) -> String {
    if d == Duration::MAX {
        "Duration::MAX".to_owned()
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// How many replicas must have a record before the broker acknowledges it (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: no acknowledgement; the broker sends no response and offsets are unknown.
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all` (-1): every in-sync replica has it. The default: no lost messages.
    #[default]
    All,
}

impl Acks {
    /// The value sent in the Produce request.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = Error;
    fn from_str(s: &str) -> Result<Acks> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(Error::Config(format!(
                "acks must be 0, 1 or all, not {other:?}"
            ))),
        }
    }
}

/// Producer settings. Defaults are the Java client's (Kafka 4.x: acks=all, idempotence on, 5 ms
/// linger, 32 MiB of buffer, 5 requests in flight per connection) except `batch_size`: 256 KiB
/// instead of 16 KiB (see the field).
#[derive(Clone)]
pub struct ProducerConfig {
    /// Acknowledgement level (`acks`, default all).
    pub acks: Acks,
    /// Largest batch per partition, in bytes before compression (`batch.size`, default
    /// 256 KiB; the Java client's is 16 KiB, librdkafka's 1,000,000 bytes). A batch's buffer is
    /// not reserved whole: it starts at 16 KiB and doubles as records arrive, so a large value
    /// costs memory only on partitions that receive that much within `linger`. With idempotence
    /// at most 5 batches per partition are in flight, so the batch size bounds a partition's
    /// throughput per round trip: measured on one partition (BENCHMARKS.md), 16 KiB batches gave
    /// a third of the records/s of 256 KiB ones. Keep it below the broker's
    /// `message.max.bytes` (1 MiB by default) and `max_request_size`.
    pub batch_size: usize,
    /// How long a batch may wait for more records before it is sent (`linger.ms`, default
    /// 5 ms).
    pub linger: Duration,
    /// Memory for records waiting to be sent, in bytes (`buffer.memory`, default 32 MiB).
    /// `send` waits for room (up to `max_block`); `try_send` fails at once.
    pub buffer_memory: usize,
    /// Longest `send` waits for buffer room or metadata (`max.block.ms`, default 60 s).
    pub max_block: Duration,
    /// Largest Produce request, in bytes; also the largest record (`max.request.size`,
    /// default 1 MiB).
    pub max_request_size: usize,
    /// Compression of every batch (`compression.type`, default none).
    pub compression: Compression,
    /// Compression level for gzip (0-9) and zstd (-131072 to 22, libzstd's range); `None` is
    /// the codec's default (KIP-390). zstd levels take effect with the `zstd-c` feature; the
    /// default pure-Rust zstd has one level, about libzstd's 1.
    pub compression_level: Option<i32>,
    /// Produce requests in flight per broker connection
    /// (`max.in.flight.requests.per.connection`, default 5; at most 5 with idempotence).
    pub max_in_flight_per_connection: usize,
    /// How long to wait for a Produce response (`request.timeout.ms`, default 30 s); also the
    /// timeout the broker is given for replication.
    pub request_timeout: Duration,
    /// Upper bound on the whole life of a record, from `send` to acknowledgement or failure,
    /// retries included (`delivery.timeout.ms`, default 120 s).
    pub delivery_timeout: Duration,
    /// First backoff between retries (`retry.backoff.ms`, default 100 ms); doubled per attempt
    /// with ±20% jitter up to `retry_backoff_max` (KIP-580).
    pub retry_backoff: Duration,
    /// Largest backoff (`retry.backoff.max.ms`, default 1 s).
    pub retry_backoff_max: Duration,
    /// Idempotent delivery: producer id, epoch and per-partition sequence numbers, so retries
    /// never duplicate and never reorder (`enable.idempotence`, default true; KIP-98).
    pub enable_idempotence: bool,
    /// Transactional id: enables transactions (implies idempotence; KIP-98).
    pub transactional_id: Option<String>,
    /// Transaction timeout given to the coordinator (`transaction.timeout.ms`, default 60 s).
    pub transaction_timeout: Duration,
    /// Chooses a partition for records that do not name one.
    pub partitioner: Arc<dyn Partitioner>,
}

impl std::fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerConfig")
            .field("acks", &self.acks)
            .field("batch_size", &self.batch_size)
            .field("linger", &self.linger)
            .field("buffer_memory", &self.buffer_memory)
            .field("compression", &self.compression)
            .field(
                "max_in_flight_per_connection",
                &self.max_in_flight_per_connection,
            )
            .field("enable_idempotence", &self.enable_idempotence)
            .field("transactional_id", &self.transactional_id)
            .finish_non_exhaustive()
    }
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            batch_size: 256 * 1024,
            linger: Duration::from_millis(5),
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            max_request_size: 1024 * 1024,
            compression: Compression::None,
            compression_level: None,
            max_in_flight_per_connection: 5,
            request_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            enable_idempotence: true,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            partitioner: Arc::new(DefaultPartitioner::default()),
        }
    }
}

impl ProducerConfig {
    /// The longest duration a setting may have: `i32::MAX` milliseconds (about 24.8 days), the
    /// range of Kafka's int millisecond settings. [`ProducerConfig::validate`] refuses longer
    /// ones.
    pub const MAX_DURATION: Duration = Duration::from_millis(i32::MAX as u64);

    /// Checks the settings against each other, as the Java client does at construction.
    ///
    /// Every duration must be at most [`ProducerConfig::MAX_DURATION`] (`i32::MAX` ms, about 24.8 days, what
    /// Kafka's int millisecond settings allow): a longer one, `Duration::MAX` included, is a
    /// clear [`Error::Config`] naming the setting, never a panic (durations are added to the
    /// clock while the producer runs, so they are refused rather than saturated).
    ///
    /// # Errors
    /// [`Error::Config`] naming the conflicting settings: idempotence or transactions with
    /// acks other than all or more than 5 requests in flight; a delivery timeout shorter than
    /// linger + request timeout; zero sizes; a duration above [`ProducerConfig::MAX_DURATION`].
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        for (name, d) in [
            ("linger", self.linger),
            ("max_block", self.max_block),
            ("request_timeout", self.request_timeout),
            ("delivery_timeout", self.delivery_timeout),
            ("retry_backoff", self.retry_backoff),
            ("retry_backoff_max", self.retry_backoff_max),
            ("transaction_timeout", self.transaction_timeout),
        ] {
            if d > Self::MAX_DURATION {
                return bad(format!(
                    "{name} is {}, more than the {} ms (about 24.8 days) a producer duration may be",
                    describe(d),
                    Self::MAX_DURATION.as_millis()
                ));
            }
        }
        if self.transactional_id.as_deref() == Some("") {
            return bad("transactional_id must not be empty".into());
        }
        let idempotent = self.enable_idempotence || self.transactional_id.is_some();
        if self.transactional_id.is_some() && !self.enable_idempotence {
            return bad("transactions need idempotence: enable_idempotence must stay true".into());
        }
        if idempotent && self.acks != Acks::All {
            return bad(format!(
                "idempotence needs acks=all (acks is {}); set acks=all or enable_idempotence=false",
                self.acks.as_i16()
            ));
        }
        if idempotent && self.max_in_flight_per_connection > 5 {
            return bad(format!(
                "idempotence allows at most 5 requests in flight per connection, not {}",
                self.max_in_flight_per_connection
            ));
        }
        if self.max_in_flight_per_connection == 0 {
            return bad("max_in_flight_per_connection must be at least 1".into());
        }
        if self.batch_size == 0 || self.buffer_memory == 0 || self.max_request_size == 0 {
            return bad("batch_size, buffer_memory and max_request_size must be above 0".into());
        }
        // No overflow: both are at most MAX_DURATION.
        let floor = self.linger.saturating_add(self.request_timeout);
        if self.delivery_timeout < floor {
            return bad(format!(
                "delivery_timeout ({} ms) must be at least linger + request_timeout ({} ms)",
                self.delivery_timeout.as_millis(),
                floor.as_millis()
            ));
        }
        if self.retry_backoff > self.retry_backoff_max {
            return bad("retry_backoff must not exceed retry_backoff_max".into());
        }
        Ok(())
    }

    /// Whether batches carry a producer id and sequence numbers.
    pub fn idempotent(&self) -> bool {
        self.enable_idempotence || self.transactional_id.is_some()
    }
}

/// Builds a [`crate::Producer`]: `Producer::builder(&client).linger(..).build()`.
#[derive(Debug, Clone)]
pub struct ProducerBuilder {
    pub(crate) client: Client,
    pub(crate) config: ProducerConfig,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl ProducerBuilder {
    setter!(/// Sets `acks`.
        acks: Acks);
    setter!(/// Sets `batch_size` (bytes).
        batch_size: usize);
    setter!(/// Sets `linger`.
        linger: Duration);
    setter!(/// Sets `buffer_memory` (bytes).
        buffer_memory: usize);
    setter!(/// Sets `max_block`.
        max_block: Duration);
    setter!(/// Sets `max_request_size` (bytes).
        max_request_size: usize);
    setter!(/// Sets `compression`.
        compression: Compression);
    setter!(/// Sets `compression_level`.
        compression_level: Option<i32>);
    setter!(/// Sets `max_in_flight_per_connection`.
        max_in_flight_per_connection: usize);
    setter!(/// Sets `request_timeout`.
        request_timeout: Duration);
    setter!(/// Sets `delivery_timeout`.
        delivery_timeout: Duration);
    setter!(/// Sets `retry_backoff`.
        retry_backoff: Duration);
    setter!(/// Sets `retry_backoff_max`.
        retry_backoff_max: Duration);
    setter!(/// Sets `enable_idempotence`.
        enable_idempotence: bool);
    setter!(/// Sets `transaction_timeout`.
        transaction_timeout: Duration);

    /// Sets the transactional id (enables transactions).
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        self.config.transactional_id = Some(id.into());
        self
    }

    /// Sets a custom partitioner.
    pub fn partitioner(mut self, p: impl Partitioner + 'static) -> Self {
        self.config.partitioner = Arc::new(p);
        self
    }

    /// Replaces every setting.
    pub fn config(mut self, config: ProducerConfig) -> Self {
        self.config = config;
        self
    }

    /// Validates the settings and starts the producer's background sender.
    ///
    /// # Errors
    /// As [`ProducerConfig::validate`].
    pub fn build(self) -> Result<crate::Producer> {
        self.config.validate()?;
        Ok(crate::Producer::start(self.client, self.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_safe() {
        let c = ProducerConfig::default();
        c.validate().unwrap();
        assert!(c.idempotent());
        assert_eq!(c.acks, Acks::All);
    }

    #[test]
    fn durations_up_to_the_maximum_pass_and_longer_ones_are_named() {
        let at_max = ProducerConfig {
            linger: ProducerConfig::MAX_DURATION,
            max_block: ProducerConfig::MAX_DURATION,
            request_timeout: Duration::from_secs(30),
            delivery_timeout: ProducerConfig::MAX_DURATION,
            retry_backoff: ProducerConfig::MAX_DURATION,
            retry_backoff_max: ProducerConfig::MAX_DURATION,
            transaction_timeout: ProducerConfig::MAX_DURATION,
            ..Default::default()
        };
        // linger + request_timeout exceeds delivery_timeout: refused for that, without panic.
        let e = at_max.validate().unwrap_err().to_string();
        assert!(e.contains("delivery_timeout"), "{e}");
        let c = ProducerConfig {
            linger: Duration::from_millis(5),
            ..at_max
        };
        c.validate().unwrap();
        let c = ProducerConfig {
            max_block: ProducerConfig::MAX_DURATION + Duration::from_millis(1),
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("max_block") && e.contains("2147483647 ms"),
            "{e}"
        );
    }

    #[test]
    fn conflicting_settings_are_refused_with_a_reason() {
        let c = ProducerConfig {
            acks: Acks::Leader,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("acks=all"), "{e}");
        let c = ProducerConfig {
            acks: Acks::Leader,
            enable_idempotence: false,
            ..Default::default()
        };
        c.validate().unwrap();
        let c = ProducerConfig {
            linger: Duration::from_secs(200),
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("delivery_timeout")
        );
        let c = ProducerConfig {
            max_in_flight_per_connection: 6,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = ProducerConfig {
            transactional_id: Some("t".into()),
            enable_idempotence: false,
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }
}
