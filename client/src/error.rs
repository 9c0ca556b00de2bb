//! The client's one error type. Every error says whether retrying may help and carries what it
//! concerns: broker, API, topic, partition.

use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::{DecodeError, EncodeError, ErrorCode};

/// A `Result` with the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. Match on the variant for details; ask [`Error::is_retriable`] whether the same
/// operation may succeed later, and [`Error::broker`], [`Error::api`], [`Error::topic`],
/// [`Error::partition`] for what it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A TCP connect, read or write failed.
    #[error("I/O error talking to broker {broker}: {source}")]
    Io {
        /// The broker's address.
        broker: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The broker closed the connection while requests were outstanding (or before an answer).
    #[error("broker {broker} closed the connection{}", api.map(|a| format!(" before answering {a}")).unwrap_or_default())]
    ConnectionClosed {
        /// The broker's address.
        broker: String,
        /// The request that was waiting, if known.
        api: Option<ApiKey>,
    },
    /// No answer within the request timeout. A request that was written and not answered
    /// retires its connection (the next request opens a new one), as the Java client does; a
    /// request still held back by broker throttling when its time ran out (KIP-219) was never
    /// written, and says so in `throttled_ms`.
    #[error("broker {broker} did not answer {api} within {timeout_ms} ms{}",
        if *throttled_ms > 0 { format!(" (held back {throttled_ms} ms by the broker's throttling, KIP-219; the request was not sent)") } else { String::new() })]
    Timeout {
        /// The broker's address.
        broker: String,
        /// The request that timed out.
        api: ApiKey,
        /// The timeout, in milliseconds.
        timeout_ms: u64,
        /// How long the request was held back by a throttle the broker asked for, in
        /// milliseconds: 0 when it was sent.
        throttled_ms: u64,
    },
    /// The metadata names a broker (as a leader or coordinator) that is not in its broker list,
    /// or lists no broker at all: a transient state while the cluster changes. Retriable; the
    /// client refreshes its metadata.
    #[error("broker {node_id} is not in the cluster metadata (known brokers: {known:?})")]
    UnknownBroker {
        /// The node id asked for.
        node_id: i32,
        /// The node ids the metadata lists.
        known: Vec<i32>,
    },
    /// The broker answered with an error code.
    #[error("{api} failed{}{}: {code}{}", broker.as_ref().map(|b| format!(" on broker {b}")).unwrap_or_default(),
        topic.as_ref().map(|t| match partition { Some(p) => format!(" for {t}-{p}"), None => format!(" for topic {t}") }).unwrap_or_default(),
        message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        /// The Kafka error code.
        code: ErrorCode,
        /// The API that failed.
        api: ApiKey,
        /// The broker that answered.
        broker: Option<String>,
        /// The topic concerned.
        topic: Option<String>,
        /// The partition concerned.
        partition: Option<i32>,
        /// The broker's error message, if it sent one.
        message: Option<String>,
    },
    /// A response could not be decoded: the broker or the network corrupted it, or it is not
    /// Kafka. The connection is closed.
    #[error("cannot read {api} response from broker {broker}: {source}")]
    Decode {
        /// The broker's address.
        broker: String,
        /// The API of the response.
        api: ApiKey,
        /// Where decoding failed.
        #[source]
        source: DecodeError,
    },
    /// A request could not be encoded in the negotiated version.
    #[error("cannot encode {api} request: {source}")]
    Encode {
        /// The API of the request.
        api: ApiKey,
        /// Why.
        #[source]
        source: EncodeError,
    },
    /// The broker and this client share no version of an API.
    #[error("broker {broker} does not support {api} in any version this client knows (client {}-{}, broker {})",
        ours.0, ours.1, theirs.map(|(a, b)| format!("{a}-{b}")).unwrap_or_else(|| "none".into()))]
    UnsupportedVersion {
        /// The broker's address.
        broker: String,
        /// The API.
        api: ApiKey,
        /// The versions this client knows.
        ours: (i16, i16),
        /// The versions the broker announced, if any.
        theirs: Option<(i16, i16)>,
    },
    /// None of the bootstrap addresses answered.
    #[error("no bootstrap broker could be reached: {}", attempts.iter().map(|(a, e)| format!("{a} ({e})")).collect::<Vec<_>>().join("; "))]
    NoBrokerReachable {
        /// Each address tried, with why it failed.
        attempts: Vec<(String, String)>,
    },
    /// The advertised-listener trap: the bootstrap broker answered, but the address a broker
    /// advertises (its `advertised.listeners`) cannot be reached from this client.
    #[error(
        "connected to bootstrap broker {bootstrap}, but broker {node_id} advertises {advertised}{}, which cannot be reached from here ({reason}). \
         Fix the broker's advertised.listeners so it names an address clients can reach, \
         or map it in the client: --broker-map {advertised}=HOST:PORT (BrokerAddressMap)",
        mapped_to.as_ref().map(|m| format!(" (mapped to {m})")).unwrap_or_default()
    )]
    AdvertisedListenerUnreachable {
        /// The bootstrap address that worked.
        bootstrap: String,
        /// The broker whose address failed.
        node_id: i32,
        /// The address the broker advertises.
        advertised: String,
        /// What the address map turned it into, if it changed it.
        mapped_to: Option<String>,
        /// Why the connection failed.
        reason: String,
    },
    /// The metadata names no broker for what was asked (unknown node, no leader yet).
    #[error("no leader known for {topic}-{partition}{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    NoLeader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Why, if known.
        reason: Option<String>,
    },
    /// Fetched data that does not decode: a CRC mismatch, a truncated record, an unknown
    /// compression codec. The consumer does not move past it by itself; seek past it to skip.
    #[error("corrupt data in {topic}-{partition}: {source}")]
    CorruptRecord {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// What is wrong, and where.
        #[source]
        source: DecodeError,
    },
    /// A record was not acknowledged within the producer's delivery timeout
    /// (`delivery.timeout.ms`, KIP-91), retries included.
    #[error("record for {topic}-{partition} not delivered within {timeout_ms} ms{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    DeliveryTimeout {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The delivery timeout, in milliseconds.
        timeout_ms: u64,
        /// The error of the last attempt, if there was one.
        last_error: Option<String>,
    },
    /// The producer's buffer (`buffer.memory`) stayed full for `max.block.ms` (or, with
    /// `try_send`, was full right now).
    #[error("the producer's buffer is full ({buffer_memory} bytes){}", waited_ms.map(|w| format!(" and stayed full for {w} ms")).unwrap_or_default())]
    BufferFull {
        /// The buffer size, in bytes.
        buffer_memory: usize,
        /// How long `send` waited, in milliseconds (`None` for `try_send`).
        waited_ms: Option<u64>,
    },
    /// A record larger than the producer accepts (`max.request.size` or `buffer.memory`).
    #[error(
        "record of {size} bytes for {topic} is larger than the {limit} bytes allowed ({setting})"
    )]
    RecordTooLarge {
        /// Topic.
        topic: String,
        /// The record's size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
        /// Which setting sets the limit.
        setting: &'static str,
    },
    /// The producer was closed (or failed fatally) before the operation completed.
    #[error("the producer is closed{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    ProducerClosed {
        /// Why, if it closed because of an error.
        reason: Option<String>,
    },
    /// A transactional call made in a state that does not allow it (e.g. `commit_transaction`
    /// without `begin_transaction`), or after an error that requires an abort first.
    #[error("transaction: {0}")]
    TransactionState(String),
    /// The consumer is no longer a member of its group, e.g. it left because the application
    /// did not poll within `max_poll_interval`, or its generation is over. The next poll joins
    /// again; offsets of the partitions it had cannot be committed by it any more.
    #[error("consumer group {group}: {reason}")]
    GroupMembership {
        /// Group id.
        group: String,
        /// What happened.
        reason: String,
    },
    /// The TLS handshake with a broker failed: its certificate is not signed by a trusted root,
    /// names another host, has expired, the broker speaks plaintext, or it wants a client
    /// certificate. Not retriable: the configuration (or the broker's) must change.
    #[error("TLS with broker {broker} failed: {reason}")]
    Tls {
        /// The broker's address.
        broker: String,
        /// What failed, in plain words.
        reason: String,
    },
    /// SASL authentication with a broker failed: the mechanism is not enabled there, the
    /// credentials are wrong, or a re-authentication was refused. Not retriable.
    #[error("SASL {mechanism} authentication with broker {broker} failed: {reason}")]
    Authentication {
        /// The broker's address.
        broker: String,
        /// The mechanism.
        mechanism: String,
        /// What failed (never a secret).
        reason: String,
    },
    /// An operation with a deadline (a producer's `flush`) did not finish in time; what it
    /// waited for goes on.
    #[error(
        "{operation} did not finish within {timeout_ms} ms ({unsettled} records still unsettled)"
    )]
    Incomplete {
        /// The operation.
        operation: &'static str,
        /// Its timeout, in milliseconds.
        timeout_ms: u64,
        /// Records not yet acknowledged or failed.
        unsettled: usize,
    },
    /// A bad setting or argument.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Clone for Error {
    /// A copy of the error; an I/O source is rebuilt from its kind and message.
    fn clone(&self) -> Self {
        match self {
            Error::Io { broker, source } => Error::Io {
                broker: broker.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::ConnectionClosed { broker, api } => Error::ConnectionClosed {
                broker: broker.clone(),
                api: *api,
            },
            Error::Timeout {
                broker,
                api,
                timeout_ms,
                throttled_ms,
            } => Error::Timeout {
                broker: broker.clone(),
                api: *api,
                timeout_ms: *timeout_ms,
                throttled_ms: *throttled_ms,
            },
            Error::UnknownBroker { node_id, known } => Error::UnknownBroker {
                node_id: *node_id,
                known: known.clone(),
            },
            Error::Broker {
                code,
                api,
                broker,
                topic,
                partition,
                message,
            } => Error::Broker {
                code: *code,
                api: *api,
                broker: broker.clone(),
                topic: topic.clone(),
                partition: *partition,
                message: message.clone(),
            },
            Error::Decode {
                broker,
                api,
                source,
            } => Error::Decode {
                broker: broker.clone(),
                api: *api,
                source: source.clone(),
            },
            Error::Encode { api, source } => Error::Encode {
                api: *api,
                source: source.clone(),
            },
            Error::UnsupportedVersion {
                broker,
                api,
                ours,
                theirs,
            } => Error::UnsupportedVersion {
                broker: broker.clone(),
                api: *api,
                ours: *ours,
                theirs: *theirs,
            },
            Error::NoBrokerReachable { attempts } => Error::NoBrokerReachable {
                attempts: attempts.clone(),
            },
            Error::AdvertisedListenerUnreachable {
                bootstrap,
                node_id,
                advertised,
                mapped_to,
                reason,
            } => Error::AdvertisedListenerUnreachable {
                bootstrap: bootstrap.clone(),
                node_id: *node_id,
                advertised: advertised.clone(),
                mapped_to: mapped_to.clone(),
                reason: reason.clone(),
            },
            Error::NoLeader {
                topic,
                partition,
                reason,
            } => Error::NoLeader {
                topic: topic.clone(),
                partition: *partition,
                reason: reason.clone(),
            },
            Error::CorruptRecord {
                topic,
                partition,
                source,
            } => Error::CorruptRecord {
                topic: topic.clone(),
                partition: *partition,
                source: source.clone(),
            },
            Error::DeliveryTimeout {
                topic,
                partition,
                timeout_ms,
                last_error,
            } => Error::DeliveryTimeout {
                topic: topic.clone(),
                partition: *partition,
                timeout_ms: *timeout_ms,
                last_error: last_error.clone(),
            },
            Error::BufferFull {
                buffer_memory,
                waited_ms,
            } => Error::BufferFull {
                buffer_memory: *buffer_memory,
                waited_ms: *waited_ms,
            },
            Error::RecordTooLarge {
                topic,
                size,
                limit,
                setting,
            } => Error::RecordTooLarge {
                topic: topic.clone(),
                size: *size,
                limit: *limit,
                setting,
            },
            Error::ProducerClosed { reason } => Error::ProducerClosed {
                reason: reason.clone(),
            },
            Error::TransactionState(s) => Error::TransactionState(s.clone()),
            Error::GroupMembership { group, reason } => Error::GroupMembership {
                group: group.clone(),
                reason: reason.clone(),
            },
            Error::Config(s) => Error::Config(s.clone()),
            Error::Tls { broker, reason } => Error::Tls {
                broker: broker.clone(),
                reason: reason.clone(),
            },
            Error::Authentication {
                broker,
                mechanism,
                reason,
            } => Error::Authentication {
                broker: broker.clone(),
                mechanism: mechanism.clone(),
                reason: reason.clone(),
            },
            Error::Incomplete {
                operation,
                timeout_ms,
                unsettled,
            } => Error::Incomplete {
                operation,
                timeout_ms: *timeout_ms,
                unsettled: *unsettled,
            },
        }
    }
}

