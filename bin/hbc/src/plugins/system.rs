//! The system plugins: what the host is (`os_info`, `filesystem_info`) and how it is doing
//! (`cpu_monitor`, `memory_monitor`, `disk_monitor`, `network_monitor`). Field names follow
//! the original hbd (docs/PLUGINS.md).
//!
//! Cpu, memory, swap, load, uptime, processes, interfaces and the OS come from `sysinfo`
//! (Linux, FreeBSD, macOS). Space comes from statvfs(2), which is what df reads, and the
//! mount table from /proc/self/mounts on Linux and mount(8) elsewhere. What sysinfo does not
//! give is read where the system has it in one place: Linux's /proc (the cpu time split,
//! page cache and buffers, disk I/O, interface drops, TCP states, the ZFS ARC) and FreeBSD's
//! sysctl(8) (the cpu time split, buffers, free pages, the ZFS ARC); elsewhere those fields
//! are absent (docs/PLUGINS.md has the table). Each reader of text is a pure parser, not
//! compiled per system, so tests feed it recorded fixtures of every system on any of them.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Map, Value, json};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

const MB: f64 = 1024.0 * 1024.0;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Rounded to two decimals: enough for thresholds and charts, short on the wire.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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

/// FreeBSD's `kern.cp_time` (ticks of user, nice, system, interrupt, idle since boot) as
/// the fields [`cpu_percent`] reads; FreeBSD counts no I/O wait or steal.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub fn parse_cp_time(text: &str) -> Option<CpuTimes> {
    let n: Vec<u64> = text
        .split_whitespace()
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, intr, idle] = n[..] else {
        return None;
    };
    Some(CpuTimes {
        user: user + nice,
        system: system + intr,
        idle,
        iowait: 0,
        steal: 0,
        total: n.iter().sum(),
    })
}

/// The time split sysinfo does not give: /proc/stat's `cpu` line on Linux.
#[cfg(target_os = "linux")]
fn cpu_times() -> Option<CpuTimes> {
    parse_stat(&read("/proc/stat").ok()?).0
}

/// FreeBSD: `kern.cp_time`.
#[cfg(target_os = "freebsd")]
fn cpu_times() -> Option<CpuTimes> {
    parse_cp_time(sysctl(&["kern.cp_time"]).get("kern.cp_time")?)
}

/// Elsewhere the split is not reported.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn cpu_times() -> Option<CpuTimes> {
    None
}

/// Whether [`cpu_times`] counts I/O wait and steal (FreeBSD's counters have neither).
const HAS_IOWAIT: bool = cfg!(target_os = "linux");

/// Percent, rounded, of a sysinfo figure (an `f32` that can stray a hair outside 0..=100).
fn percent(x: f32) -> f64 {
    round2(f64::from(x)).clamp(0.0, 100.0)
}

/// An error for the plugins sysinfo cannot serve on this system (NetBSD, OpenBSD).
fn unsupported() -> Result<(), String> {
    if sysinfo::IS_SUPPORTED_SYSTEM {
        Ok(())
    } else {
        Err(format!(
            "not available on {}: sysinfo does not support it",
            std::env::consts::OS
        ))
    }
}

/// `cpu_monitor`: keeps sysinfo's cpu readings (and the time split) between reports, so each
/// report covers the time since the one before (the first one covers a one-second sample).
#[derive(Default)]
pub struct Cpu {
    pub sys: Option<System>,
    pub times: Option<CpuTimes>,
    pub per_core: bool,
}

