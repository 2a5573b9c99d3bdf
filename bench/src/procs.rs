//! Producer and consumer as child processes (this binary re-executed as `serve-producer` or
//! `serve-consumer`), configured through `APP__` variables like any deployment, and their
//! peak resident memory sampled from /proc.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use settings::Settings;

pub struct Component {
    pub child: Child,
    rss_peak_kb: Arc<AtomicU64>,
    sampling: Arc<AtomicBool>,
}

impl Component {
    pub fn spawn(kind: &str, s: &Settings) -> Result<Self> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        // PAGEVIEWS_BENCH_WRAP="valgrind --tool=massif" (say) runs the components under a profiler.
        let wrap = std::env::var("PAGEVIEWS_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let child = command
            .arg(format!("serve-{kind}"))
            .envs(testkit::child_env(s))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the {kind}"))?;
        let rss_peak_kb = Arc::new(AtomicU64::new(0));
        let sampling = Arc::new(AtomicBool::new(true));
        let pid = child.id();
        {
            let peak = Arc::clone(&rss_peak_kb);
            let sampling = Arc::clone(&sampling);
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    if let Some(kb) = rss_kb(pid) {
                        peak.fetch_max(kb, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
        Ok(Component {
            child,
            rss_peak_kb,
            sampling,
        })
    }

    /// Peak RSS since the last reset, in MB.
    pub fn rss_peak_mb(&self) -> f64 {
        self.rss_peak_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn reset_peak(&self) {
        self.rss_peak_kb.store(0, Ordering::Relaxed);
    }

    /// SIGTERM, then wait (a graceful stop flushes and releases partitions).
    pub async fn stop(mut self) -> Result<()> {
        self.sampling.store(false, Ordering::Relaxed);
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..300 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.child.kill()?;
        bail!("component did not stop within 30 s after SIGTERM")
    }
}

/// A run that fails half-way must not leave its components running.
impl Drop for Component {
    fn drop(&mut self) {
        self.sampling.store(false, Ordering::Relaxed);
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits for `url` to answer 200.
pub async fn wait_ready(url: &str, timeout: Duration) -> Result<()> {
    let http = reqwest::Client::new();
    testkit::poll_until(timeout, url, || {
        let http = &http;
        async move {
            match http.get(url).send().await {
                Ok(r) if r.status().is_success() => Some(()),
                _ => None,
            }
        }
    })
    .await
}

/// CPU time (user + system) a process has used so far, in seconds; its threads included.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let mut after = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
    // utime and stime are fields 14 and 15, so the 12th and 13th after the name.
    let utime: f64 = after.nth(11)?.parse().ok()?;
    let stime: f64 = after.next()?.parse().ok()?;
    // /proc reports clock ticks of USER_HZ, 100 on Linux.
    Some((utime + stime) / 100.0)
}
