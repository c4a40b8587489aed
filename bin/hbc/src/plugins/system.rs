//! The system plugins, read from /proc and statvfs (Linux): what the host is (`os_info`,
//! `filesystem_info`) and how it is doing (`cpu_monitor`, `memory_monitor`, `disk_monitor`,
//! `network_monitor`). Field names follow the original hbd (docs/PLUGINS.md). Each reader is
//! a pure parser of the file's text, so tests feed it fixtures and this machine's /proc alike.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Map, Value, json};

const MB: f64 = 1024.0 * 1024.0;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Rounded to two decimals: enough for thresholds and charts, short on the wire.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

// --- cpu ------------------------------------------------------------------------------------

/// Jiffies of one line of /proc/stat (`cpu` or `cpuN`): busy and total.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    pub user: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub steal: u64,
    pub total: u64,
}

/// The `cpu` line and each `cpuN` line of /proc/stat.
pub fn parse_stat(text: &str) -> (Option<CpuTimes>, Vec<CpuTimes>) {
    let mut all = None;
    let mut cores = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(label) = words.next() else { continue };
        if !label.starts_with("cpu") {
            continue;
        }
        let n: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
        if n.len() < 4 {
            continue;
        }
        let at = |i: usize| n.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let t = CpuTimes {
            user: at(0) + at(1),
            system: at(2) + at(5) + at(6),
            idle: at(3),
            iowait: at(4),
            steal: at(7),
            total: n.iter().take(8).sum(),
        };
        if label == "cpu" {
            all = Some(t);
        } else {
            cores.push(t);
        }
    }
    (all, cores)
}

/// Percent of time busy (not idle, not waiting for I/O) between two readings, per kind.
pub fn cpu_percent(before: &CpuTimes, after: &CpuTimes) -> Map<String, Value> {
    let total = after.total.saturating_sub(before.total).max(1) as f64;
    let pct = |a: u64, b: u64| round2(100.0 * a.saturating_sub(b) as f64 / total);
    let idle = after.idle.saturating_sub(before.idle) + after.iowait.saturating_sub(before.iowait);
    let mut m = Map::new();
    m.insert(
        "cpu_percent".into(),
        json!(round2(100.0 - 100.0 * idle as f64 / total).clamp(0.0, 100.0)),
    );
    m.insert("user_percent".into(), json!(pct(after.user, before.user)));
    m.insert(
        "system_percent".into(),
        json!(pct(after.system, before.system)),
    );
    m.insert(
        "iowait_percent".into(),
        json!(pct(after.iowait, before.iowait)),
    );
    m.insert(
        "steal_percent".into(),
        json!(pct(after.steal, before.steal)),
    );
    m
}

/// `load_1min`, `load_5min`, `load_15min`, and the process count, from /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<(f64, f64, f64, u64)> {
    let mut w = text.split_whitespace();
    let l1 = w.next()?.parse().ok()?;
    let l5 = w.next()?.parse().ok()?;
    let l15 = w.next()?.parse().ok()?;
    let procs = w.next()?.split_once('/')?.1.parse().ok()?;
    Some((l1, l5, l15, procs))
}

/// The mean of the `cpu MHz` lines of /proc/cpuinfo (absent on some architectures).
pub fn parse_mhz(cpuinfo: &str) -> Option<f64> {
    let mhz: Vec<f64> = cpuinfo
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split_once(':')?.1.trim().parse().ok())
        .collect();
    (!mhz.is_empty()).then(|| mhz.iter().sum::<f64>() / mhz.len() as f64)
}

/// `cpu_monitor`: keeps the last /proc/stat reading, so each report covers the time since
/// the one before (the first one covers a one-second sample).
#[derive(Default)]
pub struct Cpu {
    pub last: Option<(CpuTimes, Vec<CpuTimes>)>,
    pub per_core: bool,
}