impl Cpu {
    pub async fn collect(&mut self) -> Result<Value, String> {
        unsupported()?;
        let what = CpuRefreshKind::nothing().with_cpu_usage().with_frequency();
        let (mut sys, before) = match (self.sys.take(), self.times.take()) {
            (Some(sys), times) => (sys, times),
            (None, _) => {
                let mut sys = System::new();
                sys.refresh_cpu_specifics(what);
                let times = super::off_thread(|| Ok(cpu_times())).await?;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                (sys, times)
            }
        };
        sys.refresh_cpu_specifics(what);
        let now = super::off_thread(|| Ok(cpu_times())).await?;
        let mut m = Map::new();
        m.insert("cpu_percent".into(), json!(percent(sys.global_cpu_usage())));
        if let (Some(before), Some(now)) = (&before, &now) {
            let split = cpu_percent(before, now);
            let mut keys = vec!["user_percent", "system_percent"];
            if HAS_IOWAIT {
                keys.extend(["iowait_percent", "steal_percent"]);
            }
            for k in keys {
                if let Some(v) = split.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
        }
        if self.per_core {
            let cores: Vec<Value> = sys
                .cpus()
                .iter()
                .map(|c| json!(percent(c.cpu_usage())))
                .collect();
            m.insert("per_core".into(), Value::Array(cores));
        }
        let load = System::load_average();
        m.insert("load_1min".into(), json!(load.one));
        m.insert("load_5min".into(), json!(load.five));
        m.insert("load_15min".into(), json!(load.fifteen));
        m.insert(
            "process_count".into(),
            json!(super::off_thread(|| Ok(process_count())).await?),
        );
        m.insert("cpu_count".into(), json!(sys.cpus().len()));
        let mhz: Vec<f64> = sys
            .cpus()
            .iter()
            .map(|c| c.frequency() as f64)
            .filter(|f| *f > 0.0)
            .collect();
        if !mhz.is_empty() {
            m.insert(
                "frequency_mhz".into(),
                json!(round2(mhz.iter().sum::<f64>() / mhz.len() as f64)),
            );
        }
        m.insert("uptime_seconds".into(), json!(System::uptime()));
        self.sys = Some(sys);
        self.times = now;
        Ok(Value::Object(m))
    }
}

/// Processes and threads, as the kernel schedules them: the fourth field of /proc/loadavg
/// (`running/total`), one read where sysinfo would open a file per process and thread.
#[cfg(target_os = "linux")]
fn process_count() -> usize {
    read("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg_tasks(&t))
        .unwrap_or(0)
}

/// Processes sysinfo lists (threads are not listed on these systems). A fresh `System` each
/// time: kept, it would hold a record of every process between reports.
#[cfg(not(target_os = "linux"))]
fn process_count() -> usize {
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::All,
        true,
        sysinfo::ProcessRefreshKind::nothing(),
    );
    sys.processes().len()
}

/// The total of /proc/loadavg's `running/total` field.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn parse_loadavg_tasks(text: &str) -> Option<usize> {
    text.split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

// --- memory ---------------------------------------------------------------------------------

/// /proc/meminfo in bytes by key.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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

/// The same on FreeBSD, from `sysctl kstat.zfs.misc.arcstats.size
/// kstat.zfs.misc.arcstats.c_min` (see [`parse_sysctl`]).
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub fn arc_shrinkable_from_sysctl(values: &BTreeMap<String, String>) -> Option<u64> {
    let n = |k: &str| values.get(k)?.trim().parse::<u64>().ok();
    Some(n("kstat.zfs.misc.arcstats.size")?.saturating_sub(n("kstat.zfs.misc.arcstats.c_min")?))
}

/// `name: value` lines of sysctl(8) (without `-n`), by name.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub fn parse_sysctl(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// FreeBSD: the values of `names`, read in one run of sysctl(8). `-i` skips names the
/// kernel does not have (no ZFS loaded), so the others still come.
#[cfg(target_os = "freebsd")]
fn sysctl(names: &[&str]) -> BTreeMap<String, String> {
    std::process::Command::new("/sbin/sysctl")
        .arg("-i")
        .args(names)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map(|o| parse_sysctl(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

/// What `memory_monitor` reports, in bytes; `None` where the system does not say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemFigures {
    pub total: u64,
    /// What can be had without swapping, ARC not included.
    pub available: u64,
    /// What nothing uses.
    pub free: u64,
    pub cached: Option<u64>,
    pub buffers: Option<u64>,
    pub swap_total: u64,
    pub swap_used: u64,
    /// The ZFS ARC's shrinkable part, where the system has an ARC.
    pub arc: Option<u64>,
}

/// `memory_monitor`'s report from its figures: the ZFS ARC's shrinkable part counts as
/// available, as the kernel counts its own page cache.
pub fn memory_json(f: &MemFigures) -> Result<Value, String> {
    if f.total == 0 {
        return Err("the system reports no memory".into());
    }
    let available = f.available.saturating_add(f.arc.unwrap_or(0)).min(f.total);
    let swap_used = f.swap_used.min(f.swap_total);
    let pct = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            round2(100.0 * part as f64 / whole as f64)
        }
    };
    let mb = |b: u64| round2(b as f64 / MB);
    let mut out = json!({
        "percent": pct(f.total - available, f.total),
        "total_mb": mb(f.total),
        "available_mb": mb(available),
        "used_mb": mb(f.total - available),
        "free_mb": mb(f.free),
        "swap_total_mb": mb(f.swap_total),
        "swap_used_mb": mb(swap_used),
        "swap_percent": pct(swap_used, f.swap_total),
    });
    for (key, v) in [
        ("cached_mb", f.cached),
        ("buffers_mb", f.buffers),
        ("zfs_arc_mb", f.arc),
    ] {
        if let Some(v) = v {
            out[key] = json!(mb(v));
        }
    }
    Ok(out)
}

/// `memory_monitor`: memory and swap from sysinfo, and what it leaves out from the system.
pub fn memory() -> Result<Value, String> {
    unsupported()?;
    let mut sys = System::new();
    sys.refresh_memory_specifics(MemoryRefreshKind::everything());
    let mut f = MemFigures {
        total: sys.total_memory(),
        available: sys.available_memory(),
        free: sys.free_memory(),
        swap_total: sys.total_swap(),
        swap_used: sys.used_swap(),
        ..MemFigures::default()
    };
    add_memory_extras(&mut f);
    memory_json(&f)
}

/// Linux: page cache and buffers from /proc/meminfo, the ARC where ZFS is loaded.
#[cfg(target_os = "linux")]
fn add_memory_extras(f: &mut MemFigures) {
    let m = read("/proc/meminfo")
        .map(|t| parse_meminfo(&t))
        .unwrap_or_default();
    f.cached = m.get("Cached").copied();
    f.buffers = m.get("Buffers").copied();
    f.arc = read("/proc/spl/kstat/zfs/arcstats")
        .ok()
        .map(|t| parse_arc_shrinkable(&t).unwrap_or(0));
}

/// FreeBSD: buffers (`vfs.bufspace`), free pages (sysinfo's "free" there is what is
/// available) and the ARC where ZFS is loaded.
#[cfg(target_os = "freebsd")]
fn add_memory_extras(f: &mut MemFigures) {
    let s = sysctl(&[
        "vfs.bufspace",
        "vm.stats.vm.v_free_count",
        "hw.pagesize",
        "kstat.zfs.misc.arcstats.size",
        "kstat.zfs.misc.arcstats.c_min",
    ]);
    let n = |k: &str| s.get(k)?.parse::<u64>().ok();
    f.buffers = n("vfs.bufspace");
    if let (Some(pages), Some(size)) = (n("vm.stats.vm.v_free_count"), n("hw.pagesize")) {
        f.free = pages.saturating_mul(size);
    }
    f.arc = arc_shrinkable_from_sysctl(&s);
}

/// Elsewhere sysinfo's figures are all there is.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn add_memory_extras(_: &mut MemFigures) {}

// --- mounts, disks --------------------------------------------------------------------------

/// One mounted file system: a line of /proc/self/mounts or of mount(8)'s listing.
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
    // The BSDs' and macOS's.
    "devfs",
    "fdescfs",
    "procfs",
    "linprocfs",
    "linsysfs",
    "nullfs",
    "kernfs",
    "ptyfs",
    "mfs",
    // Network file systems: not the host's disks, and statvfs on a dead server can hang.
    // (Linux's NFS and CIFS are left out by their `server:/path` and `//server` devices.)
    "nfs",
    "nfs4",
    "smbfs",
    "cifs",
    "afpfs",
    "webdav",
];

