//! A seeded, fault-injecting TCP proxy for putting network failures between a client and a
//! broker (the [`mock`](crate::mock) broker or a real one such as [Tansu](crate::tansu)).
//!
//! [`FaultProxy::start`] listens on `127.0.0.1` (random port) and forwards every accepted
//! connection to one upstream address. Faults can be switched at any time while it runs:
//!
//! | Fault | Effect |
//! | --- | --- |
//! | [`cut_after`](FaultProxy::cut_after) | each new connection is closed after a seeded random number of bytes |
//! | [`blackhole`](FaultProxy::blackhole) | nothing is forwarded, sockets stay open (a dead NAT entry) |
//! | [`latency`](FaultProxy::latency) | every chunk is delayed, in each direction |
//! | [`refuse`](FaultProxy::refuse) | new connections are accepted and reset at once |
//! | [`cut_all`](FaultProxy::cut_all) | every open connection is closed now |
//! | [`restart`](FaultProxy::restart) | `cut_all`, then refuse for a while (a broker restart) |
//!
//! "Closing" a connection drops both its sockets, the client's and the upstream one: each peer
//! sees end of stream (or a reset, if the proxy had unread bytes from it). All randomness comes
//! from the seed, so the same seed and the same sequence of connections give the same cut points.
//! Dropping the [`FaultProxy`] stops the listener and closes every connection.
//!
//! A new connection gets the faults in force when the proxy *accepts* it, which can be a
//! moment after the client's `connect` returned: a test that switches a fault right after
//! connecting should first wait for [`ProxyStats::accepted`] to count the connection.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{Notify, mpsc};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// Which bytes a [`FaultProxy::cut_after`] budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to upstream (requests).
    Upstream,
    /// Upstream to client (responses).
    Downstream,
    /// Both directions together.
    Either,
}

/// Counters of a [`FaultProxy`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted and proxied (refused ones are not counted here).
    pub accepted: u64,
    /// Connections accepted then reset at once because of [`FaultProxy::refuse`] or a restart.
    pub refused: u64,
    /// Connections closed by a fault: a `cut_after` budget, [`FaultProxy::cut_all`] or a restart.
    pub cuts: u64,
    /// Bytes forwarded client to upstream.
    pub bytes_upstream: u64,
    /// Bytes forwarded upstream to client.
    pub bytes_downstream: u64,
    /// Connections open now.
    pub open: usize,
}

/// A TCP proxy on `127.0.0.1` that injects seeded network faults. See the [module](self) docs.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    seed: u64,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    conns: Mutex<HashMap<u64, (Arc<Conn>, AbortHandle)>>,
    /// The counters; `open` is not kept here but is the length of `conns`.
    stats: Mutex<ProxyStats>,
}

#[derive(Debug)]
struct Faults {
    rng: StdRng,
    cut: Option<(Direction, Range<u64>)>,
    blackhole: bool,
    latency: Duration,
    refuse: bool,
}

/// State shared by the four pumps of one connection and the proxy.
#[derive(Debug, Default)]
struct Conn {
    blackholed: AtomicBool,
    /// Closes the connection when notified; `faulted` says whether it counts as a cut.
    kill: Notify,
    faulted: AtomicBool,
    budget: Mutex<Budget>,
}

/// The `cut_after` budget of one connection.
#[derive(Debug, Default)]
struct Budget {
    /// Direction counted and the number of bytes after which the connection is cut.
    limit: Option<(Direction, u64)>,
    up: u64,
    down: u64,
    /// Writes reserved and not yet finished; the cut waits for them.
    in_flight: u32,
    cut_pending: bool,
}

