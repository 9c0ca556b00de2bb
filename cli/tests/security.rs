//! The security settings of the `kafkawire` binary end to end: the `--security-protocol`,
//! `--sasl-*` and `--ssl-*` flags, `KAFKAWIRE_SASL_PASSWORD` and `--command-config FILE`,
//! against the scripted mock broker (SASL), behind a TLS-terminating proxy for TLS.
//!
//! Every run checks that the password (and key material) never reaches the output.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use kafkawire_testkit::mock::{MockCluster, SaslServerConfig};
use kafkawire_testkit::tls_proxy::{TestPki, TlsProxy, TlsProxyConfig};
use tokio::runtime::Runtime;

/// The password every test uses; no output may contain it.
const PASSWORD: &str = "Pa55-w0rd-never-printed";

/// How long one invocation may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTH_MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kafkawire-cli-security-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write a temporary file");
        path.to_str().expect("UTF-8 temp path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished `kafkawire` invocation printed.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> Run {
        assert!(
            self.status.success(),
            "{what}: kafkawire failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    fn failed(self, what: &str) -> Run {
        assert!(
            !self.status.success(),
            "{what}: kafkawire succeeded:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs the built binary with `args` and `env` (and no inherited `KAFKAWIRE_*` settings),
/// waits for it, and checks that nothing it printed holds [`PASSWORD`] or a private key.
fn kafkawire(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafkawire"));
    cmd.args(args)
        .env_remove("KAFKAWIRE_SASL_PASSWORD")
        .env_remove("KAFKAWIRE_BOOTSTRAP")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start kafkawire");
    let reader = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("check kafkawire") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kafkawire {args:?} did not finish within {COMMAND_TIMEOUT:?} and was killed");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains(PASSWORD),
            "the password was printed: {run:?}"
        );
        assert!(
            !text.contains("PRIVATE KEY"),
            "key material was printed: {run:?}"
        );
    }
    eprintln!("kafkawire {args:?}:\n{}", run.stderr);
    run
}

/// A loopback address where nothing listens.
fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    addr.to_string()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A one-broker mock cluster requiring SASL, with user `alice` (password [`PASSWORD`]).
fn sasl_cluster(rt: &Runtime) -> MockCluster {
    let cluster = rt.block_on(MockCluster::start(1));
    cluster.enable_sasl(SaslServerConfig::default().user("alice", PASSWORD));
    cluster
}

#[test]
fn unknown_keys_fail_and_are_named() {
    let dir = TempDir::new();
    let config = dir.file(
        "client.properties",
        &format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=alice\nsasl.password={PASSWORD}\nssl.ca.locaton=/etc/ca.pem\nsasl.kerberos.service.name=kafka\n"
        ),
    );
    let run = kafkawire(
        &[
            "--bootstrap",
            &dead_address(),
            "--command-config",
            &config,
            "metadata",
        ],
        &[],
    )
    .failed("unknown keys");
    assert_eq!(run.status.code(), Some(1));
    assert!(
        run.stderr.contains(&format!(
            "kafkawire: invalid configuration: --command-config {config}: unknown or unsupported keys: sasl.kerberos.service.name, ssl.ca.locaton"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn configuration_errors_do_not_show_the_password() {
    let dir = TempDir::new();
    for (name, text) in [
        (
            "unclosed-quote",
            format!(
                "security.protocol=SASL_PLAINTEXT\nsasl.jaas.config={PLAIN_MODULE} required username=\"alice\" password=\"{PASSWORD};\n"
            ),
        ),
        (
            "lone-word",
            format!("security.protocol=SASL_PLAINTEXT\n{PASSWORD}\n"),
        ),
        (
            "no-mechanism",
            format!(
                "security.protocol=SASL_PLAINTEXT\nsasl.username=alice\nsasl.password={PASSWORD}\n"
            ),
        ),
        (
            "encrypted-key",
            format!(
                "security.protocol=SSL\nssl.certificate.location=/c.pem\nssl.key.location=/k.pem\nssl.key.password={PASSWORD}\n"
            ),
        ),
        (
            "jks",
            format!(
                "security.protocol=SSL\nssl.truststore.location=/t.jks\nssl.truststore.password={PASSWORD}\n"
            ),
        ),
    ] {
        let config = dir.file(name, &text);
        let run = kafkawire(
            &[
                "--bootstrap",
                &dead_address(),
                "--command-config",
                &config,
                "metadata",
            ],
            &[],
        )
        .failed(name);
        assert!(
            run.stderr.starts_with("kafkawire: invalid configuration:"),
            "{name}: {}",
            run.stderr
        );
    }
}

#[test]
fn an_unreachable_broker_does_not_show_the_password() {
    let dir = TempDir::new();
    let dead = dead_address();
    let librdkafka = dir.file(
        "librdkafka.properties",
        &format!(
            "bootstrap.servers={dead}\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanisms=PLAIN\nsasl.username=alice\nsasl.password={PASSWORD}\nrequest.timeout.ms=3000\n"
        ),
    );
    let run = kafkawire(&["--command-config", &librdkafka, "metadata"], &[]).failed("librdkafka");
    assert!(
        run.stderr.contains(&dead),
        "bootstrap.servers is used: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Is a Kafka broker running there?"),
        "{}",
        run.stderr
    );

    let java = dir.file(
        "java.properties",
        &format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config={SCRAM_MODULE} required username=\"alice\" password=\"{PASSWORD}\";\n"
        ),
    );
    kafkawire(
        &[
            "--bootstrap",
            &dead,
            "--request-timeout-ms",
            "3000",
            "--command-config",
            &java,
            "metadata",
        ],
        &[],
    )
    .failed("java");

    let password_file = dir.file("password", &format!("{PASSWORD}\n"));
    kafkawire(
        &[
            "--bootstrap",
            &dead,
            "--request-timeout-ms",
            "3000",
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-mechanism",
            "PLAIN",
            "--sasl-username",
            "alice",
            "--sasl-password-file",
            &password_file,
            "metadata",
        ],
        &[],
    )
    .failed("password file");

    kafkawire(
        &[
            "--bootstrap",
            &dead,
            "--request-timeout-ms",
            "3000",
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-mechanism",
            "SCRAM-SHA-256",
            "--sasl-username",
            "alice",
            "metadata",
        ],
        &[("KAFKAWIRE_SASL_PASSWORD", PASSWORD)],
    )
    .failed("environment");
}

#[test]
fn there_is_no_password_flag() {
    let run = kafkawire(&["--sasl-password", PASSWORD, "metadata"], &[]).failed("flag");
    assert_eq!(run.status.code(), Some(2), "a usage error");
    let help = kafkawire(&["--help"], &[("KAFKAWIRE_SASL_PASSWORD", PASSWORD)]).ok("help");
    for flag in [
        "--security-protocol",
        "--sasl-mechanism",
        "--sasl-username",
        "--sasl-password-file",
        "--ssl-ca",
        "--ssl-cert",
        "--ssl-key",
        "--ssl-no-verify-hostname",
        "--command-config",
        "KAFKAWIRE_SASL_PASSWORD",
        "DANGEROUS",
    ] {
        assert!(
            help.stdout.contains(flag),
            "{flag} in --help:\n{}",
            help.stdout
        );
    }
    assert!(!help.stdout.contains("--sasl-password "), "{}", help.stdout);
}

#[test]
fn sasl_plain_from_flags_env_and_password_file() {
    let rt = runtime();
    let cluster = sasl_cluster(&rt);
    let dir = TempDir::new();
    let bootstrap = cluster.bootstrap();
    let flags = [
        "--bootstrap",
        bootstrap.as_str(),
        "--request-timeout-ms",
        "5000",
        "--security-protocol",
        "SASL_PLAINTEXT",
        "--sasl-mechanism",
        "PLAIN",
        "--sasl-username",
        "alice",
    ];
    let run = kafkawire(
        &[&flags[..], &["metadata"]].concat(),
        &[("KAFKAWIRE_SASL_PASSWORD", PASSWORD)],
    )
    .ok("password from the environment");
    assert!(run.stdout.contains("broker 0"), "{}", run.stdout);
    assert!(cluster.authentications() >= 1);

    let password_file = dir.file("password", &format!("{PASSWORD}\r\n"));
    kafkawire(
        &[
            &flags[..],
            &["--sasl-password-file", &password_file, "metadata"],
        ]
        .concat(),
        &[("KAFKAWIRE_SASL_PASSWORD", "wrong-env-password")],
    )
    .ok("the password file overrides the environment");

    let run = kafkawire(
        &[&flags[..], &["metadata"]].concat(),
        &[("KAFKAWIRE_SASL_PASSWORD", "wr0ng-Pa55")],
    )
    .failed("wrong password");
    assert!(!run.stderr.contains("wr0ng-Pa55"), "{}", run.stderr);
    assert!(
        run.stderr.contains("SASL PLAIN authentication with broker"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Check the user name (--sasl-username"),
        "{}",
        run.stderr
    );

    let run = kafkawire(&[&flags[..], &["metadata"]].concat(), &[]).failed("no password");
    assert!(
        run.stderr
            .contains("SASL PLAIN needs a password: set KAFKAWIRE_SASL_PASSWORD"),
        "{}",
        run.stderr
    );
}

#[test]
fn sasl_from_a_command_config_file() {
    let rt = runtime();
    let cluster = sasl_cluster(&rt);
    let dir = TempDir::new();
    let bootstrap = cluster.bootstrap();

    // SCRAM from a JAAS line, the mechanism from the flag.
    let scram = dir.file(
        "scram.properties",
        &format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.jaas.config={SCRAM_MODULE} required \\\n    username='alice' \\\n    password='{PASSWORD}';\n"
        ),
    );
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        kafkawire(
            &[
                "--bootstrap",
                &bootstrap,
                "--sasl-mechanism",
                mechanism,
                "--command-config",
                &scram,
                "metadata",
            ],
            &[],
        )
        .ok(mechanism);
    }

    // OAUTHBEARER with unsecured tokens.
    let oauth = dir.file(
        "oauth.properties",
        &format!(
            "bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\nsasl.jaas.config={OAUTH_MODULE} required unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginExtension_traceId=\"t1\";\n"
        ),
    );
    kafkawire(&["--command-config", &oauth, "metadata"], &[]).ok("oauthbearer");
    assert!(
        cluster
            .oauth_extensions()
            .iter()
            .any(|e| e.get("traceId").map(String::as_str) == Some("t1")),
        "{:?}",
        cluster.oauth_extensions()
    );

    // A wrong user name from the file: an authentication error with its hint.
    let wrong = dir.file(
        "wrong.properties",
        &format!(
            "bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=mallory\nsasl.password={PASSWORD}\n"
        ),
    );
    let run = kafkawire(&["--command-config", &wrong, "metadata"], &[]).failed("wrong user");
    assert!(
        run.stderr.contains("SASL SCRAM-SHA-256 authentication"),
        "{}",
        run.stderr
    );
}

/// A one-broker mock cluster behind a TLS proxy that advertises the proxy's address.
struct Behind {
    _proxy: TlsProxy,
    cluster: MockCluster,
    addr: String,
}

fn behind_tls(rt: &Runtime, config: TlsProxyConfig) -> Behind {
    rt.block_on(async {
        let cluster = MockCluster::start(1).await;
        let proxy = TlsProxy::start(cluster.broker(0).socket_addr(), config)
            .await
            .expect("start the TLS proxy");
        let addr = proxy.addr().to_string();
        cluster.set_advertised(0, &addr);
        Behind {
            _proxy: proxy,
            cluster,
            addr,
        }
    })
}

#[test]
fn tls_with_a_ca_file_and_client_certificates() {
    let rt = runtime();
    let pki = TestPki::generate();
    let dir = TempDir::new();
    let ca = dir.file("ca.pem", &pki.ca_cert);
    let unrelated_ca = dir.file("unrelated-ca.pem", &pki.unrelated_ca_cert);
    let cert = dir.file("client.pem", &pki.client.cert_pem);
    let key = dir.file("client.key", &pki.client.key_pem);

    let b = behind_tls(&rt, TlsProxyConfig::new(&pki.server));
    let run = kafkawire(
        &[
            "--bootstrap",
            &b.addr,
            "--security-protocol",
            "SSL",
            "--ssl-ca",
            &ca,
            "metadata",
        ],
        &[],
    )
    .ok("TLS");
    assert!(
        run.stdout.contains(&format!("broker 0 {}", b.addr)),
        "{}",
        run.stdout
    );

    let run = kafkawire(
        &[
            "--bootstrap",
            &b.addr,
            "--request-timeout-ms",
            "5000",
            "--security-protocol",
            "SSL",
            "--ssl-ca",
            &unrelated_ca,
            "metadata",
        ],
        &[],
    )
    .failed("untrusted CA");
    assert!(run.stderr.contains("TLS with broker"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("On the command line, the CA file is --ssl-ca and the client certificate --ssl-cert with --ssl-key"),
        "{}",
        run.stderr
    );

    // Mutual TLS, from the flags and from a file.
    let m = behind_tls(
        &rt,
        TlsProxyConfig::new(&pki.server).require_client_cert(&pki.client_ca_cert),
    );
    let run = kafkawire(
        &[
            "--bootstrap",
            &m.addr,
            "--request-timeout-ms",
            "5000",
            "--security-protocol",
            "SSL",
            "--ssl-ca",
            &ca,
            "metadata",
        ],
        &[],
    )
    .failed("no client certificate");
    assert!(
        run.stderr.contains("requires a client certificate")
            && run.stderr.contains("--ssl-cert with --ssl-key"),
        "{}",
        run.stderr
    );
    kafkawire(
        &[
            "--bootstrap",
            &m.addr,
            "--security-protocol",
            "SSL",
            "--ssl-ca",
            &ca,
            "--ssl-cert",
            &cert,
            "--ssl-key",
            &key,
            "metadata",
        ],
        &[],
    )
    .ok("mutual TLS from flags");
    let aiven = dir.file(
        "aiven.properties",
        &format!(
            "bootstrap.servers={}\nsecurity.protocol=SSL\nssl.ca.location={ca}\nssl.certificate.location={cert}\nssl.key.location={key}\nssl.endpoint.identification.algorithm=https\n",
            m.addr
        ),
    );
    kafkawire(&["--command-config", &aiven, "metadata"], &[]).ok("mutual TLS from a file");
    drop(b.cluster);
}

#[test]
fn confluent_cloud_style_sasl_ssl_file() {
    let rt = runtime();
    let pki = TestPki::generate();
    let b = behind_tls(&rt, TlsProxyConfig::new(&pki.server));
    b.cluster
        .enable_sasl(SaslServerConfig::new(&["PLAIN"]).user("ABCDEFGHIJKLMNOP", PASSWORD));
    let dir = TempDir::new();
    let ca = dir.file("ca.pem", &pki.ca_cert);
    // What Confluent Cloud's console hands out, plus the CA (Confluent Cloud's certificates
    // chain to public roots).
    let config = dir.file(
        "client.properties",
        &format!(
            "# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers={}
security.protocol=SASL_SSL
sasl.jaas.config={PLAIN_MODULE} required username='ABCDEFGHIJKLMNOP' password='{PASSWORD}';
sasl.mechanism=PLAIN
# Required for correctness in Apache Kafka clients prior to 2.6
client.dns.lookup=use_all_dns_ips

# Best practice for higher availability in Apache Kafka clients prior to 3.0
session.timeout.ms=45000

# Best practice for Kafka producer to prevent data loss
acks=all
ssl.ca.location={ca}
",
            b.addr
        ),
    );
    let run = kafkawire(&["--command-config", &config, "metadata"], &[]).ok("confluent");
    assert!(
        run.stderr.contains(&format!(
            "kafkawire: note: {config}: ignoring settings that do not apply to this tool: acks, client.dns.lookup, session.timeout.ms."
        )),
        "{}",
        run.stderr
    );
    assert!(b.cluster.authentications() >= 1);
}

#[test]
fn no_hostname_verification_is_announced() {
    let rt = runtime();
    let pki = TestPki::generate();
    // A certificate for another name: accepted only without name verification.
    let b = behind_tls(&rt, TlsProxyConfig::new(&pki.other_name));
    let dir = TempDir::new();
    let ca = dir.file("ca.pem", &pki.ca_cert);
    let base = [
        "--bootstrap",
        &b.addr,
        "--request-timeout-ms",
        "5000",
        "--security-protocol",
        "SSL",
        "--ssl-ca",
        &ca,
    ];
    kafkawire(&[&base[..], &["metadata"]].concat(), &[]).failed("name mismatch");
    let run = kafkawire(
        &[&base[..], &["--ssl-no-verify-hostname", "metadata"]].concat(),
        &[],
    )
    .ok("no verification");
    assert!(
        run.stderr
            .contains("kafkawire: note: broker host names are not verified"),
        "{}",
        run.stderr
    );
}
