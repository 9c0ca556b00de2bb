//! The classic group membership protocol (protocol guide, "The Consumer Group Protocol";
//! KIP-394 for MEMBER_ID_REQUIRED, KIP-345 for static membership): JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, sent to the group coordinator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafkawire_client::{Client, Connection, Error, Result};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafkawire_protocol::messages::join_group_request::{
    JoinGroupRequest, JoinGroupRequestProtocol,
};
use kafkawire_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafkawire_protocol::messages::sync_group_request::{
    SyncGroupRequest, SyncGroupRequestAssignment,
};
use kafkawire_protocol::messages::{ApiKey, Request};

/// What the member knows of its place in the group.
#[derive(Debug, Clone, Default)]
pub(crate) struct Membership {
    pub(crate) member_id: String,
    pub(crate) generation_id: i32,
    pub(crate) coordinator: Option<i32>,
    /// Set by the heartbeat task (or a failed commit) when the member must join again.
    pub(crate) needs_rejoin: bool,
    /// Set when the member left because the application did not poll within
    /// `max_poll_interval`; reported by the next poll.
    pub(crate) left_for_slow_poll: Option<Duration>,
    /// An error that ends membership for good (FENCED_INSTANCE_ID, authorization).
    pub(crate) fatal: Option<Error>,
    /// A join/sync is under way: heartbeats pause, and answers to heartbeats of the generation
    /// being replaced are ignored (they would only say "rebalance in progress" again).
    pub(crate) rebalancing: bool,
    /// This member's own connection to the coordinator (node id, connection): a JoinGroup the
    /// coordinator holds until the group has rejoined must not hold up, or wait behind, the
    /// requests of other consumers sharing the client (answers come in request order on a
    /// connection), as the Java client keeps a separate coordinator connection too.
    pub(crate) connection: Option<(i32, Arc<Connection>)>,
}

pub(crate) type SharedMembership = Arc<Mutex<Membership>>;

/// The answer of a completed join: the generation, whether we lead, the chosen protocol and,
/// for the leader, the members' subscriptions.
pub(crate) struct Joined {
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) leader: bool,
    pub(crate) protocol: String,
    pub(crate) members: Vec<(String, Option<String>, Bytes)>,
}

pub(crate) struct Coordinator<'a> {
    pub(crate) client: &'a Client,
    pub(crate) group: &'a str,
    pub(crate) instance_id: Option<&'a str>,
    pub(crate) state: &'a SharedMembership,
}

fn rediscover(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    )
}