impl Error {
    /// Whether the same operation may succeed if tried again later (after a backoff, a metadata
    /// refresh or a reconnect). Broker error codes follow Kafka's classification
    /// (`ErrorCode::is_retriable`).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Io { .. }
            | Error::ConnectionClosed { .. }
            | Error::Timeout { .. }
            | Error::NoBrokerReachable { .. }
            | Error::NoLeader { .. }
            | Error::UnknownBroker { .. }
            | Error::Incomplete { .. }
            | Error::DeliveryTimeout { .. }
            | Error::BufferFull { .. }
            | Error::GroupMembership { .. } => true,
            Error::Broker { code, .. } => code.is_retriable(),
            Error::Decode { .. }
            | Error::Encode { .. }
            | Error::UnsupportedVersion { .. }
            | Error::AdvertisedListenerUnreachable { .. }
            | Error::CorruptRecord { .. }
            | Error::RecordTooLarge { .. }
            | Error::ProducerClosed { .. }
            | Error::TransactionState(_)
            | Error::Tls { .. }
            | Error::Authentication { .. }
            | Error::Config(_) => false,
        }
    }

    /// Whether the error means the client's metadata is stale (leader moved, topic unknown), so
    /// a metadata refresh should come before a retry.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            Error::Broker { code, .. } => matches!(
                *code,
                ErrorCode::NOT_LEADER_OR_FOLLOWER
                    | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    | ErrorCode::LEADER_NOT_AVAILABLE
                    | ErrorCode::FENCED_LEADER_EPOCH
                    | ErrorCode::UNKNOWN_LEADER_EPOCH
                    | ErrorCode::NOT_COORDINATOR
                    | ErrorCode::COORDINATOR_NOT_AVAILABLE
                    | ErrorCode::KAFKA_STORAGE_ERROR
                    | ErrorCode::UNKNOWN_TOPIC_ID
                    | ErrorCode::INCONSISTENT_TOPIC_ID
            ),
            Error::Io { .. }
            | Error::ConnectionClosed { .. }
            | Error::NoLeader { .. }
            | Error::UnknownBroker { .. } => true,
            _ => false,
        }
    }

    /// The Kafka error code, for broker errors.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The broker concerned, if any.
    pub fn broker(&self) -> Option<&str> {
        match self {
            Error::Io { broker, .. }
            | Error::ConnectionClosed { broker, .. }
            | Error::Timeout { broker, .. }
            | Error::Decode { broker, .. }
            | Error::Tls { broker, .. }
            | Error::Authentication { broker, .. }
            | Error::UnsupportedVersion { broker, .. } => Some(broker),
            Error::Broker { broker, .. } => broker.as_deref(),
            Error::AdvertisedListenerUnreachable { advertised, .. } => Some(advertised),
            _ => None,
        }
    }

    /// The API concerned, if any.
    pub fn api(&self) -> Option<ApiKey> {
        match self {
            Error::Timeout { api, .. }
            | Error::Broker { api, .. }
            | Error::Decode { api, .. }
            | Error::Encode { api, .. }
            | Error::UnsupportedVersion { api, .. } => Some(*api),
            Error::ConnectionClosed { api, .. } => *api,
            _ => None,
        }
    }

    /// The topic concerned, if any.
    pub fn topic(&self) -> Option<&str> {
        match self {
            Error::Broker { topic, .. } => topic.as_deref(),
            Error::NoLeader { topic, .. }
            | Error::CorruptRecord { topic, .. }
            | Error::DeliveryTimeout { topic, .. }
            | Error::RecordTooLarge { topic, .. } => Some(topic),
            _ => None,
        }
    }

    /// The partition concerned, if any.
    pub fn partition(&self) -> Option<i32> {
        match self {
            Error::Broker { partition, .. } => *partition,
            Error::NoLeader { partition, .. }
            | Error::CorruptRecord { partition, .. }
            | Error::DeliveryTimeout { partition, .. } => Some(*partition),
            _ => None,
        }
    }

    /// A broker error for `code`, with the topic and partition it concerns.
    pub fn broker_error(
        code: ErrorCode,
        api: ApiKey,
        broker: Option<&str>,
        topic: Option<&str>,
        partition: Option<i32>,
        message: Option<String>,
    ) -> Error {
        Error::Broker {
            code,
            api,
            broker: broker.map(str::to_owned),
            topic: topic.map(str::to_owned),
            partition,
            message: message.filter(|m| !m.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_error_codes_and_transport() {
        let e = Error::broker_error(
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ApiKey::Produce,
            Some("b:1"),
            Some("t"),
            Some(3),
            None,
        );
        assert!(e.is_retriable());
        assert!(e.invalidates_metadata());
        assert_eq!(
            (e.topic(), e.partition(), e.broker()),
            (Some("t"), Some(3), Some("b:1"))
        );
        assert_eq!(
            e.to_string(),
            "Produce failed on broker b:1 for t-3: NOT_LEADER_OR_FOLLOWER (6)"
        );
        let e = Error::broker_error(
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            ApiKey::Fetch,
            None,
            Some("t"),
            None,
            Some("denied".into()),
        );
        assert!(!e.is_retriable());
        assert_eq!(
            e.to_string(),
            "Fetch failed for topic t: TOPIC_AUTHORIZATION_FAILED (29) (denied)"
        );
        let e = Error::broker_error(ErrorCode(12345), ApiKey::Fetch, None, None, None, None);
        assert!(!e.is_retriable());
        assert!(e.to_string().contains("unknown error code 12345"));
        assert!(
            Error::ConnectionClosed {
                broker: "x".into(),
                api: None
            }
            .is_retriable()
        );
        assert!(!Error::Config("x".into()).is_retriable());
    }

    #[test]
    fn advertised_listener_message_names_both_addresses_and_the_fix() {
        let e = Error::AdvertisedListenerUnreachable {
            bootstrap: "127.0.0.1:9092".into(),
            node_id: 1,
            advertised: "kafka:29092".into(),
            mapped_to: None,
            reason: "cannot resolve host kafka".into(),
        };
        let s = e.to_string();
        assert!(s.contains("127.0.0.1:9092") && s.contains("kafka:29092"));
        assert!(s.contains("advertised.listeners") && s.contains("--broker-map kafka:29092="));
        assert!(!e.is_retriable());
    }
}
