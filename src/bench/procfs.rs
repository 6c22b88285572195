//! CPU time and memory of a process on this machine, read from Linux's `/proc`: the server's
//! (`--server-pid`) and the load generator's own.

use std::time::Duration;

/// `/proc/<pid>/stat` reports CPU time in clock ticks of `USER_HZ`, which Linux fixes at 100
/// on every architecture it exports to user space (sysconf(_SC_CLK_TCK)).
const USER_HZ: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcSample {
    pub user: Duration,
    pub system: Duration,
    /// Resident set now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set since the process started (`VmHWM`), KiB.
    pub hwm_kib: u64,
}

impl ProcSample {
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

/// Reads process `pid` (a number, or `"self"`).
pub fn sample(pid: &str) -> std::io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse(&stat, &status).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("cannot parse /proc/{pid}/stat or status"),
        )
    })
}

fn parse(stat: &str, status: &str) -> Option<ProcSample> {
    // The command name (field 2) is in parentheses and may contain spaces and ')': the fields
    // that follow start after the last ')'. There, index 0 is field 3 (state), so utime
    // (field 14) is index 11 and stime (field 15) index 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let to_duration = |t: u64| Duration::from_millis(t * 1000 / USER_HZ);
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(ProcSample {
        user: to_duration(ticks(11)?),
        system: to_duration(ticks(12)?),
        rss_kib: kib("VmRSS:")?,
        hwm_kib: kib("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_are_parsed_even_with_odd_command_names() {
        let stat = "4242 (my (odd) srv) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    4 0 100 1000 300 18446744073709551615";
        let status = "Name:\tsrv\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t4\n";
        let s = parse(stat, status).unwrap();
        assert_eq!(s.user, Duration::from_millis(2500));
        assert_eq!(s.system, Duration::from_millis(750));
        assert_eq!((s.rss_kib, s.hwm_kib), (10240, 20480));
    }

    #[test]
    fn this_process_can_be_read() {
        let s = sample("self").unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