impl Cpu {
    pub async fn collect(&mut self) -> Result<Value, String> {
        let reading = || -> Result<(CpuTimes, Vec<CpuTimes>), String> {
            match parse_stat(&read("/proc/stat")?) {
                (Some(all), cores) => Ok((all, cores)),
                (None, _) => Err("/proc/stat has no cpu line".into()),
            }
        };
        let before = match self.last.take() {
            Some(b) => b,
            None => {
                let first = reading()?;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                first
            }
        };
        let now = reading()?;
        let mut m = cpu_percent(&before.0, &now.0);
        if self.per_core {
            let cores: Vec<Value> = before
                .1
                .iter()
                .zip(&now.1)
                .map(|(b, a)| cpu_percent(b, a)["cpu_percent"].clone())
                .collect();
            m.insert("per_core".into(), Value::Array(cores));
        }
        self.last = Some(now.clone());
        let (l1, l5, l15, procs) =
            parse_loadavg(&read("/proc/loadavg")?).ok_or("/proc/loadavg cannot be read")?;
        m.insert("load_1min".into(), json!(l1));
        m.insert("load_5min".into(), json!(l5));
        m.insert("load_15min".into(), json!(l15));
        m.insert("process_count".into(), json!(procs));
        m.insert("cpu_count".into(), json!(now.1.len()));
        if let Some(mhz) = read("/proc/cpuinfo").ok().as_deref().and_then(parse_mhz) {
            m.insert("frequency_mhz".into(), json!(round2(mhz)));
        }
        if let Some(up) = read("/proc/uptime")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        {
            m.insert("uptime_seconds".into(), json!(up.floor()));
        }
        Ok(Value::Object(m))
    }
}

// --- memory ---------------------------------------------------------------------------------

/// /proc/meminfo in bytes by key.
pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (key, rest) = l.split_once(':')?;
            let mut w = rest.split_whitespace();
            let n: u64 = w.next()?.parse().ok()?;
            let unit = if w.next() == Some("kB") { 1024 } else { 1 };
            Some((key.to_string(), n * unit))
        })
        .collect()
}

/// The ZFS ARC's shrinkable size in bytes (what it gives back under pressure), from
/// /proc/spl/kstat/zfs/arcstats: `size` above `c_min`.
pub fn parse_arc_shrinkable(text: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == name).then_some(())?;
            w.nth(1)?.parse().ok()
        })
    };
    Some(field("size")?.saturating_sub(field("c_min")?))
}

/// `memory_monitor` from /proc/meminfo (and the ZFS ARC, counted as available, as the
/// kernel counts its own page cache).
pub fn memory(meminfo: &str, arcstats: Option<&str>) -> Result<Value, String> {
    let m = parse_meminfo(meminfo);
    let get = |k: &str| m.get(k).copied();
    let total = get("MemTotal").ok_or("/proc/meminfo has no MemTotal")?;
    let arc = arcstats.and_then(parse_arc_shrinkable).unwrap_or(0);
    let available = get("MemAvailable")
        .unwrap_or_else(|| {
            get("MemFree").unwrap_or(0) + get("Cached").unwrap_or(0) + get("Buffers").unwrap_or(0)
        })
        .saturating_add(arc)
        .min(total);
    let swap_total = get("SwapTotal").unwrap_or(0);
    let swap_used = swap_total.saturating_sub(get("SwapFree").unwrap_or(0));
    let pct = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            round2(100.0 * part as f64 / whole as f64)
        }
    };
    let mb = |b: u64| round2(b as f64 / MB);
    let mut out = json!({
        "percent": pct(total - available, total),
        "total_mb": mb(total),
        "available_mb": mb(available),
        "used_mb": mb(total - available),
        "free_mb": mb(get("MemFree").unwrap_or(0)),
        "cached_mb": mb(get("Cached").unwrap_or(0)),
        "buffers_mb": mb(get("Buffers").unwrap_or(0)),
        "swap_total_mb": mb(swap_total),
        "swap_used_mb": mb(swap_used),
        "swap_percent": pct(swap_used, swap_total),
    });
    if arcstats.is_some() {
        out["zfs_arc_mb"] = json!(mb(arc));
    }
    Ok(out)
}

// --- mounts, disks --------------------------------------------------------------------------

/// One line of /proc/self/mounts.
#[derive(Clone, Debug, PartialEq)]
pub struct Mount {
    pub device: String,
    pub path: String,
    pub fstype: String,
    pub options: String,
}

/// File systems that hold no data of their own (or of the host's disks).
const VIRTUAL: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "bpf",
    "nsfs",
    "rpc_pipefs",
    "ramfs",
    "efivarfs",
    "overlay",
    "squashfs",
    "fuse.lxcfs",
    "fuse.portal",
    "selinuxfs",
];

