//! `kafkawire doctor`: checks the way from this machine to the cluster and says, one verdict per
//! line, what works, what does not, and how to fix it.
//!
//! Checks, in order (a failed step stops the steps that need it):
//! 1. the bootstrap brokers answer (TCP, TLS and SASL when configured, ApiVersions);
//! 2. every broker's advertised address is reachable from here (the advertised-listener trap:
//!    the bootstrap broker answers but names addresses that only work inside its network);
//! 3. the API versions each broker offers, and the oldest Apache Kafka release they imply;
//! 4. with `--topic`: every partition has a leader, and no record is dated in the future by
//!    more than the clock-skew tolerance (ListOffsets MAX_TIMESTAMP, KIP-734, Kafka 3.0+);
//! 5. with `--group`: the group's coordinator is found and answers DescribeGroups.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use kafkawire::protocol::ErrorCode;
use kafkawire::protocol::messages::ApiKey;
use kafkawire::protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafkawire::protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafkawire::{Client, ClientConfig, Error};

/// Arguments of `kafkawire doctor`.
#[derive(Args, Debug)]
pub(crate) struct DoctorArgs {
    /// Also check this topic: leaders of every partition, and record timestamps against this
    /// machine's clock.
    #[arg(long)]
    topic: Option<String>,
    /// Also check that this consumer group's coordinator answers.
    #[arg(long)]
    group: Option<String>,
    /// Records dated further in the future than this many seconds are reported as clock skew.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    clock_skew_tolerance: u64,
}

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Info,
    Warn,
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "OK  ",
            Verdict::Info => "INFO",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// The verdicts so far, printed as they come.
#[derive(Default)]
struct Report {
    failures: usize,
    warnings: usize,
}

impl Report {
    fn say(&mut self, v: Verdict, line: impl AsRef<str>) {
        match v {
            Verdict::Fail => self.failures += 1,
            Verdict::Warn => self.warnings += 1,
            _ => {}
        }
        println!("{} {}", v.label(), line.as_ref());
    }
}

/// Oldest Apache Kafka release that offers an API at a version, for the releases this client
/// supports (2.1 to 4.x), newest first. Facts from the KIPs named.
const RELEASE_MARKERS: &[(ApiKey, i16, &str, &str)] = &[
    (
        ApiKey::DescribeTopicPartitions,
        0,
        "3.8",
        "DescribeTopicPartitions, KIP-966",
    ),
    (
        ApiKey::Fetch,
        13,
        "3.1",
        "Fetch v13 with topic ids, KIP-516",
    ),
    (
        ApiKey::ListOffsets,
        7,
        "3.0",
        "ListOffsets v7 MAX_TIMESTAMP, KIP-734",
    ),
    (
        ApiKey::DescribeCluster,
        0,
        "2.8",
        "DescribeCluster, KIP-700",
    ),
    (ApiKey::ApiVersions, 3, "2.4", "ApiVersions v3, KIP-511"),
    (
        ApiKey::IncrementalAlterConfigs,
        0,
        "2.3",
        "IncrementalAlterConfigs, KIP-339",
    ),
    (ApiKey::Produce, 7, "2.1", "Produce v7 with zstd, KIP-110"),
];

