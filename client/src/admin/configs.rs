//! Topic and broker configuration: DescribeConfigs and IncrementalAlterConfigs (KIP-339).
//!
//! Topic resources (and the cluster-wide broker default, a broker resource with an empty name)
//! are asked of any broker, the controller first; a broker's own configuration is asked of that
//! broker, as the Java admin client does.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafkawire_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};

use crate::Connection;
use crate::admin::Admin;
use crate::error::{Error, Result};

/// The kind of a [`ConfigResource`] (the protocol's `ResourceType` of DescribeConfigs and
/// IncrementalAlterConfigs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResourceType {
    /// A topic (resource type 2); the name is the topic's.
    Topic,
    /// A broker (resource type 4); the name is its node id, or empty for the cluster-wide
    /// default of every broker (a dynamic default, KIP-226).
    Broker,
    /// A broker's log4j loggers (resource type 8, KIP-412); the name is the broker's node id.
    BrokerLogger,
}

impl ConfigResourceType {
    /// The protocol's code for this type.
    pub fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
        }
    }

    /// The type of a protocol code, if this client knows it.
    pub fn from_code(code: i8) -> Option<ConfigResourceType> {
        match code {
            2 => Some(ConfigResourceType::Topic),
            4 => Some(ConfigResourceType::Broker),
            8 => Some(ConfigResourceType::BrokerLogger),
            _ => None,
        }
    }
}

/// Something with a configuration: a topic or a broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// Its type.
    pub resource_type: ConfigResourceType,
    /// Its name: a topic name, or a broker's node id in decimal.
    pub name: String,
}

impl ConfigResource {
    /// The topic `name`.
    pub fn topic(name: impl Into<String>) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// Broker `node_id`.
    pub fn broker(node_id: i32) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: node_id.to_string(),
        }
    }

    /// The cluster-wide default of every broker (a broker resource with an empty name).
    pub fn broker_default() -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: String::new(),
        }
    }

    /// The broker that must answer for this resource: a broker's (or its loggers') own node id;
    /// `None` for topics and the cluster-wide broker default (any broker answers).
    fn node(&self) -> Option<i32> {
        match self.resource_type {
            ConfigResourceType::Topic => None,
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => self.name.parse().ok(),
        }
    }

    /// A broker error about this resource: a topic is named as the error's topic, a broker in
    /// its message.
    fn error(
        &self,
        code: ErrorCode,
        api: ApiKey,
        conn: &Connection,
        message: Option<String>,
    ) -> Error {
        match self.resource_type {
            ConfigResourceType::Topic => Error::broker_error(
                code,
                api,
                Some(conn.broker()),
                Some(&self.name),
                None,
                message,
            ),
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => {
                let what = if self.name.is_empty() {
                    "the cluster-wide broker default".to_owned()
                } else if self.resource_type == ConfigResourceType::Broker {
                    format!("broker {}", self.name)
                } else {
                    format!("the loggers of broker {}", self.name)
                };
                let message = Some(match message.filter(|m| !m.is_empty()) {
                    Some(m) => format!("{what}: {m}"),
                    None => what,
                });
                Error::broker_error(code, api, Some(conn.broker()), None, None, message)
            }
        }
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.resource_type {
            ConfigResourceType::Topic => write!(f, "topic {}", self.name),
            ConfigResourceType::Broker if self.name.is_empty() => f.write_str("broker default"),
            ConfigResourceType::Broker => write!(f, "broker {}", self.name),
            ConfigResourceType::BrokerLogger => write!(f, "broker-logger {}", self.name),
        }
    }
}

/// Where a config value comes from (DescribeConfigs v1+ `ConfigSource`; KIP-226).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// Set on the topic (`DYNAMIC_TOPIC_CONFIG`, 1).
    DynamicTopic,
    /// Set dynamically for this broker (`DYNAMIC_BROKER_CONFIG`, 2).
    DynamicBroker,
    /// Set dynamically as the default of every broker (`DYNAMIC_DEFAULT_BROKER_CONFIG`, 3).
    DynamicDefaultBroker,
    /// From the broker's `server.properties` (`STATIC_BROKER_CONFIG`, 4).
    StaticBroker,
    /// Kafka's built-in default (`DEFAULT_CONFIG`, 5).
    Default,
    /// Set dynamically on a broker logger (`DYNAMIC_BROKER_LOGGER_CONFIG`, 6).
    DynamicBrokerLogger,
    /// Not told (DescribeConfigs v0 for a value that is not the default), or a code this client
    /// does not know.
    Unknown(i8),
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            other => ConfigSource::Unknown(other),
        }
    }

    /// Kafka's name for the source, e.g. `DYNAMIC_TOPIC_CONFIG`.
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLogger => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::Unknown(_) => "UNKNOWN",
        }
    }
}