/// /proc/self/mounts, with the octal escapes (`\040` for a space) undone.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('\\') {
            out.push_str(&rest[..i]);
            let code = rest.get(i + 1..i + 4);
            match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
                Some(b) => {
                    out.push(char::from(b));
                    rest = &rest[i + 4..];
                }
                None => {
                    out.push('\\');
                    rest = &rest[i + 1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some(Mount {
                device: unescape(w.next()?),
                path: unescape(w.next()?),
                fstype: w.next()?.to_string(),
                options: w.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// Mounts of physical file systems (a device or a ZFS dataset), each path once.
pub fn physical(mounts: Vec<Mount>) -> Vec<Mount> {
    let mut seen = std::collections::BTreeSet::new();
    mounts
        .into_iter()
        .filter(|m| {
            !VIRTUAL.contains(&m.fstype.as_str())
                && (m.device.starts_with('/') || m.fstype == "zfs" || m.fstype == "btrfs")
        })
        .filter(|m| seen.insert(m.path.clone()))
        .collect()
}

fn statvfs_json(path: &str) -> Option<Map<String, Value>> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let frag = s.fragment_size() as f64;
    let total = s.blocks() as f64 * frag;
    let free = s.blocks_available() as f64 * frag;
    // Used as df counts it: blocks not free to anyone, over what users can have.
    let used = (s.blocks() - s.blocks_free()) as f64 * frag;
    let usable = used + free;
    let mut m = Map::new();
    let percent = if usable > 0.0 {
        round2(100.0 * used / usable)
    } else {
        0.0
    };
    m.insert("percent".into(), json!(percent));
    m.insert("total_gb".into(), json!(round2(total / GB)));
    m.insert("used_gb".into(), json!(round2(used / GB)));
    m.insert("free_gb".into(), json!(round2(free / GB)));
    m.insert("free_mb".into(), json!(round2(free / MB)));
    let files = s.files() as f64;
    if files > 0.0 {
        let used_files = files - s.files_free() as f64;
        m.insert(
            "inodes_percent".into(),
            json!(round2(100.0 * used_files / files)),
        );
    }
    Some(m)
}

/// Counters of one block device from /proc/diskstats.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiskCounters {
    pub reads: u64,
    pub writes: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub busy_ms: u64,
}

/// /proc/diskstats for whole disks and partitions (no loop, ram or zram devices).
pub fn parse_diskstats(text: &str) -> BTreeMap<String, DiskCounters> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let name = *w.get(2)?;
            if ["loop", "ram", "zram", "fd"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                return None;
            }
            let n = |i: usize| w.get(i).and_then(|x| x.parse::<u64>().ok());
            Some((
                name.to_string(),
                DiskCounters {
                    reads: n(3)?,
                    read_bytes: n(5)? * 512,
                    writes: n(7)?,
                    write_bytes: n(9)? * 512,
                    busy_ms: n(12)?,
                },
            ))
        })
        .collect()
}

/// `disk_monitor`: space per mounted physical file system, and I/O per disk with rates
/// since the last report.
#[derive(Default)]
pub struct Disk {
    last: Option<(Instant, BTreeMap<String, DiskCounters>)>,
}

impl Disk {
    pub fn collect(&mut self) -> Result<Value, String> {
        let mut partitions = Map::new();
        for m in physical(parse_mounts(&read("/proc/self/mounts")?)) {
            if let Some(mut v) = statvfs_json(&m.path) {
                v.insert("device".into(), json!(m.device));
                v.insert("fstype".into(), json!(m.fstype));
                partitions.insert(m.path, Value::Object(v));
            }
        }
        let now = Instant::now();
        let stats = read("/proc/diskstats")
            .map(|t| parse_diskstats(&t))
            .unwrap_or_default();
        let mut io = Map::new();
        for (name, c) in &stats {
            let mut d = json!({
                "reads": c.reads, "writes": c.writes,
                "read_bytes": c.read_bytes, "write_bytes": c.write_bytes,
            });
            if let Some((then, before)) = &self.last
                && let Some(b) = before.get(name)
            {
                let secs = now.duration_since(*then).as_secs_f64().max(0.001);
                let rate = |a: u64, b: u64| round2(a.saturating_sub(b) as f64 / secs);
                d["read_bytes_per_s"] = json!(rate(c.read_bytes, b.read_bytes));
                d["write_bytes_per_s"] = json!(rate(c.write_bytes, b.write_bytes));
                d["busy_percent"] = json!((rate(c.busy_ms, b.busy_ms) / 10.0).clamp(0.0, 100.0));
            }
            io.insert(name.clone(), d);
        }
        self.last = Some((now, stats));
        Ok(json!({"partitions": partitions, "io": io}))
    }
}