impl Coordinator<'_> {
    pub(crate) async fn node(&self) -> Result<i32> {
        if let Some(n) = self.state.lock().ok().and_then(|s| s.coordinator) {
            return Ok(n);
        }
        let n = self.client.find_coordinator(0, self.group).await?;
        if let Ok(mut s) = self.state.lock() {
            s.coordinator = Some(n);
        }
        Ok(n)
    }

    fn forget_coordinator(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.coordinator = None;
            s.connection = None;
        }
    }

    /// The member's own connection to the coordinator, opened on first use.
    async fn connection(&self) -> Result<Arc<Connection>> {
        let node = self.node().await?;
        let cached = self.state.lock().ok().and_then(|s| s.connection.clone());
        if let Some((n, c)) = cached
            && n == node
            && !c.is_closed()
        {
            return Ok(c);
        }
        let c = Arc::new(self.client.dedicated_connection(node).await?);
        if let Ok(mut s) = self.state.lock() {
            s.connection = Some((node, c.clone()));
        }
        Ok(c)
    }

    /// Sends `req` to the coordinator on the member's connection, waiting up to `timeout`
    /// (default: the client's request timeout). A transport failure or timeout drops the
    /// connection (a late answer would otherwise come before the next request's) and marks
    /// the coordinator unknown, so the next request looks it up again (FindCoordinator), as the
    /// Java client does on a disconnect: the coordinator may have moved to another broker.
    /// Membership is not touched: only the coordinator's answers end it.
    async fn send<R: Request>(&self, req: &R, timeout: Option<Duration>) -> Result<R::Response> {
        let conn = match self.connection().await {
            Ok(conn) => conn,
            Err(e) => {
                // The coordinator (as last found) cannot be reached: look it up again next time.
                if e.is_retriable() {
                    self.forget_coordinator();
                }
                return Err(e);
            }
        };
        let r = match timeout {
            Some(t) => conn.send_with_timeout(req, t).await,
            None => conn.send(req).await,
        };
        if r.as_ref().is_err_and(|e| {
            matches!(
                e,
                Error::Io { .. }
                    | Error::ConnectionClosed { .. }
                    | Error::Decode { .. }
                    | Error::Timeout { .. }
            )
        }) {
            self.forget_coordinator();
        }
        r
    }

    fn err(&self, code: ErrorCode, api: ApiKey) -> Error {
        if rediscover(code) {
            self.forget_coordinator();
        }
        Error::broker_error(
            code,
            api,
            None,
            None,
            None,
            Some(format!("group {}", self.group)),
        )
    }

    /// JoinGroup, repeating the MEMBER_ID_REQUIRED round (KIP-394) and coordinator moves.
    pub(crate) async fn join(
        &self,
        protocols: &[(String, Bytes)],
        session_timeout: Duration,
        rebalance_timeout: Duration,
    ) -> Result<Joined> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let member_id = self
                .state
                .lock()
                .map(|s| s.member_id.clone())
                .unwrap_or_default();
            let req = JoinGroupRequest {
                group_id: self.group.to_owned(),
                session_timeout_ms: session_timeout.as_millis().min(i32::MAX as u128) as i32,
                rebalance_timeout_ms: rebalance_timeout.as_millis().min(i32::MAX as u128) as i32,
                member_id,
                group_instance_id: self.instance_id.map(str::to_owned),
                protocol_type: "consumer".into(),
                protocols: protocols
                    .iter()
                    .map(|(name, metadata)| JoinGroupRequestProtocol {
                        name: name.clone(),
                        metadata: metadata.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            // The coordinator holds a JoinGroup until every member has rejoined, up to the
            // rebalance timeout: wait that long and a little more, as the Java client does.
            let wait = rebalance_timeout
                .saturating_add(Duration::from_secs(5))
                .max(self.client.config().request_timeout);
            let result = self.send(&req, Some(wait)).await;
            let resp = match result {
                Ok(r) => r,
                Err(e) if e.is_retriable() && attempt < 10 => {
                    self.forget_coordinator();
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let code = ErrorCode(resp.error_code);
            match code {
                ErrorCode::NONE => {
                    if let Ok(mut s) = self.state.lock() {
                        s.member_id = resp.member_id.clone();
                        s.generation_id = resp.generation_id;
                    }
                    return Ok(Joined {
                        generation_id: resp.generation_id,
                        leader: resp.leader == resp.member_id,
                        member_id: resp.member_id,
                        protocol: resp.protocol_name.unwrap_or_default(),
                        members: resp
                            .members
                            .into_iter()
                            .map(|m| (m.member_id, m.group_instance_id, m.metadata))
                            .collect(),
                    });
                }
                ErrorCode::MEMBER_ID_REQUIRED => {
                    if let Ok(mut s) = self.state.lock() {
                        s.member_id = resp.member_id;
                    }
                }
                ErrorCode::UNKNOWN_MEMBER_ID => {
                    if let Ok(mut s) = self.state.lock() {
                        s.member_id.clear();
                    }
                }
                c if (rediscover(c) || c == ErrorCode::REBALANCE_IN_PROGRESS) && attempt < 10 => {
                    let _ = self.err(c, ApiKey::JoinGroup);
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                c => return Err(self.err(c, ApiKey::JoinGroup)),
            }
            if attempt >= 10 {
                return Err(self.err(code, ApiKey::JoinGroup));
            }
        }
    }

    /// SyncGroup: the leader sends every member's assignment; everyone gets their own.
    pub(crate) async fn sync(
        &self,
        joined: &Joined,
        assignments: BTreeMap<String, Bytes>,
    ) -> Result<Bytes> {
        let req = SyncGroupRequest {
            group_id: self.group.to_owned(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            group_instance_id: self.instance_id.map(str::to_owned),
            protocol_type: Some("consumer".into()),
            protocol_name: Some(joined.protocol.clone()),
            assignments: assignments
                .into_iter()
                .map(|(member_id, assignment)| SyncGroupRequestAssignment {
                    member_id,
                    assignment,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let resp = self.send(&req, None).await?;
        match ErrorCode(resp.error_code) {
            ErrorCode::NONE => Ok(resp.assignment),
            c => Err(self.err(c, ApiKey::SyncGroup)),
        }
    }

    /// One heartbeat; the error code tells the caller what to do.
    pub(crate) async fn heartbeat(&self) -> Result<ErrorCode> {
        let (member_id, generation_id) = self
            .state
            .lock()
            .map(|s| (s.member_id.clone(), s.generation_id))
            .unwrap_or_default();
        let req = HeartbeatRequest {
            group_id: self.group.to_owned(),
            generation_id,
            member_id,
            group_instance_id: self.instance_id.map(str::to_owned),
            ..Default::default()
        };
        let resp = self.send(&req, None).await?;
        let code = ErrorCode(resp.error_code);
        if rediscover(code) {
            self.forget_coordinator();
        }
        Ok(code)
    }

    /// LeaveGroup (v3+ names members, KIP-345), so the group rebalances at once instead of
    /// waiting for the session timeout.
    pub(crate) async fn leave(&self, reason: &str) -> Result<()> {
        let member_id = self
            .state
            .lock()
            .map(|s| s.member_id.clone())
            .unwrap_or_default();
        if member_id.is_empty() {
            return Ok(());
        }
        let conn = self.connection().await?;
        let version = conn.version_for(ApiKey::LeaveGroup)?;
        // v0-2 name one member; v3+ a list of members (KIP-345).
        let req = if version < 3 {
            LeaveGroupRequest {
                group_id: self.group.to_owned(),
                member_id,
                ..Default::default()
            }
        } else {
            LeaveGroupRequest {
                group_id: self.group.to_owned(),
                members: vec![MemberIdentity {
                    member_id,
                    group_instance_id: self.instance_id.map(str::to_owned),
                    reason: Some(reason.to_owned()),
                    ..Default::default()
                }],
                ..Default::default()
            }
        };
        let resp = conn.send_version(&req, version).await?;
        if let Ok(mut s) = self.state.lock() {
            s.member_id.clear();
            s.generation_id = -1;
        }
        match ErrorCode(resp.error_code) {
            ErrorCode::NONE | ErrorCode::UNKNOWN_MEMBER_ID => Ok(()),
            c => Err(self.err(c, ApiKey::LeaveGroup)),
        }
    }
}