/// One config of a resource, as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key, e.g. `retention.ms`.
    pub name: String,
    /// The value; `None` for sensitive values (passwords) and unset ones.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed at runtime.
    pub read_only: bool,
    /// Whether the value is sensitive (and so not shown).
    pub sensitive: bool,
    /// The values it overrides, most specific first (`(name, value, source)`; DescribeConfigs
    /// v1+ with synonyms, e.g. `log.retention.ms` under a topic's `retention.ms`).
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

impl ConfigEntry {
    /// Whether the value is Kafka's built-in default.
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::Default
    }
}

/// How an [`AlterConfigOp`] changes a config (IncrementalAlterConfigs `ConfigOperation`,
/// KIP-339).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlterConfigOpType {
    /// Set the value (0).
    Set,
    /// Remove the setting, back to the next source's value (1).
    Delete,
    /// Add the value to a list config, e.g. `cleanup.policy` (2).
    Append,
    /// Remove the value from a list config (3).
    Subtract,
}

impl AlterConfigOpType {
    /// The protocol's code.
    pub fn code(self) -> i8 {
        match self {
            AlterConfigOpType::Set => 0,
            AlterConfigOpType::Delete => 1,
            AlterConfigOpType::Append => 2,
            AlterConfigOpType::Subtract => 3,
        }
    }
}

/// One change of an incremental config alteration (KIP-339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    /// The key, e.g. `retention.ms`.
    pub name: String,
    /// What to do.
    pub op: AlterConfigOpType,
    /// The value (`None` for [`AlterConfigOpType::Delete`]).
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Set,
            value: Some(value.into()),
        }
    }

    /// Removes the setting of `name` (it falls back to the broker's or the built-in default).
    pub fn delete(name: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Delete,
            value: None,
        }
    }

    /// Adds `value` to the list config `name`.
    pub fn append(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Append,
            value: Some(value.into()),
        }
    }

    /// Removes `value` from the list config `name`.
    pub fn subtract(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Subtract,
            value: Some(value.into()),
        }
    }
}