/// What a reader hands its writer.
enum Chunk {
    /// Bytes to write once the deadline (read time + latency) has passed.
    Data(Instant, Bytes),
    /// The reading side reached end of stream.
    Eof,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (resolved once, now) on `127.0.0.1` with a random port.
    /// `seed` seeds the random draws of [`cut_after`](Self::cut_after). No fault is active.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The error of resolving `upstream` (`InvalidInput` if it resolves to nothing) or of
    /// binding the listener.
    pub async fn start(upstream: impl ToSocketAddrs, seed: u64) -> io::Result<FaultProxy> {
        let mut addrs = tokio::net::lookup_host(upstream).await?;
        let upstream = addrs.next().ok_or(io::ErrorKind::InvalidInput)?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(Faults {
                rng: StdRng::seed_from_u64(seed),
                cut: None,
                blackhole: false,
                latency: Duration::ZERO,
                refuse: false,
            }),
            conns: Mutex::default(),
            stats: Mutex::default(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            addr,
            seed,
            shared,
            accept_task,
        })
    }

    /// The address clients connect to (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seed given to [`start`](Self::start).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Cuts connections after some bytes. Each connection accepted from now on draws `N`
    /// uniformly from `bytes` (seeded; an empty range means `bytes.start`) and is closed once
    /// `N` bytes have been forwarded in `dir`. Exactly `N` bytes pass (a chunk is split at the
    /// cut point), so a cut can fall inside a frame. With [`Direction::Either`] bytes in flight
    /// the other way when `N` is reached are still delivered. `None` turns the fault off for
    /// new connections. Connections already open keep the budget they drew.
    pub fn cut_after(&self, dir: Direction, bytes: Option<Range<u64>>) {
        lock(&self.shared.faults).cut = bytes.map(|r| (dir, r));
    }

    /// With `on`, stops forwarding anything, in both directions, on every open connection and
    /// on new ones (which are still accepted and connected upstream). Sockets stay open and
    /// bytes sent to the proxy are read and dropped; end of stream is not passed on either.
    /// A blackholed connection stays silent until it is closed (by [`cut_all`](Self::cut_all),
    /// a restart or dropping the proxy), like a dead NAT entry: turning the fault off only
    /// affects connections accepted afterwards.
    pub fn blackhole(&self, on: bool) {
        lock(&self.shared.faults).blackhole = on;
        if on {
            for (conn, _) in lock(&self.shared.conns).values() {
                conn.blackholed.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Delays every chunk read from either side by `d` before it is written to the other
    /// (order is kept; `Duration::ZERO` turns it off). Applies to chunks read from now on.
    pub fn latency(&self, d: Duration) {
        lock(&self.shared.faults).latency = d;
    }

    /// With `on`, every new connection is accepted then closed at once with a reset
    /// (`SO_LINGER` 0), as a broker whose port is closed; the client sees the reset from
    /// `connect` or from its first read or write. Open connections are not affected.
    pub fn refuse(&self, on: bool) {
        lock(&self.shared.faults).refuse = on;
    }

    /// Closes every open connection now (both sockets); each counts as a cut.
    pub fn cut_all(&self) {
        for (conn, _) in lock(&self.shared.conns).values() {
            conn.close(true);
        }
    }

    /// Simulates a broker restart: refuses new connections, closes every open one, waits
    /// `down_for`, then accepts again (refusal is off afterwards, even if it was on before).
    pub async fn restart(&self, down_for: Duration) {
        self.refuse(true);
        self.cut_all();
        tokio::time::sleep(down_for).await;
        self.refuse(false);
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        let open = lock(&self.shared.conns).len();
        ProxyStats {
            open,
            ..*lock(&self.shared.stats)
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        for (_, (_, task)) in lock(&self.shared.conns).drain() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!("fault proxy: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let conn = Conn::default();
        {
            let mut f = lock(&shared.faults);
            if f.refuse {
                drop(f);
                lock(&shared.stats).refused += 1;
                if let Err(e) = client.set_zero_linger() {
                    tracing::debug!("fault proxy: SO_LINGER 0 failed: {e}");
                }
                continue;
            }
            conn.blackholed.store(f.blackhole, Ordering::Relaxed);
            if let Some((dir, range)) = f.cut.clone() {
                let last = range.end.saturating_sub(1).max(range.start);
                lock(&conn.budget).limit = Some((dir, f.rng.gen_range(range.start..=last)));
            }
        }
        lock(&shared.stats).accepted += 1;
        let conn = Arc::new(conn);
        let id = next_id;
        next_id += 1;
        // Registered under the lock so that the task's own removal comes after the insert.
        let mut conns = lock(&shared.conns);
        let task = tokio::spawn(run_conn(id, client, conn.clone(), shared.clone()));
        conns.insert(id, (conn, task.abort_handle()));
    }
}

/// Proxies one connection until both directions end or it is killed; dropping the sockets
/// closes them.
async fn run_conn(id: u64, client: TcpStream, conn: Arc<Conn>, shared: Arc<Shared>) {
    let work = async {
        let upstream = match TcpStream::connect(shared.upstream).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("fault proxy: cannot connect to {}: {e}", shared.upstream);
                return;
            }
        };
        if let Err(e) = client.set_nodelay(true).and(upstream.set_nodelay(true)) {
            tracing::debug!("fault proxy: TCP_NODELAY failed: {e}");
        }
        let (client_r, client_w) = client.into_split();
        let (up_r, up_w) = upstream.into_split();
        let (up_tx, up_rx) = mpsc::channel(64);
        let (down_tx, down_rx) = mpsc::channel(64);
        tokio::join!(
            read_pump(client_r, up_tx, &conn, &shared),
            write_pump(up_w, up_rx, &conn, &shared, Direction::Upstream),
            read_pump(up_r, down_tx, &conn, &shared),
            write_pump(client_w, down_rx, &conn, &shared, Direction::Downstream),
        );
    };
    tokio::select! {
        biased;
        () = conn.kill.notified() => {
            if conn.faulted.load(Ordering::Relaxed) {
                lock(&shared.stats).cuts += 1;
            }
        }
        () = work => {}
    }
    lock(&shared.conns).remove(&id);
}

/// Reads chunks from one side and hands them, stamped with their deadline, to the writer.
async fn read_pump(mut r: OwnedReadHalf, tx: mpsc::Sender<Chunk>, conn: &Conn, shared: &Shared) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let chunk = match r.read(&mut buf).await {
            Ok(0) => Chunk::Eof,
            Ok(n) => {
                let latency = lock(&shared.faults).latency;
                Chunk::Data(Instant::now() + latency, Bytes::copy_from_slice(&buf[..n]))
            }
            Err(e) => {
                // A blackhole passes on no error either: the writer keeps its socket open.
                if !conn.blackholed.load(Ordering::Relaxed) {
                    tracing::debug!("fault proxy: read failed, closing the connection: {e}");
                    conn.close(false);
                }
                return;
            }
        };
        let eof = matches!(chunk, Chunk::Eof);
        if tx.send(chunk).await.is_err() || eof {
            return;
        }
    }
}

