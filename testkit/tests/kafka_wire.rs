//! What the patched rskafka (third_party/rskafka/PATCHES.md) puts on the wire: every
//! connection to a broker has TCP_NODELAY set, and a request leaves as one write, so it is
//! never held back behind the ACK of its own 4-byte length. Both are read from the kernel,
//! not timed: unpatched rskafka 0.6.0 fails each test every time.

use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;

/// The TCP sockets of this process whose peer listens on `port`, with their TCP_NODELAY flag.
fn sockets_to(port: u16) -> Result<Vec<(RawFd, bool)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").context("listing /proc/self/fd")? {
        let Ok(fd) = entry?.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for the two calls below; the sockets it may
        // name belong to clients kept alive by the calling test until it returns.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&borrowed);
        let Some(peer) = socket.peer_addr().ok().and_then(|a| a.as_socket()) else {
            continue;
        };
        if peer.port() == port {
            found.push((fd, socket.tcp_nodelay()?));
        }
    }
    Ok(found)
}

/// How many segments carrying data the kernel sent on this socket (`tcpi_data_segs_out`).
fn data_segments_sent(fd: RawFd) -> Result<u32> {
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of the size given; `fd` is an open socket.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    anyhow::ensure!(rc == 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    Ok(info.tcpi_data_segs_out)
}

/// Both tests read every broker socket of this process: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The port of the first broker the harness started.
fn broker_port() -> Result<u16> {
    testkit::brokers()
        .split(',')
        .next()
        .and_then(|b| b.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .context("PAGEVIEWS_TEST_BROKERS names no port")
}

/// A client made the way every binary makes one (event::kafka::connect) and a partition
/// client (a connection of its own to the leader) of a new one-partition topic.
async fn connected() -> Result<(rskafka::client::Client, String, Arc<PartitionClient>)> {
    let client = testkit::kafka_client(&testkit::brokers()).await?;
    let topic = format!("{}wire", testkit::unique_prefix());
    testkit::create_topic(&client, &topic, 1).await?;
    let partition = testkit::partition_client(&client, &topic, 0).await?;
    Ok((client, topic, partition))
}

async fn produce(partition: &PartitionClient, value_bytes: usize) -> Result<()> {
    let record = Record {
        key: None,
        value: Some(vec![b'x'; value_bytes]),
        headers: Default::default(),
        timestamp: chrono::Utc::now(),
    };
    tokio::time::timeout(
        Duration::from_secs(20),
        partition.produce(vec![record], Compression::NoCompression),
    )
    .await
    .context("producing: no answer within 20 s")??;
    Ok(())
}

#[tokio::test]
async fn every_connection_to_the_broker_has_tcp_nodelay_set() -> Result<()> {
    let _alone = ONE_AT_A_TIME.lock().await;
    let port = broker_port()?;
    let (client, topic, partition) = connected().await?;
    produce(&partition, 100).await?;
    tokio::time::timeout(
        Duration::from_secs(20),
        partition.fetch_records(0, 1..1_000_000, 100),
    )
    .await
    .context("fetching: no answer within 20 s")??;

    let sockets = sockets_to(port)?;
    assert!(
        sockets.len() >= 2,
        "expected the bootstrap and the partition leader's connections to port {port}, found {sockets:?}"
    );
    let without: Vec<_> = sockets.iter().filter(|(_, nodelay)| !nodelay).collect();
    assert!(
        without.is_empty(),
        "connections to the broker without TCP_NODELAY (fd, nodelay): {without:?}"
    );
    testkit::delete_topic(&client, &topic).await?;
    Ok(())
}

#[tokio::test]
async fn a_produce_request_larger_than_the_write_buffer_leaves_as_one_segment() -> Result<()> {
    // rskafka writes through an 8 KiB buffer: a smaller request was one write already, a
    // larger one went out as its 4-byte length and then the body, each a segment of its own.
    // On loopback (MSS about 64 KiB) a 20 KiB request written at once is one segment.
    let _alone = ONE_AT_A_TIME.lock().await;
    let port = broker_port()?;
    let (client, topic, partition) = connected().await?;
    produce(&partition, 100).await?;
    let sent = |sockets: &[(RawFd, bool)]| -> Result<u32> {
        sockets.iter().map(|(fd, _)| data_segments_sent(*fd)).sum()
    };
    let sockets = sockets_to(port)?;
    let before = sent(&sockets)?;
    produce(&partition, 20 * 1024).await?;
    let segments = sent(&sockets)? - before;
    assert_eq!(
        segments, 1,
        "one 20 KiB produce request left in {segments} segments: its length was written apart"
    );
    testkit::delete_topic(&client, &topic).await?;
    Ok(())
}
