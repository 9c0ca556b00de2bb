//! The [`MockBroker`] handle: one broker's address, scripts, connections, stop and restart.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use kafkawire_protocol::messages::ApiKey;

#[cfg(doc)]
use super::MockCluster;
use super::{Action, MockBroker, server};

impl MockBroker {
    /// Its node id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Its listener address, `"127.0.0.1:port"` (kept across [`stop`](Self::stop) and
    /// [`restart`](Self::restart)).
    pub fn addr(&self) -> String {
        self.socket_addr().to_string()
    }

    /// Its listener address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.shared.runtime(self.id).addr
    }

    /// Queues `action` for the next request of `key` on this broker only (taken before the
    /// cluster-wide queue of [`MockCluster::script`]).
    pub fn script(&self, key: ApiKey, action: Action) {
        self.shared.push_script(Some(self.id), key, action);
    }

    /// How many connections it has accepted in total.
    pub fn connections(&self) -> usize {
        self.shared
            .with(|s| s.brokers.get(self.id as usize).map_or(0, |b| b.accepted))
    }

    /// How many of its connections are open now.
    pub fn open_connections(&self) -> usize {
        self.shared
            .with(|s| s.brokers.get(self.id as usize).map_or(0, |b| b.open))
    }

    /// Closes every open connection (the listener keeps accepting new ones). A request being
    /// processed is abandoned without a response.
    pub fn drop_connections(&self) {
        self.shared.runtime(self.id).kill.send_modify(|g| *g += 1);
    }

    /// Stops the broker: closes its listener and every connection. The model keeps it (Metadata
    /// still lists it and it may still lead partitions), like a crashed broker before the
    /// controller notices. Its port stays bound without listening, so connections are refused
    /// and nothing else (another mock cluster's listener, a connection's local port) takes it
    /// before [`restart`](Self::restart).
    pub async fn stop(&self) {
        self.shared.stop(self.id).await;
    }

    /// Listens again on the same address after [`stop`](Self::stop) (which keeps the port
    /// bound meanwhile); does nothing if it is running.
    ///
    /// # Errors
    /// The I/O error of listening on the old address.
    pub async fn restart(&self) -> io::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let listener = self.shared.listen_again(self.id).await?;
        server::spawn_broker(&self.shared, self.id, listener);
        Ok(())
    }

    /// Whether its listener is running.
    pub fn is_running(&self) -> bool {
        self.shared.is_running(self.id)
    }
}

impl fmt::Debug for MockBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBroker")
            .field("id", &self.id)
            .field("addr", &self.socket_addr())
            .finish()
    }
}