/// /proc/self/mounts, with the octal escapes (`\040` for a space) undone.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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
                && !m.device.starts_with("//")
                && (m.device.starts_with('/') || m.fstype == "zfs" || m.fstype == "btrfs")
        })
        .filter(|m| seen.insert(m.path.clone()))
        .collect()
}

/// mount(8)'s listing on the BSDs and macOS, where there is no /proc/self/mounts:
/// `DEVICE on PATH (FSTYPE, OPTION, ...)` (FreeBSD, macOS) or
/// `DEVICE on PATH type FSTYPE (OPTION, ...)` (NetBSD, OpenBSD). Options are joined with
/// commas, as in /proc/self/mounts. A path with ` type ` or ` (` in it would be misread;
/// mount(8) prints it unescaped, so that cannot be told apart.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub fn parse_mount_output(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (device, rest) = l.split_once(" on ")?;
            let (head, options) = rest.trim_end().strip_suffix(')')?.rsplit_once(" (")?;
            let mut options = options.split(", ").map(str::trim);
            let (path, fstype) = match head.rsplit_once(" type ") {
                Some((path, fstype)) => (path, fstype.to_string()),
                None => (head, options.next()?.to_string()),
            };
            Some(Mount {
                device: device.to_string(),
                path: path.to_string(),
                fstype,
                options: options.collect::<Vec<_>>().join(","),
            })
        })
        .collect()
}

