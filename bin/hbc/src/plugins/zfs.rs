//! `zfs_monitor`: every pool's health, space and I/O from zpool(8), run without a shell:
//! `zpool list -Hp -o name,size,allocated,free,fragmentation,capacity,dedupratio,health`
//! and `zpool iostat -Hp` (operations and bytes per second, averaged since import).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::commands;

/// Parses `zpool list -Hp -o name,size,allocated,free,fragmentation,capacity,dedupratio,health`.
pub fn parse_list(text: &str) -> Map<String, Value> {
    let mut pools = Map::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 8 || f[0].is_empty() {
            continue;
        }
        let num = |s: &str| s.trim_end_matches(['%', 'x']).parse::<f64>().ok();
        let health = f[7].trim();
        pools.insert(
            f[0].to_string(),
            json!({
                "health": health,
                "health_ok": u8::from(health == "ONLINE"),
                "size_bytes": num(f[1]),
                "allocated_bytes": num(f[2]),
                "free_bytes": num(f[3]),
                "fragmentation": num(f[4]),
                "capacity": num(f[5]),
                "dedup": num(f[6]),
            }),
        );
    }
    pools
}

/// Adds `zpool iostat -Hp` figures to the pools listed: without an interval, zpool prints
/// per-second averages since the pool was imported (operations and bytes, read and write).
pub fn add_iostat(pools: &mut Map<String, Value>, text: &str) {
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 7 {
            continue;
        }
        let Some(Value::Object(p)) = pools.get_mut(f[0]) else {
            continue;
        };
        let num = |s: &str| s.parse::<u64>().ok();
        p.insert("read_ops_per_s".into(), json!(num(f[3])));
        p.insert("write_ops_per_s".into(), json!(num(f[4])));
        p.insert("read_bytes_per_s".into(), json!(num(f[5])));
        p.insert("write_bytes_per_s".into(), json!(num(f[6])));
    }
}

/// Runs zpool; `{"zpool": {<pool>: {...}}}`.
pub async fn collect(zpool: &str, timeout: Duration) -> Result<Value, String> {
    let run = |args: &[&str]| {
        let argv: Vec<String> = std::iter::once(zpool)
            .chain(args.iter().copied())
            .map(str::to_string)
            .collect();
        async move { commands::execute(&argv, timeout, &[]).await }
    };
    let list = run(&[
        "list",
        "-Hp",
        "-o",
        "name,size,allocated,free,fragmentation,capacity,dedupratio,health",
    ])
    .await;
    if let Some(e) = list.error {
        return Err(e);
    }
    if list.timed_out {
        return Err(format!(
            "{zpool} list took longer than {} s",
            timeout.as_secs()
        ));
    }
    if list.exit != Some(0) {
        let err = String::from_utf8_lossy(&list.stderr);
        return Err(format!(
            "{zpool} list failed ({:?}): {}",
            list.exit,
            err.trim()
        ));
    }
    let mut pools = parse_list(&String::from_utf8_lossy(&list.stdout));
    let iostat = run(&["iostat", "-Hp"]).await;
    if iostat.exit == Some(0) {
        add_iostat(&mut pools, &String::from_utf8_lossy(&iostat.stdout));
    }
    Ok(json!({"zpool": pools, "pool_count": pools.len()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_from_zpool_output() {
        let mut pools = parse_list(
            "tank\t1000\t600\t400\t12\t60\t1.00\tONLINE\nbackup\t2000\t100\t1900\t1\t5\t1.50\tDEGRADED\nbroken line\n",
        );
        assert_eq!(pools.len(), 2);
        assert_eq!(pools["tank"]["health_ok"], 1);
        assert_eq!(pools["backup"]["health_ok"], 0);
        assert_eq!(pools["backup"]["dedup"], 1.5);
        assert_eq!(pools["tank"]["capacity"], 60.0);
        add_iostat(&mut pools, "tank\t600\t400\t5\t7\t4096\t8192\n");
        assert_eq!(pools["tank"]["write_bytes_per_s"], 8192);
    }
}
