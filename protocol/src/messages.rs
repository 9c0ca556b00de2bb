//! Request and response types for every API the client and admin tools use.
//!
//! The types and their codecs are generated from `protocol/schema/*.json` by `cargo codegen` into
//! `src/generated/` (never edited by hand); this module holds the hand-written traits they
//! implement and re-exports them. Each struct holds the fields of all versions; `encode` and
//! `decode` take the version, and a field that a version cannot carry is either left at its
//! default (decode) or rejected when set (encode, unless the schema marks it ignorable), so a
//! value is never dropped silently.
//!
//! ```
//! use bytes::BytesMut;
//! use kafkawire_protocol::messages::{Encodable, Message, metadata_request::*};
//!
//! let req = MetadataRequest {
//!     topics: Some(vec![MetadataRequestTopic { name: Some("orders".into()), ..Default::default() }]),
//!     ..Default::default()
//! };
//! let mut buf = BytesMut::new();
//! req.encode(&mut buf, 9).unwrap();
//! let back = MetadataRequest::decode_bytes(buf.freeze(), 9).unwrap();
//! assert_eq!(back, req);
//! ```

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::primitives::Reader;

pub use crate::generated::api_keys::ApiKey;
pub use crate::generated::*;

/// A value that can be written in a given version of its message.
pub trait Encodable {
    /// Appends the encoding of `self` in `version` to `buf`.
    ///
    /// # Errors
    /// [`EncodeError`] when the version does not exist, a set field cannot be carried by it, or a
    /// length does not fit its prefix.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;
}

/// A value that can be read in a given version of its message.
pub trait Decodable: Sized {
    /// Reads `Self` in `version` from `r`.
    ///
    /// # Errors
    /// [`DecodeError`] naming the field and byte offset where the input is truncated or invalid.
    fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError>;
}

/// A whole message (request, response, header, or embedded data type) with its version range.
pub trait Message:
    Encodable + Decodable + Default + Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static
{
    /// The message's name, e.g. `"FetchRequest"`.
    const NAME: &'static str;
    /// Lowest version in the schema.
    const MIN_VERSION: i16;
    /// Highest version in the schema.
    const MAX_VERSION: i16;
    /// First flexible version (KIP-482), if any.
    const FLEXIBLE_MIN: Option<i16>;

    /// Decodes a message that must fill `bytes` exactly.
    ///
    /// # Errors
    /// [`DecodeError`] if the input is invalid, or has bytes left over after the message.
    fn decode_bytes(bytes: Bytes, version: i16) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let m = Self::decode(&mut r, version)?;
        if !r.is_empty() {
            return Err(r.error(
                Self::NAME,
                DecodeErrorKind::Invalid(format!(
                    "{} bytes left over after {} v{version}",
                    r.remaining(),
                    Self::NAME
                )),
            ));
        }
        Ok(m)
    }

    /// How long, in ms, the broker asks the client not to send it more requests (KIP-219:
    /// the response came at once and the broker now holds further requests of this
    /// connection for that long). 0 for messages without the field, and for versions before
    /// the field existed.
    fn throttle_time_ms(&self) -> i32 {
        0
    }

    /// Encodes into a new buffer.
    ///
    /// # Errors
    /// As [`Encodable::encode`].
    fn encode_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut b = BytesMut::new();
        self.encode(&mut b, version)?;
        Ok(b.freeze())
    }
}

/// A request message: its API key and the type of its response.
pub trait Request: Message {
    /// The API this request belongs to.
    const API_KEY: ApiKey;
    /// The response a broker sends back.
    type Response: Message;
}

/// Code run with one API's request type (and so its response type, `R::Response`), chosen at
/// run time by [`ApiKey::visit`]: decoding any response from its key and version (fuzzing,
/// tests, tools). Implement it for `&mut State` to keep state across visits.
///
/// ```
/// use bytes::Bytes;
/// use kafkawire_protocol::DecodeError;
/// use kafkawire_protocol::messages::{ApiKey, ApiVisitor, Message, Request};
///
/// /// Decodes a response body of any API.
/// struct DecodeBody(Bytes, i16);
/// impl ApiVisitor for DecodeBody {
///     type Output = Result<String, DecodeError>;
///     fn visit<R: Request>(self, _key: ApiKey) -> Self::Output {
///         R::Response::decode_bytes(self.0, self.1).map(|m| format!("{m:?}"))
///     }
/// }
/// let text = ApiKey::Heartbeat.visit(DecodeBody(Bytes::from_static(&[0, 0]), 0)).unwrap();
/// assert!(text.starts_with("HeartbeatResponse"));
/// ```
pub trait ApiVisitor {
    /// What a visit returns.
    type Output;
    /// Called with the request type `R` of API `key`.
    fn visit<R: Request>(self, key: ApiKey) -> Self::Output;
}