/// The mount table: /proc/self/mounts.
#[cfg(target_os = "linux")]
fn mount_table() -> Result<Vec<Mount>, String> {
    Ok(parse_mounts(&read("/proc/self/mounts")?))
}

/// The mount table: mount(8) lists it on every BSD and on macOS, in one of two forms that
/// [`parse_mount_output`] reads.
#[cfg(not(target_os = "linux"))]
fn mount_table() -> Result<Vec<Mount>, String> {
    let out = std::process::Command::new("/sbin/mount")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run /sbin/mount: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "/sbin/mount failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_mount_output(&String::from_utf8_lossy(&out.stdout)))
}

fn statvfs_json(path: &str) -> Option<Map<String, Value>> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let frag = s.fragment_size() as f64;
    let total = s.blocks() as f64 * frag;
    let free = s.blocks_available() as f64 * frag;
    // Used as df counts it: blocks not free to anyone, over what users can have.
    // Saturating: a FUSE file system may claim more free blocks than it has.
    let used = s.blocks().saturating_sub(s.blocks_free()) as f64 * frag;
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
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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
        for m in physical(mount_table()?) {
            if let Some(mut v) = statvfs_json(&m.path) {
                v.insert("device".into(), json!(m.device));
                v.insert("fstype".into(), json!(m.fstype));
                partitions.insert(m.path, Value::Object(v));
            }
        }
        let Some(stats) = disk_counters() else {
            return Ok(json!({"partitions": partitions}));
        };
        let now = Instant::now();
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

/// Disk I/O counters: /proc/diskstats on Linux.
#[cfg(target_os = "linux")]
fn disk_counters() -> Option<BTreeMap<String, DiskCounters>> {
    Some(
        read("/proc/diskstats")
            .map(|t| parse_diskstats(&t))
            .unwrap_or_default(),
    )
}

/// Elsewhere none: sysinfo has byte counts for some systems' disks but not the operations
/// or the busy time, and FreeBSD's devstat needs more than sysctl(8) prints.
#[cfg(not(target_os = "linux"))]
fn disk_counters() -> Option<BTreeMap<String, DiskCounters>> {
    None
}