/// Writes the chunks of one direction to the other side, applying the faults.
async fn write_pump(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Chunk>,
    conn: &Conn,
    shared: &Shared,
    dir: Direction,
) {
    while let Some(chunk) = rx.recv().await {
        let bytes = match chunk {
            Chunk::Data(deadline, bytes) => {
                tokio::time::sleep_until(deadline).await;
                bytes
            }
            Chunk::Eof if conn.blackholed.load(Ordering::Relaxed) => break,
            Chunk::Eof => {
                if let Err(e) = w.shutdown().await {
                    tracing::debug!("fault proxy: shutdown failed: {e}");
                }
                return;
            }
        };
        if conn.blackholed.load(Ordering::Relaxed) {
            continue;
        }
        let take = conn.reserve(dir, bytes.len());
        let result = w.write_all(&bytes[..take]).await;
        let cut = conn.release();
        if let Err(e) = result {
            tracing::debug!("fault proxy: write failed, closing the connection: {e}");
            conn.close(false);
            return;
        }
        let mut stats = lock(&shared.stats);
        match dir {
            Direction::Upstream => stats.bytes_upstream += take as u64,
            _ => stats.bytes_downstream += take as u64,
        }
        drop(stats);
        if cut {
            conn.close(true);
            return;
        }
    }
    if conn.blackholed.load(Ordering::Relaxed) {
        // Dropping the write half would send end of stream: no end of stream passes a
        // blackhole, so hold the socket open until the connection is closed.
        std::future::pending::<()>().await;
    }
}

impl Conn {
    /// Asks the connection's task to close both sockets; `fault` counts it as a cut.
    fn close(&self, fault: bool) {
        if fault {
            self.faulted.store(true, Ordering::Relaxed);
        }
        self.kill.notify_one();
    }

    /// How many of `len` bytes may be written in `dir` under the budget; counts them as sent
    /// and as in flight until [`release`](Self::release).
    fn reserve(&self, dir: Direction, len: usize) -> usize {
        let mut b = lock(&self.budget);
        b.in_flight += 1;
        let mut take = len as u64;
        if b.cut_pending {
            take = 0;
        } else if let Some((limit_dir, n)) = b.limit {
            let used = match limit_dir {
                Direction::Upstream => b.up,
                Direction::Downstream => b.down,
                Direction::Either => b.up + b.down,
            };
            if limit_dir == dir || limit_dir == Direction::Either {
                take = take.min(n.saturating_sub(used));
                b.cut_pending = used + take >= n;
            }
        }
        if dir == Direction::Upstream {
            b.up += take;
        } else {
            b.down += take;
        }
        take as usize
    }

    /// Ends a write begun by [`reserve`](Self::reserve); true when the connection must be cut
    /// now (the budget is spent and no other write is in flight).
    fn release(&self) -> bool {
        let mut b = lock(&self.budget);
        b.in_flight -= 1;
        b.cut_pending && b.in_flight == 0
    }
}
