//! The benchmark's peer: bench/anchors/go-producer, the tutorial's producer as a competent Go
//! engineer writes it (gqlgen, one confluent-kafka-go producer, `acks=all`, each answer after
//! its delivery reports), built by `scripts/stack.sh ensure-go-anchor` and run as a child
//! process at one `linger.ms`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::procs::wait_ready;

pub struct GoPeer {
    child: Child,
    pub linger_ms: u32,
    pub base: String,
}

impl GoPeer {
    /// Builds the peer if needed and starts it on a free port, producing to `topic` (created
    /// with `partitions` if missing) of `brokers`.
    pub async fn start(
        brokers: &str,
        topic: &str,
        partitions: i32,
        linger_ms: u32,
    ) -> Result<Self> {
        let binary = testkit::stack(&["ensure-go-anchor"]).await?;
        let port = testkit::free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let child = Command::new(&binary)
            .args(["-brokers", brokers, "-topic", topic])
            .args(["-partitions", &partitions.to_string()])
            .args(["-listen", &format!("127.0.0.1:{port}")])
            .args(["-linger-ms", &linger_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let peer = GoPeer {
            child,
            linger_ms,
            base,
        };
        wait_ready(&format!("{}/healthz", peer.base), Duration::from_secs(30)).await?;
        Ok(peer)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GoPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
