//! The fault proxy between a raw TCP client and an echo server, a byte sink, or the mock broker.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafkawire_protocol::frame::{FrameDecoder, decode_response, encode_request};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafkawire_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafkawire_testkit::mock::MockCluster;
use kafkawire_testkit::proxy::{Direction, FaultProxy, ProxyStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(1);

/// A server echoing every byte back.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A server that reads each connection to its end and reports what it got and whether the
/// end was a clean end of stream (not a reset).
async fn sink_server() -> (SocketAddr, mpsc::UnboundedReceiver<(Vec<u8>, bool)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let clean = s.read_to_end(&mut got).await.is_ok();
                let _ = tx.send((got, clean));
            });
        }
    });
    (addr, rx)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.addr()).await.unwrap()
}

/// Sends `msg` and expects it echoed back within [`WAIT`].
async fn echo(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    timeout(WAIT, s.read_exact(&mut back))
        .await
        .expect("no echo in time")
        .unwrap();
    assert_eq!(back, msg);
}

/// Reads until the stream ends (end of stream or reset, both mean closed); the bytes read.
async fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    timeout(WAIT, async {
        while let Ok(n @ 1..) = s.read(&mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("connection not closed in time");
    got
}

/// Connects and expects the proxy to close the connection at once (a reset can already fail
/// the connect).
async fn expect_refused(proxy: &FaultProxy) {
    if let Ok(mut s) = TcpStream::connect(proxy.addr()).await {
        let _ = s.write_all(b"x").await;
        assert!(read_until_closed(&mut s).await.is_empty());
    }
}

/// True if nothing at all (no byte, no end of stream, no error) arrives for `d`.
async fn silent_for(s: &mut TcpStream, d: Duration) -> bool {
    let mut buf = [0u8; 64];
    timeout(d, s.read(&mut buf)).await.is_err()
}

/// Polls the proxy's stats until `check` holds, for up to [`WAIT`].
async fn stats_until(proxy: &FaultProxy, check: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
    let start = Instant::now();
    loop {
        let stats = proxy.stats();
        if check(&stats) || start.elapsed() > WAIT {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn bytes_pass_through_unchanged() {
    let proxy = FaultProxy::start(echo_server().await, 1).await.unwrap();
    assert!(proxy.addr().ip().is_loopback());
    assert_eq!(proxy.seed(), 1);
    let data = pattern(200_000);
    let (mut r, mut w) = connect(&proxy).await.into_split();
    let sent = data.clone();
    // The writer hands its half back: dropping it would end the connection.
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w
    });
    let mut back = vec![0; data.len()];
    timeout(WAIT, r.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    let _w = writer.await.unwrap();
    assert!(back == data, "echoed bytes differ");
    let stats = stats_until(&proxy, |s| s.bytes_downstream == 200_000).await;
    assert_eq!((stats.accepted, stats.open, stats.cuts), (1, 1, 0));
    assert_eq!(
        (stats.bytes_upstream, stats.bytes_downstream),
        (200_000, 200_000)
    );
}

#[tokio::test]
async fn cut_upstream_forwards_exactly_n_bytes_then_closes_both_sides() {
    let (sink, mut received) = sink_server().await;
    let proxy = FaultProxy::start(sink, 2).await.unwrap();
    proxy.cut_after(Direction::Upstream, Some(100..101));
    let mut client = connect(&proxy).await;
    client.write_all(&pattern(250)).await.unwrap();
    let (got, clean_eof) = timeout(WAIT, received.recv()).await.unwrap().unwrap();
    assert_eq!(
        got,
        pattern(100),
        "exactly the first 100 bytes reach upstream"
    );
    assert!(clean_eof, "upstream sees end of stream");
    assert!(read_until_closed(&mut client).await.is_empty());
    let stats = stats_until(&proxy, |s| s.open == 0).await;
    assert_eq!((stats.cuts, stats.bytes_upstream, stats.open), (1, 100, 0));
}

#[tokio::test]
async fn cut_downstream_and_either_split_a_chunk_at_the_cut_point() {
    let proxy = FaultProxy::start(echo_server().await, 3).await.unwrap();
    proxy.cut_after(Direction::Downstream, Some(10..11));
    let mut client = connect(&proxy).await;
    client.write_all(&pattern(50)).await.unwrap();
    assert_eq!(read_until_closed(&mut client).await, pattern(10));

    // Either: 20 bytes up, then only 10 of the 20 echoed bytes fit in the budget of 30.
    proxy.cut_after(Direction::Either, Some(30..31));
    let mut client = connect(&proxy).await;
    client.write_all(&pattern(20)).await.unwrap();
    assert_eq!(read_until_closed(&mut client).await, pattern(10));
    let stats = stats_until(&proxy, |s| s.open == 0).await;
    assert_eq!(stats.cuts, 2);
    assert_eq!((stats.bytes_upstream, stats.bytes_downstream), (70, 20));

    // Off again: new connections are not cut.
    proxy.cut_after(Direction::Either, None);
    echo(&mut connect(&proxy).await, &pattern(100)).await;
}

/// The cut points drawn by connections made one after another through a proxy with `seed`.
async fn cut_points(seed: u64) -> Vec<usize> {
    let (sink, mut received) = sink_server().await;
    let proxy = FaultProxy::start(sink, seed).await.unwrap();
    proxy.cut_after(Direction::Upstream, Some(1..5000));
    let mut points = Vec::new();
    for _ in 0..5 {
        let mut client = connect(&proxy).await;
        let _ = client.write_all(&pattern(6000)).await; // may fail once the proxy cuts
        let (got, _) = timeout(WAIT, received.recv()).await.unwrap().unwrap();
        assert_eq!(got, pattern(got.len()));
        points.push(got.len());
    }
    points
}

#[tokio::test]
async fn same_seed_gives_same_cut_points() {
    let a = cut_points(42).await;
    assert!(a.iter().all(|&n| (1..5000).contains(&n)), "{a:?}");
    assert_eq!(a, cut_points(42).await);
    assert_ne!(a, cut_points(43).await);
}

#[tokio::test]
async fn blackhole_keeps_sockets_open_and_silent() {
    let proxy = FaultProxy::start(echo_server().await, 4).await.unwrap();
    let mut old = connect(&proxy).await;
    echo(&mut old, b"hello").await;
    proxy.blackhole(true);
    old.write_all(b"anyone?").await.unwrap();
    assert!(silent_for(&mut old, Duration::from_millis(300)).await);
    // New connections are accepted but just as silent.
    let mut new = connect(&proxy).await;
    new.write_all(b"anyone?").await.unwrap();
    assert!(silent_for(&mut new, Duration::from_millis(300)).await);
    // Off: new connections work; the old ones stay dead until closed.
    proxy.blackhole(false);
    let mut after = connect(&proxy).await;
    echo(&mut after, b"back").await;
    old.write_all(b"still there?").await.unwrap();
    assert!(silent_for(&mut old, Duration::from_millis(100)).await);
    assert_eq!(proxy.stats().open, 3);
    proxy.cut_all();
    read_until_closed(&mut old).await;
    read_until_closed(&mut new).await;
}

#[tokio::test]
async fn refuse_closes_new_connections_at_once() {
    let proxy = FaultProxy::start(echo_server().await, 5).await.unwrap();
    let mut open = connect(&proxy).await;
    // Faults apply when the proxy accepts: wait until it has accepted `open`.
    stats_until(&proxy, |s| s.accepted == 1).await;
    proxy.refuse(true);
    expect_refused(&proxy).await;
    echo(&mut open, b"open ones are not affected").await;
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.refused), (1, 1));
    proxy.refuse(false);
    echo(&mut connect(&proxy).await, b"accepted again").await;
}

#[tokio::test]
async fn restart_cuts_refuses_for_the_period_then_accepts() {
    let proxy = FaultProxy::start(echo_server().await, 6).await.unwrap();
    let mut before = connect(&proxy).await;
    echo(&mut before, b"up").await;
    let start = Instant::now();
    let ((), ()) = tokio::join!(proxy.restart(Duration::from_millis(400)), async {
        read_until_closed(&mut before).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        expect_refused(&proxy).await;
    });
    assert!(start.elapsed() >= Duration::from_millis(400));
    echo(&mut connect(&proxy).await, b"up again").await;
    let stats = proxy.stats();
    assert_eq!((stats.cuts, stats.refused, stats.accepted), (1, 1, 2));
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let proxy = FaultProxy::start(echo_server().await, 7).await.unwrap();
    let mut client = connect(&proxy).await;
    proxy.latency(Duration::from_millis(150));
    let start = Instant::now();
    echo(&mut client, b"slow").await;
    let rtt = start.elapsed();
    assert!(rtt >= Duration::from_millis(300), "round trip {rtt:?}");
    proxy.latency(Duration::ZERO);
    let start = Instant::now();
    echo(&mut client, b"fast").await;
    assert!(start.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn cut_all_and_drop_close_every_connection() {
    let proxy = FaultProxy::start(echo_server().await, 8).await.unwrap();
    let (mut a, mut b) = (connect(&proxy).await, connect(&proxy).await);
    echo(&mut a, b"a").await;
    echo(&mut b, b"b").await;
    proxy.cut_all();
    read_until_closed(&mut a).await;
    read_until_closed(&mut b).await;
    let stats = stats_until(&proxy, |s| s.open == 0).await;
    assert_eq!((stats.cuts, stats.open), (2, 0));

    let mut c = connect(&proxy).await;
    echo(&mut c, b"c").await;
    let addr = proxy.addr();
    drop(proxy);
    read_until_closed(&mut c).await;
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn mock_broker_answers_through_the_proxy() {
    let cluster = MockCluster::start(1).await;
    let proxy = FaultProxy::start(cluster.bootstrap(), 9).await.unwrap();
    let mut s = connect(&proxy).await;
    let mut buf = BytesMut::new();
    encode_request(
        &mut buf,
        7,
        Some("proxy-test"),
        0,
        &ApiVersionsRequest::default(),
    )
    .unwrap();
    s.write_all(&buf).await.unwrap();
    let mut decoder = FrameDecoder::new(1 << 20);
    let frame = timeout(WAIT, async {
        loop {
            if let Some(f) = decoder.next_frame().unwrap() {
                return f;
            }
            assert_ne!(s.read_buf(decoder.buffer_mut()).await.unwrap(), 0);
        }
    })
    .await
    .unwrap();
    let (header, body) =
        decode_response::<ApiVersionsResponse>(frame, ApiKey::ApiVersions, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    assert_eq!(body.error_code, 0);
    assert!(!body.api_keys.is_empty());
}