/// `filesystem_info`: each mounted physical file system, with its limits (`pathconf`).
pub fn filesystems() -> Result<Value, String> {
    let mut out = Map::new();
    for m in physical(parse_mounts(&read("/proc/self/mounts")?)) {
        let mut v = json!({
            "device": m.device,
            "fstype": m.fstype,
            "options": m.options,
            "read_only": m.options.split(',').any(|o| o == "ro"),
        });
        if let Ok(s) = nix::sys::statvfs::statvfs(m.path.as_str()) {
            v["total_gb"] = json!(round2(s.blocks() as f64 * s.fragment_size() as f64 / GB));
            v["block_size"] = json!(s.block_size());
        }
        // A limit of 0 is a value, not an absence (the original's bug with `if value:`).
        for (key, var) in [
            ("name_max", nix::unistd::PathconfVar::NAME_MAX),
            ("path_max", nix::unistd::PathconfVar::PATH_MAX),
        ] {
            if let Ok(Some(n)) = nix::unistd::pathconf(m.path.as_str(), var) {
                v[key] = json!(n);
            }
        }
        out.insert(m.path, v);
    }
    Ok(json!({"filesystems": out}))
}

// --- network --------------------------------------------------------------------------------

/// Counters of one interface from /proc/net/dev.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetCounters {
    pub bytes_recv: u64,
    pub packets_recv: u64,
    pub errors_in: u64,
    pub drops_in: u64,
    pub bytes_sent: u64,
    pub packets_sent: u64,
    pub errors_out: u64,
    pub drops_out: u64,
}

pub fn parse_net_dev(text: &str) -> BTreeMap<String, NetCounters> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let n: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if n.len() < 16 {
                return None;
            }
            Some((
                name.trim().to_string(),
                NetCounters {
                    bytes_recv: n[0],
                    packets_recv: n[1],
                    errors_in: n[2],
                    drops_in: n[3],
                    bytes_sent: n[8],
                    packets_sent: n[9],
                    errors_out: n[10],
                    drops_out: n[11],
                },
            ))
        })
        .collect()
}

/// TCP connections by state from /proc/net/tcp and tcp6 (the `st` column).
pub fn count_tcp_states(texts: &[String]) -> BTreeMap<&'static str, u64> {
    let mut out: BTreeMap<&'static str, u64> = BTreeMap::new();
    for text in texts {
        for line in text.lines().skip(1) {
            let state = match line.split_whitespace().nth(3) {
                Some("01") => "tcp_established",
                Some("06") => "tcp_time_wait",
                Some("08") => "tcp_close_wait",
                Some("0A") => "tcp_listen",
                Some(_) => "tcp_other",
                None => continue,
            };
            *out.entry(state).or_default() += 1;
            *out.entry("tcp_total").or_default() += 1;
        }
    }
    out
}

/// `network_monitor`: per interface counters and rates, totals of errors and drops, and
/// connection counts.
#[derive(Default)]
pub struct Network {
    last: Option<(Instant, BTreeMap<String, NetCounters>)>,
}

impl Network {
    pub fn collect(&mut self) -> Result<Value, String> {
        let now = Instant::now();
        let counters = parse_net_dev(&read("/proc/net/dev")?);
        let mut interfaces = Map::new();
        let (mut errors, mut drops) = (0u64, 0u64);
        for (name, c) in &counters {
            errors += c.errors_in + c.errors_out;
            drops += c.drops_in + c.drops_out;
            let mut v = json!({
                "bytes_sent": c.bytes_sent, "bytes_recv": c.bytes_recv,
                "packets_sent": c.packets_sent, "packets_recv": c.packets_recv,
                "errors_in": c.errors_in, "errors_out": c.errors_out,
                "drops_in": c.drops_in, "drops_out": c.drops_out,
            });
            if let Some((then, before)) = &self.last
                && let Some(b) = before.get(name)
            {
                let secs = now.duration_since(*then).as_secs_f64().max(0.001);
                let rate = |a: u64, b: u64| round2(a.saturating_sub(b) as f64 / secs);
                v["bytes_sent_per_s"] = json!(rate(c.bytes_sent, b.bytes_sent));
                v["bytes_recv_per_s"] = json!(rate(c.bytes_recv, b.bytes_recv));
            }
            interfaces.insert(name.clone(), v);
        }
        self.last = Some((now, counters));
        let tcp: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        let mut connections: Map<String, Value> = count_tcp_states(&tcp)
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let udp: usize = ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.lines().skip(1).count())
            .sum();
        connections.insert("udp".into(), json!(udp));
        Ok(json!({
            "interfaces": interfaces,
            "errors_total": errors,
            "drops_total": drops,
            "connections": connections,
        }))
    }
}