/// `filesystem_info`: each mounted physical file system, with its limits (`pathconf`).
pub fn filesystems() -> Result<Value, String> {
    let mut out = Map::new();
    for m in physical(mount_table()?) {
        let mut v = json!({
            "device": m.device,
            "fstype": m.fstype,
            // Linux says `ro`, the BSDs and macOS `read-only`.
            "read_only": m.options.split(',').any(|o| o == "ro" || o == "read-only"),
            "options": m.options,
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

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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
        unsupported()?;
        let now = Instant::now();
        let networks = sysinfo::Networks::new_with_refreshed_list();
        let drops = interface_drops();
        let counters: BTreeMap<String, NetCounters> = networks
            .list()
            .iter()
            .map(|(name, d)| {
                let dropped = drops.as_ref().and_then(|m| m.get(name));
                let c = NetCounters {
                    bytes_recv: d.total_received(),
                    packets_recv: d.total_packets_received(),
                    errors_in: d.total_errors_on_received(),
                    drops_in: dropped.map_or(0, |c| c.drops_in),
                    bytes_sent: d.total_transmitted(),
                    packets_sent: d.total_packets_transmitted(),
                    errors_out: d.total_errors_on_transmitted(),
                    drops_out: dropped.map_or(0, |c| c.drops_out),
                };
                (name.clone(), c)
            })
            .collect();
        let mut interfaces = Map::new();
        let (mut errors, mut dropped) = (0u64, 0u64);
        for (name, c) in &counters {
            errors += c.errors_in + c.errors_out;
            dropped += c.drops_in + c.drops_out;
            let mut v = json!({
                "bytes_sent": c.bytes_sent, "bytes_recv": c.bytes_recv,
                "packets_sent": c.packets_sent, "packets_recv": c.packets_recv,
                "errors_in": c.errors_in, "errors_out": c.errors_out,
            });
            if drops.is_some() {
                v["drops_in"] = json!(c.drops_in);
                v["drops_out"] = json!(c.drops_out);
            }
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
        let mut out = json!({"interfaces": interfaces, "errors_total": errors});
        if drops.is_some() {
            out["drops_total"] = json!(dropped);
        }
        if let Some(connections) = connections() {
            out["connections"] = Value::Object(connections);
        }
        Ok(out)
    }
}

/// Drops per interface, which sysinfo does not count: /proc/net/dev on Linux.
#[cfg(target_os = "linux")]
fn interface_drops() -> Option<BTreeMap<String, NetCounters>> {
    read("/proc/net/dev").ok().map(|t| parse_net_dev(&t))
}

#[cfg(not(target_os = "linux"))]
fn interface_drops() -> Option<BTreeMap<String, NetCounters>> {
    None
}

/// Sockets by protocol and state, which sysinfo does not count: /proc/net on Linux.
#[cfg(target_os = "linux")]
fn connections() -> Option<Map<String, Value>> {
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
    Some(connections)
}

/// Elsewhere netstat(1) would have to be parsed, in a different form on each system.
#[cfg(not(target_os = "linux"))]
fn connections() -> Option<Map<String, Value>> {
    None
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
    // Linux and FreeBSD have os-release; macOS has not, and sysinfo asks it instead.
    let release = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse_os_release(&t))
        .unwrap_or_default();
    let field = |k: &str| release.get(k).cloned();
    let sys = System::new_with_specifics(
        sysinfo::RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    let model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let supported = sysinfo::IS_SUPPORTED_SYSTEM;
    let memory = (sys.total_memory() > 0).then(|| round2(sys.total_memory() as f64 / MB));
    Ok(json!({
        "os": text(uts.sysname()),
        "kernel": text(uts.release()),
        "kernel_version": text(uts.version()),
        "architecture": text(uts.machine()),
        "hostname": text(uts.nodename()),
        "distribution": field("PRETTY_NAME")
            .or_else(|| field("NAME"))
            .or_else(System::long_os_version),
        "distribution_id": field("ID").or_else(|| supported.then(System::distribution_id)),
        "distribution_version": field("VERSION_ID").or_else(System::os_version),
        "cpu_model": model,
        "cpu_count": sys.cpus().len().max(cores),
        "memory_total_mb": memory,
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
    }

    #[test]
    fn freebsd_cp_time_splits_the_cpu_time() {
        // `sysctl kern.cp_time` on FreeBSD 14: user nice sys intr idle, in ticks.
        let text = "kern.cp_time: 1093484 2312 532818 15430 48792117\n";
        let before = parse_cp_time(parse_sysctl(text)["kern.cp_time"].as_str()).unwrap();
        assert_eq!(before.user, 1_095_796);
        assert_eq!(before.system, 548_248);
        // 1000 ticks later: 100 user, 20 nice, 60 sys, 20 intr, 800 idle.
        let after = parse_cp_time("1093584 2332 532878 15450 48792917").unwrap();
        let m = cpu_percent(&before, &after);
        assert_eq!(m["cpu_percent"], 20.0);
        assert_eq!(m["user_percent"], 12.0);
        assert_eq!(m["system_percent"], 8.0);
        assert_eq!(parse_cp_time("1 2 3"), None);
        assert_eq!(parse_cp_time("a b c d e"), None);
    }

    #[test]
    fn memory_counts_the_arc_as_available() {
        let meminfo = "MemTotal: 1048576 kB\nMemFree: 100000 kB\nMemAvailable: 524288 kB\nCached: 204800 kB\nSwapTotal: 1024 kB\nSwapFree: 512 kB\n";
        let m = parse_meminfo(meminfo);
        let mut f = MemFigures {
            total: m["MemTotal"],
            available: m["MemAvailable"],
            free: m["MemFree"],
            cached: m.get("Cached").copied(),
            buffers: m.get("Buffers").copied(),
            swap_total: m["SwapTotal"],
            swap_used: m["SwapTotal"] - m["SwapFree"],
            arc: None,
        };
        let v = memory_json(&f).unwrap();
        assert_eq!(v["total_mb"], 1024.0);
        assert_eq!(v["available_mb"], 512.0);
        assert_eq!(v["percent"], 50.0);
        assert_eq!(v["swap_percent"], 50.0);
        assert_eq!(v["cached_mb"], 200.0);
        assert!(v.get("buffers_mb").is_none() && v.get("zfs_arc_mb").is_none());
        let arc = "13 1 0x01 123 33464 1 2\nname type data\nc_min 4 67108864\nsize 4 335544320\n";
        f.arc = parse_arc_shrinkable(arc);
        let v = memory_json(&f).unwrap();
        assert_eq!(v["zfs_arc_mb"], 256.0);
        assert_eq!(v["available_mb"], 768.0);
        assert!(memory_json(&MemFigures::default()).is_err());
    }

    #[test]
    fn freebsd_arc_and_buffers_from_sysctl() {
        // `sysctl -i vfs.bufspace vm.stats.vm.v_free_count hw.pagesize
        // kstat.zfs.misc.arcstats.size kstat.zfs.misc.arcstats.c_min` on FreeBSD 14.
        let text = "vfs.bufspace: 104857600\nvm.stats.vm.v_free_count: 262144\nhw.pagesize: 4096\nkstat.zfs.misc.arcstats.size: 2147483648\nkstat.zfs.misc.arcstats.c_min: 536870912\n";
        let s = parse_sysctl(text);
        assert_eq!(s["vfs.bufspace"], "104857600");
        assert_eq!(s["hw.pagesize"], "4096");
        assert_eq!(arc_shrinkable_from_sysctl(&s), Some(1_610_612_736));
        // Without ZFS, -i leaves the arcstats lines out.
        let s = parse_sysctl("vfs.bufspace: 0\nhw.pagesize: 4096\n");
        assert_eq!(arc_shrinkable_from_sysctl(&s), None);
    }

    #[test]
    fn bsd_and_macos_mount_listings() {
        let freebsd = "zroot/ROOT/default on / (zfs, local, noatime, nfsv4acls)\n\
            devfs on /dev (devfs)\n\
            /dev/gpt/efiboot0 on /boot/efi (msdosfs, local)\n\
            fdescfs on /dev/fd (fdescfs)\n\
            procfs on /proc (procfs, local)\n\
            tmpfs on /tmp (tmpfs, local)\n\
            zroot/usr/home on /usr/home (zfs, local, noatime, nfsv4acls)\n\
            /dev/ada1p1 on /mnt/old disk (ufs, local, read-only, soft-updates)\n\
            /usr/src on /jail/web/usr/src (nullfs, local, read-only)\n\
            nas:/export on /nas (nfs)\n";
        let m = parse_mount_output(freebsd);
        assert_eq!(m.len(), 10);
        assert_eq!(
            m[0],
            Mount {
                device: "zroot/ROOT/default".into(),
                path: "/".into(),
                fstype: "zfs".into(),
                options: "local,noatime,nfsv4acls".into(),
            }
        );
        assert_eq!(m[1].options, "");
        let kept: Vec<(String, String)> = physical(m)
            .into_iter()
            .map(|m| (m.path, m.fstype))
            .collect();
        let want = [
            ("/", "zfs"),
            ("/boot/efi", "msdosfs"),
            ("/usr/home", "zfs"),
            ("/mnt/old disk", "ufs"),
        ];
        assert_eq!(
            kept,
            want.map(|(p, t)| (p.to_string(), t.to_string())).to_vec()
        );

        let macos = "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)\n\
            devfs on /dev (devfs, local, nobrowse)\n\
            /dev/disk3s6 on /System/Volumes/VM (apfs, local, noexec, journaled, noatime, nobrowse)\n\
            /dev/disk3s5 on /System/Volumes/Data (apfs, local, journaled, nobrowse, protect, root data)\n\
            map auto_home on /System/Volumes/Data/home (autofs, automounted, nobrowse)\n\
            //alice@nas._smb._tcp.local/share on /Volumes/share (smbfs, nodev, nosuid, mounted by alice)\n";
        let m = physical(parse_mount_output(macos));
        let paths: Vec<&str> = m.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["/", "/System/Volumes/VM", "/System/Volumes/Data"]);
        assert!(m[0].options.split(',').any(|o| o == "read-only"));
        assert_eq!(m[2].options, "local,journaled,nobrowse,protect,root data");

        let netbsd = "/dev/wd0a on / type ffs (log, local)\n\
            kernfs on /kern type kernfs (local)\n\
            ptyfs on /dev/pts type ptyfs (local)\n\
            procfs on /proc type procfs (local)\n\
            tmpfs on /var/shm type tmpfs (local)\n\
            /dev/wd1e on /data type ffs (local, read-only)\n";
        let m = physical(parse_mount_output(netbsd));
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].path.as_str(), m[0].fstype.as_str()), ("/", "ffs"));
        assert_eq!(m[0].options, "log,local");
        assert_eq!(m[1].options, "local,read-only");

        let openbsd = "/dev/sd0a on / type ffs (local)\n\
            /dev/sd0k on /home type ffs (local, nodev, nosuid)\n\
            /dev/sd0d on /tmp type ffs (local, nodev, nosuid)\n\
            /dev/sd0f on /usr type ffs (local, nodev, wxallowed)\n\
            mfs:12345 on /var/run type mfs (asynchronous, local, nodev, nosuid, size=65536 512-blocks)\n\
            garbage line\n";
        let m = physical(parse_mount_output(openbsd));
        let paths: Vec<&str> = m.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["/", "/home", "/tmp", "/usr"]);
        assert_eq!(m[3].options, "local,nodev,wxallowed");
    }

    #[test]
    fn mounts_keep_physical_file_systems_once() {
        let text = "/dev/sda1 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\ntank/home /home zfs rw 0 0\n/dev/sdb1 /mnt/with\\040space xfs ro 0 0\n/dev/sda1 / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n";
        let m = physical(parse_mounts(text));
        let paths: Vec<&str> = m.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["/", "/home", "/mnt/with space"]);
    }

    #[test]
    fn loadavg_gives_the_tasks_the_kernel_schedules() {
        assert_eq!(
            parse_loadavg_tasks("0.12 0.30 0.25 2/137 4242\n"),
            Some(137)
        );
        assert_eq!(parse_loadavg_tasks("0.12 0.30 0.25"), None);
        assert_eq!(parse_loadavg_tasks("0.12 0.30 0.25 137 1"), None);
        assert_eq!(parse_loadavg_tasks("a b c 1/x"), None);
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

    /// `df -P -k PATH`: 1024-blocks, used and available KiB, and the capacity in percent.
    #[cfg(target_os = "linux")]
    fn df(path: &str) -> (f64, f64, f64, f64) {
        let out = std::process::Command::new("df")
            .args(["-P", "-k", path])
            .output()
            .expect("run df");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text.lines().nth(1).expect("df's line");
        let w: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| -> f64 {
            w[w.len() - 6 + i]
                .trim_end_matches('%')
                .parse()
                .unwrap_or_else(|_| panic!("df: {line}"))
        };
        (n(1), n(2), n(3), n(4))
    }

    /// Issue 20, acceptance 4: what hbc reports through sysinfo (and statvfs) matches what
    /// /proc and df say at the same moment, within the noise of a machine that is running
    /// other tests.
    #[cfg(target_os = "linux")]
    #[test]
    fn figures_match_proc_and_df_on_this_machine() {
        let num = |v: &Value, k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("{k} is not a number: {v}"))
        };
        // Memory: the total is the same number; used moves a little between the reads.
        let mem = memory().expect("memory_monitor");
        let meminfo = parse_meminfo(&read("/proc/meminfo").expect("meminfo"));
        let kib = |k: &str| meminfo[k] as f64 / MB;
        assert!(
            (num(&mem, "total_mb") - kib("MemTotal")).abs() < 0.01,
            "{mem}"
        );
        let used = kib("MemTotal") - kib("MemAvailable");
        assert!(
            (num(&mem, "used_mb") - used).abs() <= kib("MemTotal") * 0.03,
            "used {} vs /proc/meminfo's {used}: {mem}",
            num(&mem, "used_mb")
        );
        assert!((num(&mem, "swap_total_mb") - kib("SwapTotal")).abs() < 0.01);
        assert!((num(&mem, "free_mb") - kib("MemFree")).abs() <= kib("MemTotal") * 0.03);
        assert!(mem.get("cached_mb").is_some() && mem.get("buffers_mb").is_some());

        // Disk: / as df -P -k counts it.
        let disk = Disk::default().collect().expect("disk_monitor");
        let root = &disk["partitions"]["/"];
        let (blocks, used, avail, capacity) = df("/");
        let gib = |k: f64| k / (1024.0 * 1024.0);
        let total = num(root, "total_gb");
        assert!(
            (total - gib(blocks)).abs() <= gib(blocks) * 0.01,
            "{root} vs df {blocks}"
        );
        assert!(
            (num(root, "used_gb") - gib(used)).abs() <= total * 0.01,
            "{root} vs df {used}"
        );
        assert!(
            (num(root, "free_gb") - gib(avail)).abs() <= total * 0.01,
            "{root} vs df {avail}"
        );
        // df rounds its percentage up.
        assert!(
            (num(root, "percent") - capacity).abs() <= 1.0,
            "{root} vs df {capacity}%"
        );
        assert!(disk["io"].as_object().is_some_and(|io| !io.is_empty()));

        // Cpu: sysinfo's busy share over the first report's one-second sample, against
        // /proc/stat read around the same second.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let before = parse_stat(&read("/proc/stat").expect("stat"));
        let mut cpu = Cpu {
            per_core: true,
            ..Cpu::default()
        };
        let report = rt.block_on(cpu.collect()).expect("cpu_monitor");
        let after = parse_stat(&read("/proc/stat").expect("stat"));
        let (Some(b), Some(a)) = (before.0, after.0) else {
            panic!("no cpu line in /proc/stat")
        };
        let proc_busy = num(&Value::Object(cpu_percent(&b, &a)), "cpu_percent");
        assert!(
            (num(&report, "cpu_percent") - proc_busy).abs() <= 10.0,
            "{report} vs /proc/stat's {proc_busy} %"
        );
        assert_eq!(report["cpu_count"], json!(after.1.len()));
        assert_eq!(
            report["per_core"].as_array().map(Vec::len),
            Some(after.1.len())
        );
        for k in [
            "user_percent",
            "system_percent",
            "iowait_percent",
            "steal_percent",
        ] {
            assert!((0.0..=100.0).contains(&num(&report, k)), "{k}: {report}");
        }
        let loadavg = read("/proc/loadavg").expect("loadavg");
        let w: Vec<&str> = loadavg.split_whitespace().collect();
        let load: f64 = w[0].parse().expect("load");
        assert!(
            (num(&report, "load_1min") - load).abs() <= load.max(1.0),
            "{report}"
        );
        // Processes and threads, as the kernel counts them in /proc/loadavg.
        let tasks: f64 = w[3]
            .split_once('/')
            .and_then(|(_, n)| n.parse().ok())
            .expect("tasks");
        assert!(
            (num(&report, "process_count") - tasks).abs() <= tasks * 0.25,
            "{report} vs {loadavg}"
        );
        let uptime: f64 = read("/proc/uptime")
            .expect("uptime")
            .split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .expect("uptime");
        assert!((num(&report, "uptime_seconds") - uptime).abs() < 5.0);
    }
}