impl ApiKey {
    /// Calls `v.visit::<R>(self)` with this API's request type `R` (its response type is
    /// `R::Response`).
    pub fn visit<V: ApiVisitor>(self, v: V) -> V::Output {
        match self {
            ApiKey::AddOffsetsToTxn => v.visit::<add_offsets_to_txn_request::AddOffsetsToTxnRequest>(self),
            ApiKey::AddPartitionsToTxn => v.visit::<add_partitions_to_txn_request::AddPartitionsToTxnRequest>(self),
            ApiKey::AlterClientQuotas => v.visit::<alter_client_quotas_request::AlterClientQuotasRequest>(self),
            ApiKey::AlterConfigs => v.visit::<alter_configs_request::AlterConfigsRequest>(self),
            ApiKey::AlterPartitionReassignments => v.visit::<alter_partition_reassignments_request::AlterPartitionReassignmentsRequest>(self),
            ApiKey::ApiVersions => v.visit::<api_versions_request::ApiVersionsRequest>(self),
            ApiKey::ConsumerGroupDescribe => v.visit::<consumer_group_describe_request::ConsumerGroupDescribeRequest>(self),
            ApiKey::ConsumerGroupHeartbeat => v.visit::<consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest>(self),
            ApiKey::CreateAcls => v.visit::<create_acls_request::CreateAclsRequest>(self),
            ApiKey::CreatePartitions => v.visit::<create_partitions_request::CreatePartitionsRequest>(self),
            ApiKey::CreateTopics => v.visit::<create_topics_request::CreateTopicsRequest>(self),
            ApiKey::DeleteAcls => v.visit::<delete_acls_request::DeleteAclsRequest>(self),
            ApiKey::DeleteGroups => v.visit::<delete_groups_request::DeleteGroupsRequest>(self),
            ApiKey::DeleteRecords => v.visit::<delete_records_request::DeleteRecordsRequest>(self),
            ApiKey::DeleteTopics => v.visit::<delete_topics_request::DeleteTopicsRequest>(self),
            ApiKey::DescribeAcls => v.visit::<describe_acls_request::DescribeAclsRequest>(self),
            ApiKey::DescribeClientQuotas => v.visit::<describe_client_quotas_request::DescribeClientQuotasRequest>(self),
            ApiKey::DescribeCluster => v.visit::<describe_cluster_request::DescribeClusterRequest>(self),
            ApiKey::DescribeConfigs => v.visit::<describe_configs_request::DescribeConfigsRequest>(self),
            ApiKey::DescribeGroups => v.visit::<describe_groups_request::DescribeGroupsRequest>(self),
            ApiKey::DescribeLogDirs => v.visit::<describe_log_dirs_request::DescribeLogDirsRequest>(self),
            ApiKey::DescribeProducers => v.visit::<describe_producers_request::DescribeProducersRequest>(self),
            ApiKey::DescribeTopicPartitions => v.visit::<describe_topic_partitions_request::DescribeTopicPartitionsRequest>(self),
            ApiKey::DescribeTransactions => v.visit::<describe_transactions_request::DescribeTransactionsRequest>(self),
            ApiKey::ElectLeaders => v.visit::<elect_leaders_request::ElectLeadersRequest>(self),
            ApiKey::EndTxn => v.visit::<end_txn_request::EndTxnRequest>(self),
            ApiKey::Fetch => v.visit::<fetch_request::FetchRequest>(self),
            ApiKey::FindCoordinator => v.visit::<find_coordinator_request::FindCoordinatorRequest>(self),
            ApiKey::Heartbeat => v.visit::<heartbeat_request::HeartbeatRequest>(self),
            ApiKey::IncrementalAlterConfigs => v.visit::<incremental_alter_configs_request::IncrementalAlterConfigsRequest>(self),
            ApiKey::InitProducerId => v.visit::<init_producer_id_request::InitProducerIdRequest>(self),
            ApiKey::JoinGroup => v.visit::<join_group_request::JoinGroupRequest>(self),
            ApiKey::LeaveGroup => v.visit::<leave_group_request::LeaveGroupRequest>(self),
            ApiKey::ListGroups => v.visit::<list_groups_request::ListGroupsRequest>(self),
            ApiKey::ListOffsets => v.visit::<list_offsets_request::ListOffsetsRequest>(self),
            ApiKey::ListPartitionReassignments => v.visit::<list_partition_reassignments_request::ListPartitionReassignmentsRequest>(self),
            ApiKey::ListTransactions => v.visit::<list_transactions_request::ListTransactionsRequest>(self),
            ApiKey::Metadata => v.visit::<metadata_request::MetadataRequest>(self),
            ApiKey::OffsetCommit => v.visit::<offset_commit_request::OffsetCommitRequest>(self),
            ApiKey::OffsetDelete => v.visit::<offset_delete_request::OffsetDeleteRequest>(self),
            ApiKey::OffsetFetch => v.visit::<offset_fetch_request::OffsetFetchRequest>(self),
            ApiKey::OffsetForLeaderEpoch => v.visit::<offset_for_leader_epoch_request::OffsetForLeaderEpochRequest>(self),
            ApiKey::Produce => v.visit::<produce_request::ProduceRequest>(self),
            ApiKey::SaslAuthenticate => v.visit::<sasl_authenticate_request::SaslAuthenticateRequest>(self),
            ApiKey::SaslHandshake => v.visit::<sasl_handshake_request::SaslHandshakeRequest>(self),
            ApiKey::SyncGroup => v.visit::<sync_group_request::SyncGroupRequest>(self),
            ApiKey::TxnOffsetCommit => v.visit::<txn_offset_commit_request::TxnOffsetCommitRequest>(self),
        }
    }
}