// --- os_info --------------------------------------------------------------------------------

/// `KEY=value` lines of /etc/os-release, quotes removed.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

/// `os_info`: what the host is; sent at start and when the server asks.
pub fn os_info() -> Result<Value, String> {
    let uts = nix::sys::utsname::uname().map_err(|e| format!("uname: {e}"))?;
    let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
    let release = read("/etc/os-release")
        .or_else(|_| read("/usr/lib/os-release"))
        .map(|t| parse_os_release(&t))
        .unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem = parse_meminfo(&read("/proc/meminfo")?);
    Ok(json!({
        "os": text(uts.sysname()),
        "kernel": text(uts.release()),
        "kernel_version": text(uts.version()),
        "architecture": text(uts.machine()),
        "hostname": text(uts.nodename()),
        "distribution": release.get("PRETTY_NAME").or(release.get("NAME")),
        "distribution_id": release.get("ID"),
        "distribution_version": release.get("VERSION_ID"),
        "cpu_model": model,
        "cpu_count": logical.max(cores),
        "memory_total_mb": round2(mem.get("MemTotal").copied().unwrap_or(0) as f64 / MB),
        "hbc_version": env!("CARGO_PKG_VERSION"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_is_busy_time_over_all_time() {
        let (a, cores) =
            parse_stat("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1 2\n");
        let a = a.unwrap();
        assert_eq!(cores.len(), 1);
        let (b, _) = parse_stat("cpu  200 0 100 1600 100 0 0 0 0 0\n");
        let m = cpu_percent(&a, &b.unwrap());
        // 1000 jiffies: 100 user, 50 system, 800 idle, 50 iowait -> 15 % busy.
        assert_eq!(m["cpu_percent"], 15.0);
        assert_eq!(m["user_percent"], 10.0);
        assert_eq!(m["iowait_percent"], 5.0);
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 2/612 12345\n"),
            Some((0.52, 0.58, 0.59, 612))
        );
        assert_eq!(parse_loadavg("garbage"), None);
    }

    #[test]
    fn memory_counts_the_arc_as_available() {
        let meminfo = "MemTotal: 1048576 kB\nMemFree: 100000 kB\nMemAvailable: 524288 kB\nSwapTotal: 1024 kB\nSwapFree: 512 kB\n";
        let m = memory(meminfo, None).unwrap();
        assert_eq!(m["total_mb"], 1024.0);
        assert_eq!(m["available_mb"], 512.0);
        assert_eq!(m["percent"], 50.0);
        assert_eq!(m["swap_percent"], 50.0);
        let arc = "13 1 0x01 123 33464 1 2\nname type data\nc_min 4 67108864\nsize 4 335544320\n";
        let m = memory(meminfo, Some(arc)).unwrap();
        assert_eq!(m["zfs_arc_mb"], 256.0);
        assert_eq!(m["available_mb"], 768.0);
        assert!(memory("nonsense", None).is_err());
    }

    #[test]
    fn mounts_keep_physical_file_systems_once() {
        let text = "/dev/sda1 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\ntank/home /home zfs rw 0 0\n/dev/sdb1 /mnt/with\\040space xfs ro 0 0\n/dev/sda1 / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n";
        let m = physical(parse_mounts(text));
        let paths: Vec<&str> = m.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["/", "/home", "/mnt/with space"]);
    }

    #[test]
    fn net_dev_and_tcp_states() {
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0: 5000 50 3 1 0 0 0 0 7000 70 2 4 0 0 0 0\n";
        let c = parse_net_dev(dev);
        assert_eq!(c["eth0"].errors_in + c["eth0"].errors_out, 5);
        assert_eq!(c["eth0"].bytes_sent, 7000);
        let tcp = "  sl  local_address rem_address   st\n   0: 0100007F:0016 00000000:0000 0A 0\n   1: 0100007F:0016 0100007F:9999 01 0\n".to_string();
        let s = count_tcp_states(&[tcp]);
        assert_eq!(
            (s["tcp_listen"], s["tcp_established"], s["tcp_total"]),
            (1, 1, 2)
        );
    }

    #[test]
    fn diskstats_in_bytes() {
        let d = parse_diskstats(
            "   8       0 sda 100 0 2000 0 50 0 4000 0 0 300 0 0 0 0 0\n   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0\n",
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d["sda"].read_bytes, 2000 * 512);
        assert_eq!(d["sda"].busy_ms, 300);
    }
}
