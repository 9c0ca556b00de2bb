//! Listeners and connections: accept loop per broker, one sequential task per connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use kafkawire_protocol::frame::{DEFAULT_MAX_FRAME_SIZE, FrameDecoder};
use kafkawire_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::handlers::sasl::ConnAuth;
use super::model::State;
use super::{Action, Reply, handlers};

/// State shared by the cluster handle and every broker task.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Woken after every append, for long-polling fetches.
    pub(crate) appended: Notify,
    runtimes: Vec<Runtime>,
}

/// The running parts of one broker.
pub(crate) struct Runtime {
    pub(crate) addr: SocketAddr,
    /// Bumped to close every open connection.
    pub(crate) kill: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// While stopped: a socket bound to the broker's address and not listening, so that
    /// connections are refused as by a stopped broker and the port stays ours (another listener
    /// or a connection's local port cannot take it in the meantime).
    reserved: Mutex<Option<TcpSocket>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(state: State) -> Shared {
        let runtimes = state
            .brokers
            .iter()
            .map(|b| Runtime {
                addr: b.addr,
                kill: watch::Sender::new(0),
                task: Mutex::new(None),
                reserved: Mutex::new(None),
            })
            .collect();
        Shared {
            state: Mutex::new(state),
            appended: Notify::new(),
            runtimes,
        }
    }

    /// Runs `f` with the model locked (never across an await).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    pub(crate) fn runtime(&self, id: i32) -> &Runtime {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.runtimes.get(i))
            .unwrap_or_else(|| panic!("mock cluster has no broker {id}"))
    }

    pub(crate) fn push_script(&self, broker: Option<i32>, key: ApiKey, action: Action) {
        self.with(|s| {
            s.scripts
                .entry((broker, key as i16))
                .or_default()
                .push_back(action)
        });
    }

    /// Aborts broker `id`'s accept loop (and with it every connection) without waiting.
    pub(crate) fn abort(&self, id: i32) {
        if let Some(h) = lock(&self.runtime(id).task).take() {
            h.abort();
        }
    }

    /// Aborts broker `id` and waits until its listener and connections are gone, then holds its
    /// address with a bound socket that does not listen (see [`Runtime::reserved`]).
    pub(crate) async fn stop(&self, id: i32) {
        let handle = lock(&self.runtime(id).task).take();
        if let Some(h) = handle {
            h.abort();
            let _ = h.await;
        }
        let rt = self.runtime(id);
        let socket = if rt.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        let reserved = socket.and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(rt.addr)?;
            Ok(s)
        });
        match reserved {
            Ok(s) => *lock(&rt.reserved) = Some(s),
            Err(e) => tracing::warn!(
                "mock broker {id}: cannot hold {} while stopped: {e}",
                rt.addr
            ),
        }
    }

    /// A listener on broker `id`'s address: the socket held since [`stop`](Self::stop), else a
    /// new one.
    pub(crate) async fn listen_again(&self, id: i32) -> std::io::Result<TcpListener> {
        let rt = self.runtime(id);
        let held = lock(&rt.reserved).take();
        match held {
            Some(socket) => socket.listen(1024),
            None => TcpListener::bind(rt.addr).await,
        }
    }

    pub(crate) fn is_running(&self, id: i32) -> bool {
        lock(&self.runtime(id).task)
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }
}

/// Starts broker `id`'s accept loop on `listener` (replacing a previous one).
pub(crate) fn spawn_broker(shared: &Arc<Shared>, id: i32, listener: TcpListener) {
    let task = tokio::spawn(accept_loop(shared.clone(), id, listener));
    if let Some(old) = lock(&shared.runtime(id).task).replace(task) {
        old.abort();
    }
}

async fn accept_loop(shared: Arc<Shared>, id: i32, listener: TcpListener) {
    // Connection tasks live in this set: aborting the accept loop drops it, which aborts them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    shared.with(|s| {
                        if let Some(b) = s.brokers.get_mut(id as usize) {
                            b.accepted += 1;
                            b.open += 1;
                        }
                    });
                    let kill = shared.runtime(id).kill.subscribe();
                    connections.spawn(serve(shared.clone(), id, stream, kill));
                }
                Err(e) => {
                    tracing::warn!("mock broker {id}: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Decrements the open-connection count when a connection task ends or is aborted.
struct OpenGuard {
    shared: Arc<Shared>,
    id: i32,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.shared.with(|s| {
            if let Some(b) = s.brokers.get_mut(self.id as usize) {
                b.open = b.open.saturating_sub(1);
            }
        });
    }
}

/// What a connection's serve loop keeps between requests.
pub(crate) struct ConnState {
    /// SASL state, if SASL was enabled when the connection was accepted.
    pub(crate) sasl: Option<ConnAuth>,
    /// Close the connection once the reply being worked out is written (SASL failures).
    pub(crate) close_after_reply: bool,
}

/// Serves one connection: reads frames and answers them one at a time, in order.
async fn serve(shared: Arc<Shared>, id: i32, stream: TcpStream, mut kill: watch::Receiver<u64>) {
    let _guard = OpenGuard {
        shared: shared.clone(),
        id,
    };
    let mut conn = ConnState {
        sasl: shared.with(|s| s.sasl.clone()).map(ConnAuth::new),
        close_after_reply: false,
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    loop {
        let frame = match decoder.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                decoder.buffer_mut().reserve(8 * 1024);
                tokio::select! {
                    read = rd.read_buf(decoder.buffer_mut()) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    },
                    _ = kill.changed() => return,
                }
            }
            Err(e) => {
                tracing::warn!("mock broker {id}: bad frame, closing the connection: {e}");
                return;
            }
        };
        let reply = tokio::select! {
            reply = handlers::handle(&shared, id, frame, &mut conn) => reply,
            _ = kill.changed() => return,
        };
        match reply {
            Reply::Frame(bytes) => {
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::Nothing => {}
            Reply::Close => return,
        }
        if conn.close_after_reply {
            return;
        }
    }
}
