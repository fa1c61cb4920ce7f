//! Process helpers: stopping a child, free ports, plain HTTP GETs, and a process's memory
//! (RSS and peak RSS from `/proc/<pid>/status`) and CPU time (the scheduler's nanosecond
//! counters).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Sends SIGTERM (a graceful stop), waits up to 10 s, then kills.
pub fn terminate(child: &mut Child) {
    // The child is ours and not yet reaped, so its pid cannot have been reused.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// [`terminate`] for a child not yet reaped: what the benchmark's process handles do when
/// dropped, so a phase that fails half-way never leaves a process running into the next run.
pub fn terminate_if_running(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        terminate(child);
    }
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `GET path` over plain HTTP/1.0; the body if the status is 200.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// Resident and peak resident memory of a process, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the peak RSS (VmHWM) of a process to its current RSS (Linux ≥ 4.0).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// CPU time of all threads of a process, in nanoseconds (`/proc/<pid>/task/*/schedstat`).
/// Threads that exited are not counted, so callers compare two readings of a process whose
/// runtime keeps its worker threads (tokio does).
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU used by named processes between [`CpuMeter::start`] and [`CpuMeter::per_job_ms`]:
/// where a phase's CPU went (the apiserver, etcd, the controller, the benchmark itself).
pub struct CpuMeter {
    processes: Vec<(String, u32, u64)>,
}

impl CpuMeter {
    pub fn start(processes: &[(&str, u32)]) -> CpuMeter {
        CpuMeter {
            processes: processes
                .iter()
                .map(|(name, pid)| (name.to_string(), *pid, cpu_ns(*pid)))
                .collect(),
        }
    }

    /// Milliseconds of CPU per job since the start, by process.
    pub fn per_job_ms(&self, jobs: usize) -> std::collections::BTreeMap<String, f64> {
        self.processes
            .iter()
            .map(|(name, pid, start)| {
                let used = cpu_ns(*pid).saturating_sub(*start) as f64 / 1e6;
                (name.clone(), used / jobs.max(1) as f64)
            })
            .collect()
    }
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