/// Resources grouped by the broker that must answer for them (`None`: any broker).
fn by_destination<'a, T>(
    items: impl IntoIterator<Item = (&'a ConfigResource, T)>,
) -> BTreeMap<Option<i32>, Vec<(&'a ConfigResource, T)>> {
    let mut out: BTreeMap<Option<i32>, Vec<(&'a ConfigResource, T)>> = BTreeMap::new();
    for (r, t) in items {
        out.entry(r.node()).or_default().push((r, t));
    }
    out
}

impl Admin {
    /// A connection to `node`, or to the controller (else any broker) for `None`.
    async fn config_connection(&self, node: Option<i32>) -> Result<Arc<Connection>> {
        match node {
            Some(id) => self.client().broker_connection(id).await,
            None => self.controller_or_any().await,
        }
    }

    /// The configuration of each resource (DescribeConfigs; protocol guide "DescribeConfigs
    /// API", KIP-133 and KIP-226 for sources and synonyms), every key of each, in the order
    /// asked. Synonyms are included (v1+). Topics are asked of any broker, a broker's own
    /// configuration of that broker.
    ///
    /// # Errors
    /// Transport errors (retried a few times, as are NOT_CONTROLLER answers), or the first
    /// resource's [`Error::Broker`]: UNKNOWN_TOPIC_OR_PARTITION naming the topic, or e.g.
    /// INVALID_REQUEST for a broker that is not the one asked, naming the broker in the message.
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<(ConfigResource, Vec<ConfigEntry>)>> {
        let mut found: BTreeMap<ConfigResource, Vec<ConfigEntry>> = BTreeMap::new();
        for (node, group) in by_destination(resources.iter().map(|r| (r, ()))) {
            let group: Vec<&ConfigResource> = group.into_iter().map(|(r, ())| r).collect();
            let group = &group;
            let answer = self
                .with_controller_retries(|| async move {
                    let conn = self.config_connection(node).await?;
                    self.describe_configs_on(&conn, group).await
                })
                .await?;
            found.extend(answer);
        }
        Ok(resources
            .iter()
            .map(|r| (r.clone(), found.remove(r).unwrap_or_default()))
            .collect())
    }

    async fn describe_configs_on(
        &self,
        conn: &Connection,
        resources: &[&ConfigResource],
    ) -> Result<BTreeMap<ConfigResource, Vec<ConfigEntry>>> {
        let version = conn.version_for(ApiKey::DescribeConfigs)?;
        let req = DescribeConfigsRequest {
            resources: resources
                .iter()
                .map(|r| DescribeConfigsResource {
                    resource_type: r.resource_type.code(),
                    resource_name: r.name.clone(),
                    configuration_keys: None,
                    ..Default::default()
                })
                .collect(),
            include_synonyms: version >= 1,
            ..Default::default()
        };
        let resp = conn.send_version(&req, version).await?;
        let mut out = BTreeMap::new();
        for want in resources {
            let Some(res) = resp.results.iter().find(|res| {
                res.resource_type == want.resource_type.code() && res.resource_name == want.name
            }) else {
                return Err(want.error(
                    ErrorCode::UNKNOWN_SERVER_ERROR,
                    ApiKey::DescribeConfigs,
                    conn,
                    Some("the response does not mention it".into()),
                ));
            };
            if res.error_code != 0 {
                return Err(want.error(
                    ErrorCode(res.error_code),
                    ApiKey::DescribeConfigs,
                    conn,
                    res.error_message.clone(),
                ));
            }
            let entries = res
                .configs
                .iter()
                .map(|c| ConfigEntry {
                    name: c.name.clone(),
                    value: c.value.clone(),
                    source: if version == 0 {
                        if c.is_default {
                            ConfigSource::Default
                        } else {
                            ConfigSource::Unknown(-1)
                        }
                    } else {
                        ConfigSource::from_code(c.config_source)
                    },
                    read_only: c.read_only,
                    sensitive: c.is_sensitive,
                    synonyms: c
                        .synonyms
                        .iter()
                        .map(|s| {
                            (
                                s.name.clone(),
                                s.value.clone(),
                                ConfigSource::from_code(s.source),
                            )
                        })
                        .collect(),
                })
                .collect();
            out.insert((*want).clone(), entries);
        }
        Ok(out)
    }

    /// Changes configs key by key (IncrementalAlterConfigs, KIP-339; protocol guide
    /// "IncrementalAlterConfigs API"): each resource's operations are applied together, keys
    /// not named keep their values. With `validate_only` the broker checks the changes and
    /// applies nothing. A broker's own configuration is changed on that broker; topics and the
    /// cluster-wide broker default on any broker (the controller first).
    ///
    /// # Errors
    /// [`Error::Config`] for an operation other than DELETE without a value; transport errors
    /// (retried a few times, as are NOT_CONTROLLER answers); or the first failing resource's
    /// [`Error::Broker`] (e.g. INVALID_CONFIG for an unknown key or bad value,
    /// UNKNOWN_TOPIC_OR_PARTITION), naming the topic, or the broker in the message. Resources
    /// sent to other brokers may have been changed all the same.
    pub async fn incremental_alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<AlterConfigOp>)],
        validate_only: bool,
    ) -> Result<()> {
        for (r, ops) in changes {
            if let Some(op) = ops
                .iter()
                .find(|o| o.op != AlterConfigOpType::Delete && o.value.is_none())
            {
                return Err(Error::Config(format!(
                    "{r}: {:?} of {} needs a value",
                    op.op, op.name
                )));
            }
        }
        for (node, group) in by_destination(changes.iter().map(|(r, ops)| (r, ops))) {
            let group = &group;
            self.with_controller_retries(|| async move {
                let conn = self.config_connection(node).await?;
                let req = IncrementalAlterConfigsRequest {
                    resources: group
                        .iter()
                        .map(|(r, ops)| AlterConfigsResource {
                            resource_type: r.resource_type.code(),
                            resource_name: r.name.clone(),
                            configs: ops
                                .iter()
                                .map(|o| AlterableConfig {
                                    name: o.name.clone(),
                                    config_operation: o.op.code(),
                                    value: o.value.clone(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    validate_only,
                    ..Default::default()
                };
                let resp = conn.send(&req).await?;
                for (want, _) in group {
                    let res = resp.responses.iter().find(|res| {
                        res.resource_type == want.resource_type.code()
                            && res.resource_name == want.name
                    });
                    match res {
                        Some(res) if res.error_code == 0 => {}
                        Some(res) => {
                            return Err(want.error(
                                ErrorCode(res.error_code),
                                ApiKey::IncrementalAlterConfigs,
                                &conn,
                                res.error_message.clone(),
                            ));
                        }
                        None => {
                            return Err(want.error(
                                ErrorCode::UNKNOWN_SERVER_ERROR,
                                ApiKey::IncrementalAlterConfigs,
                                &conn,
                                Some("the response does not mention it".into()),
                            ));
                        }
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}