/// The oldest release implied by `versions` (the broker's max version of an API, if offered),
/// with the marker that shows it; `None` when even the 2.1 marker is missing.
fn implied_release(
    versions: impl Fn(ApiKey) -> Option<i16>,
) -> Option<(&'static str, &'static str)> {
    RELEASE_MARKERS
        .iter()
        .find(|(api, v, _, _)| versions(*api).is_some_and(|max| max >= *v))
        .map(|(_, _, release, why)| (*release, *why))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Runs the checks against `config`'s cluster, printing every verdict on stdout. Returns
/// whether every check passed (warnings allowed).
pub(crate) async fn run(config: ClientConfig, args: &DoctorArgs) -> bool {
    let mut r = Report::default();
    let bootstrap = config.bootstrap.join(",");
    let security = config.security.protocol;
    let sasl = config.security.sasl.as_ref().map(|s| s.mechanism.name());

    // 1. Bootstrap.
    let started = Instant::now();
    let client = match Client::connect(config.clone()).await {
        Ok(c) => c,
        Err(e) => {
            let fix = match &e {
                Error::Tls { .. } => {
                    "check --security-protocol, --ssl-ca and the listener's TLS settings"
                }
                Error::Authentication { .. } => {
                    "check the SASL mechanism, user name and password, and that the user exists on the broker"
                }
                _ => {
                    "is a broker running there? Point --bootstrap (or KAFKAWIRE_BOOTSTRAP) at a listener this machine can reach"
                }
            };
            r.say(
                Verdict::Fail,
                format!("bootstrap {bootstrap}: {e}. Fix: {fix}."),
            );
            return finish(r);
        }
    };
    let answered = client
        .bootstrap_address()
        .unwrap_or_else(|| bootstrap.clone());
    r.say(
        Verdict::Ok,
        format!(
            "bootstrap {answered} answered in {} ms ({}{})",
            ms(started.elapsed()),
            security.name(),
            sasl.map(|m| format!(", SASL {m} authenticated"))
                .unwrap_or_default()
        ),
    );
    if security.uses_tls() {
        r.say(
            Verdict::Ok,
            format!(
                "TLS handshake with {answered} ({})",
                if config.security.tls.verify_server_name {
                    "certificate chain and host name verified"
                } else {
                    "certificate chain verified, host name NOT verified"
                }
            ),
        );
    }

    // 2 and 3. Every broker's advertised address, and its API versions.
    let meta = match client.refresh_all_metadata().await {
        Ok(m) => m,
        Err(e) => {
            r.say(Verdict::Fail, format!("metadata from {answered}: {e}"));
            return finish(r);
        }
    };
    r.say(
        Verdict::Info,
        format!(
            "cluster {}: {} broker(s), controller {}",
            meta.cluster_id.as_deref().unwrap_or("(no id)"),
            meta.brokers.len(),
            meta.controller_id
        ),
    );
    for (id, b) in &meta.brokers {
        let started = Instant::now();
        match client.dedicated_connection(*id).await {
            Ok(conn) => {
                let took = ms(started.elapsed());
                let versions = |api| conn.broker_versions(api).map(|(_, max)| max);
                let (verdict, release) = match implied_release(versions) {
                    Some((rel, why)) => (
                        Verdict::Ok,
                        format!("API versions imply Apache Kafka {rel} or later ({why})"),
                    ),
                    None => (
                        Verdict::Warn,
                        "API versions older than Apache Kafka 2.1 (no Produce v7): not supported by this client".to_owned(),
                    ),
                };
                r.say(
                    verdict,
                    format!(
                        "broker {id} at {} reachable in {took} ms; {release}",
                        b.address()
                    ),
                );
            }
            Err(e @ Error::AdvertisedListenerUnreachable { .. }) => {
                r.say(Verdict::Fail, format!("broker {id}: {e}"));
            }
            Err(e) => {
                r.say(
                    Verdict::Fail,
                    format!(
                        "broker {id} advertised as {}: {e}. Fix: if it runs, make its advertised.listeners name an address this machine can reach, or map it with --broker-map {}=HOST:PORT",
                        b.address(),
                        b.address()
                    ),
                );
            }
        }
    }

    // 4. Topic.
    if let Some(topic) = &args.topic {
        check_topic(&client, topic, args.clock_skew_tolerance, &mut r).await;
    }
    // 5. Group.
    if let Some(group) = &args.group {
        check_group(&client, group, &mut r).await;
    }
    finish(r)
}

fn finish(r: Report) -> bool {
    if r.failures > 0 {
        println!(
            "doctor: {} check(s) failed, {} warning(s); the FAIL lines say why and how to fix it",
            r.failures, r.warnings
        );
        return false;
    }
    println!(
        "doctor: all checks passed{}",
        if r.warnings > 0 {
            format!(" ({} warning(s))", r.warnings)
        } else {
            String::new()
        }
    );
    true
}

async fn check_topic(client: &Client, topic: &str, tolerance_s: u64, r: &mut Report) {
    let t = match client.topic_metadata(topic).await {
        Ok(t) => t,
        Err(e) => {
            r.say(Verdict::Fail, format!("topic {topic}: {e}"));
            return;
        }
    };
    let leaderless: Vec<i32> = t
        .partitions
        .iter()
        .filter(|p| p.leader < 0)
        .map(|p| p.partition)
        .collect();
    if leaderless.is_empty() {
        r.say(
            Verdict::Ok,
            format!(
                "topic {topic}: every partition of {} has a leader",
                t.partitions.len()
            ),
        );
    } else {
        r.say(
            Verdict::Fail,
            format!(
                "topic {topic}: partitions {leaderless:?} have no leader (their replicas are down or out of sync); records cannot be written or read there until one is elected"
            ),
        );
    }

    // Clock skew: the newest record timestamp of each partition against this machine's clock.
    let mut newest: Option<(i32, i64)> = None;
    let mut unsupported = false;
    for p in t.partitions.iter().filter(|p| p.leader >= 0) {
        let req = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: topic.to_owned(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: p.partition,
                    current_leader_epoch: -1,
                    timestamp: -3, // MAX_TIMESTAMP (KIP-734)
                    max_num_offsets: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let conn = match client.broker_connection(p.leader).await {
            Ok(c) => c,
            Err(_) => continue, // reported above
        };
        let Ok(version) = conn.version_for(ApiKey::ListOffsets) else {
            continue;
        };
        if version < 7 {
            unsupported = true;
            break;
        }
        let Ok(resp) = conn.send_version(&req, version).await else {
            continue;
        };
        for part in resp.topics.iter().flat_map(|t| t.partitions.iter()) {
            if part.error_code == 0
                && part.timestamp >= 0
                && newest.is_none_or(|(_, ts)| part.timestamp > ts)
            {
                newest = Some((part.partition_index, part.timestamp));
            }
            if ErrorCode(part.error_code) == ErrorCode::UNSUPPORTED_VERSION {
                unsupported = true;
            }
        }
    }
    let now = now_ms();
    match newest {
        _ if unsupported => r.say(
            Verdict::Info,
            format!("topic {topic}: clock skew not checked (the broker has no ListOffsets v7, Kafka 3.0+)"),
        ),
        None => r.say(
            Verdict::Info,
            format!("topic {topic}: clock skew not checked (no record timestamp returned: an empty topic, or a broker without MAX_TIMESTAMP)"),
        ),
        Some((p, ts)) if ts > now + (tolerance_s as i64) * 1000 => r.say(
            Verdict::Warn,
            format!(
                "topic {topic}: partition {p} holds a record dated {:.1} s in the future of this machine's clock: a producer's clock or this one is off (retention and time-based lookups use these timestamps)",
                (ts - now) as f64 / 1000.0
            ),
        ),
        Some((p, ts)) => r.say(
            Verdict::Ok,
            format!(
                "topic {topic}: newest record timestamp (partition {p}) is {:.1} s before this machine's clock",
                (now - ts) as f64 / 1000.0
            ),
        ),
    }
}

async fn check_group(client: &Client, group: &str, r: &mut Report) {
    let started = Instant::now();
    let coordinator = match client.find_coordinator(0, group).await {
        Ok(c) => c,
        Err(e) => {
            r.say(
                Verdict::Fail,
                format!("group {group}: no coordinator found: {e}"),
            );
            return;
        }
    };
    let req = DescribeGroupsRequest {
        groups: vec![group.to_owned()],
        ..Default::default()
    };
    match client.send_to(coordinator, &req).await {
        Ok(resp) => match resp.groups.first() {
            Some(g) if g.error_code == 0 => r.say(
                Verdict::Ok,
                format!(
                    "group {group}: coordinator broker {coordinator} answered in {} ms (state {}, {} member(s))",
                    ms(started.elapsed()),
                    if g.group_state.is_empty() { "unknown" } else { &g.group_state },
                    g.members.len()
                ),
            ),
            Some(g) => r.say(
                Verdict::Fail,
                format!(
                    "group {group}: coordinator broker {coordinator} answered {}",
                    ErrorCode(g.error_code)
                ),
            ),
            None => r.say(
                Verdict::Fail,
                format!("group {group}: coordinator broker {coordinator} did not describe the group"),
            ),
        },
        Err(e) => r.say(
            Verdict::Fail,
            format!("group {group}: coordinator broker {coordinator} did not answer: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_follow_the_newest_marker_offered() {
        let all = |api: ApiKey| -> Option<i16> {
            Some(match api {
                ApiKey::Fetch => 16,
                ApiKey::ListOffsets => 8,
                ApiKey::ApiVersions => 3,
                ApiKey::Produce => 11,
                _ => return None,
            })
        };
        assert_eq!(implied_release(all).map(|r| r.0), Some("3.1"));
        let old = |api: ApiKey| (api == ApiKey::Produce).then_some(7);
        assert_eq!(implied_release(old).map(|r| r.0), Some("2.1"));
        let older = |api: ApiKey| (api == ApiKey::Produce).then_some(6);
        assert_eq!(implied_release(older), None);
    }
}
