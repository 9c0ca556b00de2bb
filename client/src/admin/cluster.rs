//! The cluster as a whole (DescribeCluster, KIP-700, or Metadata), and the retry loops the other
//! admin requests share: controller requests retried on NOT_CONTROLLER, partition requests
//! regrouped by leader and retried when leadership moves.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::describe_cluster_request::DescribeClusterRequest;

use crate::admin::Admin;
use crate::error::{Error, Result};
use crate::metadata::BrokerMetadata;

/// Attempts of a request before its last retriable error is returned (as for group requests).
const ATTEMPTS: u32 = 8;

/// The wait before attempt `attempt + 1`: 50 ms more per attempt.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50 * u64::from(attempt))
}

/// A transport error that may go away (connection lost, timeout, unknown broker), as opposed to
/// a broker's answer.
fn transport_retriable(e: &Error) -> bool {
    e.code().is_none() && e.is_retriable()
}

/// Whether a partition request that failed with `e` may succeed against the partition's leader
/// once metadata is refreshed: leadership moved, or the connection failed.
pub(super) fn leader_retriable(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(
            ErrorCode::NOT_LEADER_OR_FOLLOWER
                | ErrorCode::LEADER_NOT_AVAILABLE
                | ErrorCode::FENCED_LEADER_EPOCH
                | ErrorCode::UNKNOWN_LEADER_EPOCH
                | ErrorCode::REQUEST_TIMED_OUT
        )
    ) || transport_retriable(e)
}

/// A partition, as admin calls key their results: `(topic, partition)`.
pub(super) type Partition = (String, i32);

/// What a cluster says about itself: its id, its controller and its brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id (`None` from Metadata v0-1, which do not carry it).
    pub cluster_id: Option<String>,
    /// The controller's node id; -1 when unknown (on KRaft clusters DescribeCluster names a
    /// random broker here, as Kafka's admin client reports it: the controllers themselves are
    /// not reachable by clients).
    pub controller_id: i32,
    /// The brokers, by node id.
    pub brokers: Vec<BrokerMetadata>,
    /// The API that answered: [`ApiKey::DescribeCluster`] when the broker has it (Kafka 2.8+),
    /// else [`ApiKey::Metadata`].
    pub source: ApiKey,
}

impl Admin {
    /// Runs `call`, again (after a metadata refresh and a growing backoff, at most 8 attempts in
    /// all) while it fails with NOT_CONTROLLER (the controller moved; a refresh names the new
    /// one) or a retriable transport error.
    pub(super) async fn with_controller_retries<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await {
                Err(e)
                    if attempt < ATTEMPTS
                        && (e.code() == Some(ErrorCode::NOT_CONTROLLER)
                            || transport_retriable(&e)) =>
                {
                    tracing::debug!(error = %e, attempt, "admin request failed, retrying");
                    if e.code() == Some(ErrorCode::NOT_CONTROLLER) || e.invalidates_metadata() {
                        let _ = self.client().refresh_metadata(&[]).await;
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Sends a request per partition leader: `call(leader, partitions)` answers each partition
    /// it was given with a value or an error. Partitions whose leader moved (NOT_LEADER_OR_FOLLOWER,
    /// LEADER_NOT_AVAILABLE, a stale leader epoch, a timeout) or whose leader could not be
    /// reached are regrouped after a metadata refresh and tried again (at most 8 attempts).
    ///
    /// # Errors
    /// The first error that is not retriable, or the last retriable one after the attempts.
    pub(super) async fn per_leader<T, F, Fut>(
        &self,
        partitions: Vec<Partition>,
        call: F,
    ) -> Result<BTreeMap<Partition, T>>
    where
        F: Fn(i32, Vec<Partition>) -> Fut,
        Fut: Future<Output = Result<Vec<(Partition, Result<T>)>>>,
    {
        let mut out = BTreeMap::new();
        let mut pending = partitions;
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let mut by_leader: BTreeMap<i32, Vec<Partition>> = BTreeMap::new();
            let mut again = Vec::new();
            let mut last = None;
            for (topic, partition) in pending {
                match self.client().leader_for(&topic, partition).await {
                    Ok(leader) => by_leader
                        .entry(leader)
                        .or_default()
                        .push((topic, partition)),
                    Err(e) if leader_retriable(&e) => {
                        again.push((topic, partition));
                        last = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            for (leader, parts) in by_leader {
                match call(leader, parts.clone()).await {
                    Ok(answers) => {
                        for (p, r) in answers {
                            match r {
                                Ok(v) => {
                                    out.insert(p, v);
                                }
                                Err(e) if leader_retriable(&e) => {
                                    again.push(p);
                                    last = Some(e);
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    Err(e) if leader_retriable(&e) => {
                        again.extend(parts);
                        last = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            if again.is_empty() {
                break;
            }
            if attempt >= ATTEMPTS {
                return Err(
                    last.unwrap_or_else(|| Error::Config("partition requests kept failing".into()))
                );
            }
            tracing::debug!(error = ?last, attempt, partitions = again.len(), "retrying partitions");
            let mut topics: Vec<&str> = again.iter().map(|(t, _)| t.as_str()).collect();
            topics.sort_unstable();
            topics.dedup();
            let _ = self.client().refresh_metadata(&topics).await;
            tokio::time::sleep(backoff(attempt)).await;
            pending = again;
        }
        Ok(out)
    }

    /// The cluster id, the controller and the brokers, from DescribeCluster (KIP-700; protocol
    /// guide "DescribeCluster API") when the broker has it, else from Metadata (protocol guide
    /// "Metadata API"), which carries the same three.
    ///
    /// # Errors
    /// Transport errors (retried a few times), or DescribeCluster's top-level error code (e.g.
    /// CLUSTER_AUTHORIZATION_FAILED) as [`Error::Broker`].
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.with_controller_retries(|| async {
            let conn = self.client().any_connection().await?;
            let Ok(version) = conn.version_for(ApiKey::DescribeCluster) else {
                let m = self.client().refresh_metadata(&[]).await?;
                return Ok(ClusterDescription {
                    cluster_id: m.cluster_id.clone(),
                    controller_id: m.controller_id,
                    brokers: m.brokers.values().cloned().collect(),
                    source: ApiKey::Metadata,
                });
            };
            // The default endpoint type (v1+) is 1, brokers.
            let req = DescribeClusterRequest::default();
            let resp = conn.send_version(&req, version).await?;
            if resp.error_code != 0 {
                return Err(Error::broker_error(
                    ErrorCode(resp.error_code),
                    ApiKey::DescribeCluster,
                    Some(conn.broker()),
                    None,
                    None,
                    resp.error_message,
                ));
            }
            let mut brokers: Vec<BrokerMetadata> = resp
                .brokers
                .into_iter()
                .map(|b| BrokerMetadata {
                    node_id: b.broker_id,
                    host: b.host,
                    port: b.port,
                    rack: b.rack,
                })
                .collect();
            brokers.sort_by_key(|b| b.node_id);
            Ok(ClusterDescription {
                cluster_id: Some(resp.cluster_id),
                controller_id: resp.controller_id,
                brokers,
                source: ApiKey::DescribeCluster,
            })
        })
        .await
    }
}