/// Test support shared by the generated sample builders.
#[cfg(test)]
pub(crate) mod testing {
    use bytes::Bytes;

    /// A small deterministic generator (xorshift) so every failure reproduces from its seed.
    pub(crate) struct SampleGen(u64);

    impl SampleGen {
        pub(crate) fn new(seed: u64) -> Self {
            SampleGen(seed | 1)
        }
        pub(crate) fn u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        pub(crate) fn bool(&mut self) -> bool {
            self.u64() & 1 == 1
        }
        pub(crate) fn f64(&mut self) -> f64 {
            (self.u64() % 1_000_000) as f64 / 7.0
        }
        pub(crate) fn string(&mut self) -> String {
            let n = self.u64() % 6;
            (0..n)
                .map(|_| ['a', 'b', 'é', '-', '9', '界'][(self.u64() % 6) as usize])
                .collect()
        }
        pub(crate) fn bytes(&mut self) -> Bytes {
            let n = self.u64() % 8;
            (0..n).map(|_| self.u64() as u8).collect::<Vec<u8>>().into()
        }
        pub(crate) fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
            let n = self.u64() % 3;
            (0..n).map(|_| f(self)).collect()
        }
    }

    /// Builds a value holding random data in every field `version` carries.
    pub(crate) trait Sample {
        fn sample(version: i16, g: &mut SampleGen) -> Self;
    }

    /// Visits every generated message type.
    pub(crate) trait Visitor {
        fn visit<M: super::Message + Sample>(&mut self);
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Sample, SampleGen, Visitor};
    use super::*;
    use proptest::prelude::*;

    struct RoundTrip {
        seed: u64,
        messages: usize,
        versions: usize,
    }

    impl Visitor for RoundTrip {
        fn visit<M: Message + Sample>(&mut self) {
            self.messages += 1;
            for version in M::MIN_VERSION..=M::MAX_VERSION {
                self.versions += 1;
                let mut g = SampleGen::new(self.seed ^ ((version as u64) << 40));
                let value = M::sample(version, &mut g);
                let bytes = value
                    .encode_bytes(version)
                    .unwrap_or_else(|e| panic!("{} v{version} encode: {e}", M::NAME));
                let back = M::decode_bytes(bytes.clone(), version)
                    .unwrap_or_else(|e| panic!("{} v{version} decode: {e}", M::NAME));
                assert_eq!(back, value, "{} v{version} round trip", M::NAME);
                let again = back.encode_bytes(version).expect("re-encode");
                assert_eq!(again, bytes, "{} v{version} re-encode", M::NAME);
                // Every strict prefix of a message is an error, never a panic or a wrong value.
                for cut in 0..bytes.len() {
                    assert!(
                        M::decode_bytes(bytes.slice(..cut), version).is_err(),
                        "{} v{version} decoded from {cut} of {} bytes",
                        M::NAME,
                        bytes.len()
                    );
                }
            }
        }
    }

    #[test]
    fn every_message_and_version_round_trips() {
        let mut rt = RoundTrip {
            seed: 0x5eed,
            messages: 0,
            versions: 0,
        };
        crate::generated::for_each_message(&mut rt);
        assert!(rt.messages >= 84, "only {} messages generated", rt.messages);
        assert!(rt.versions > 450, "only {} versions", rt.versions);
    }

    struct Garbage(Vec<u8>);
    impl Visitor for Garbage {
        fn visit<M: Message + Sample>(&mut self) {
            for version in M::MIN_VERSION..=M::MAX_VERSION {
                let _ = M::decode_bytes(Bytes::from(self.0.clone()), version);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn round_trips_for_any_seed(seed: u64) {
            let mut rt = RoundTrip { seed, messages: 0, versions: 0 };
            crate::generated::for_each_message(&mut rt);
        }

        #[test]
        fn decoders_never_panic_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            crate::generated::for_each_message(&mut Garbage(data));
        }
    }

    #[test]
    fn field_outside_its_versions_is_refused_not_dropped() {
        use crate::messages::fetch_request::FetchRequest;
        // IsolationLevel exists from v4 and is ignorable: dropped quietly for v3, as Kafka does.
        let r = FetchRequest {
            isolation_level: 1,
            ..Default::default()
        };
        assert!(r.encode_bytes(3).is_ok());
        // RackId exists from v11 and is ignorable; ReplicaState (v15+) is tagged.
        use crate::messages::metadata_request::MetadataRequest;
        let m = MetadataRequest {
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        // AllowAutoTopicCreation (v4+) is not ignorable: v3 cannot say "false".
        assert!(matches!(
            m.encode_bytes(3),
            Err(EncodeError::FieldNotInVersion {
                field: "AllowAutoTopicCreation",
                ..
            })
        ));
        assert!(m.encode_bytes(4).is_ok());
    }

    #[test]
    fn unsupported_versions_are_errors() {
        use crate::messages::fetch_request::FetchRequest;
        assert!(matches!(
            FetchRequest::default().encode_bytes(99),
            Err(EncodeError::UnsupportedVersion { .. })
        ));
        let e = FetchRequest::decode_bytes(Bytes::new(), -1).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnsupportedVersion(-1));
    }

    #[test]
    fn error_codes_names_and_retriable() {
        use crate::ErrorCode;
        assert_eq!(ErrorCode::NOT_LEADER_OR_FOLLOWER.0, 6);
        assert!(ErrorCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
        assert!(!ErrorCode::TOPIC_AUTHORIZATION_FAILED.is_retriable());
        assert_eq!(ErrorCode(3).name(), Some("UNKNOWN_TOPIC_OR_PARTITION"));
        assert_eq!(ErrorCode(-1).name(), Some("UNKNOWN_SERVER_ERROR"));
        assert_eq!(ErrorCode(31_000).name(), None);
        assert!(!ErrorCode(31_000).is_retriable());
    }

    #[test]
    fn responses_with_a_throttle_time_report_it_and_others_report_zero() {
        use crate::messages::fetch_response::FetchResponse;
        use crate::messages::metadata_request::MetadataRequest;
        use crate::messages::produce_response::ProduceResponse;
        let fetch = FetchResponse {
            throttle_time_ms: 250,
            ..Default::default()
        };
        assert_eq!(fetch.throttle_time_ms(), 250);
        let produce = ProduceResponse {
            throttle_time_ms: 9,
            ..Default::default()
        };
        assert_eq!(produce.throttle_time_ms(), 9);
        assert_eq!(MetadataRequest::default().throttle_time_ms(), 0);
    }

    #[test]
    fn visit_calls_each_api_with_its_own_request_type() {
        struct Check;
        impl ApiVisitor for Check {
            type Output = (ApiKey, (i16, i16), &'static str);
            fn visit<R: Request>(self, _key: ApiKey) -> Self::Output {
                (
                    R::API_KEY,
                    (R::MIN_VERSION, R::MAX_VERSION),
                    R::Response::NAME,
                )
            }
        }
        for &key in ApiKey::ALL {
            let (api, versions, response) = key.visit(Check);
            assert_eq!(api, key);
            assert_eq!(versions, key.versions(), "{key}");
            assert_eq!(response, format!("{}Response", key.name()), "{key}");
        }
    }

    #[test]
    fn api_keys_and_header_versions() {
        assert_eq!(ApiKey::from_i16(1), Some(ApiKey::Fetch));
        assert_eq!(ApiKey::Fetch.request_header_version(11), 1);
        assert_eq!(ApiKey::Fetch.request_header_version(12), 2);
        assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
        assert_eq!(ApiKey::Metadata.response_header_version(9), 1);
        assert_eq!(ApiKey::from_i16(9999), None);
    }
}
