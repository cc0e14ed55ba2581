//! Output helpers with systemd's conventions: sizes, timestamps, tables.

/// systemd's `format_bytes`, as the portablectl spoken writes it (`crate::speak`).
pub fn bytes(n: u64) -> String {
    bytes_as(
        n,
        crate::speak::has(portctl_engine::version::Behaviour::SizesWithoutZeroDecimal),
    )
}

/// systemd's `format_bytes_full(…, FORMAT_BYTES_USE_IEC|FORMAT_BYTES_BELOW_POINT)`: base
/// 1024, one truncated decimal (computed as systemd does), `B` below 1 KiB; empty for
/// "unknown" (`u64::MAX`). `without_zero_decimal`: `300K` rather than `300.0K`.
pub fn bytes_as(n: u64, without_zero_decimal: bool) -> String {
    if n == u64::MAX {
        return String::new();
    }
    const UNITS: [(char, u64); 6] = [
        ('E', 1 << 60),
        ('P', 1 << 50),
        ('T', 1 << 40),
        ('G', 1 << 30),
        ('M', 1 << 20),
        ('K', 1 << 10),
    ];
    for (i, &(suffix, factor)) in UNITS.iter().enumerate() {
        if n >= factor {
            let decimal = match UNITS.get(i + 1) {
                Some(&(_, next)) => (n / next * 10 / 1024) % 10,
                None => (n * 10 / factor) % 10,
            };
            return if without_zero_decimal && decimal == 0 {
                format!("{}{suffix}", n / factor)
            } else {
                format!("{}.{decimal}{suffix}", n / factor)
            };
        }
    }
    format!("{n}B")
}

/// systemd's `format_timestamp`: `Wed 2026-11-25 19:41:50 UTC` in local time; `-` for 0.
pub fn timestamp(usec: u64) -> String {
    if usec == 0 || usec == u64::MAX {
        return "-".into();
    }
    match jiff::Timestamp::from_microsecond(usec as i64) {
        Ok(ts) => ts
            .to_zoned_datetime(local_zone().clone())
            .strftime("%a %Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => "-".into(),
    }
}

/// The local time zone, looked up once per process (a listing formats many timestamps).
fn local_zone() -> &'static jiff::tz::TimeZone {
    static ZONE: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
    ZONE.get_or_init(jiff::tz::TimeZone::system)
}

/// A table as systemd prints it: columns padded to their widest cell (header included when
/// there is a legend), one space between columns, the last one not padded.
pub fn table(header: &[&str], rows: &[Vec<String>], legend: bool) -> String {
    let ncol = header.len();
    let mut widths = vec![1usize; ncol];
    if legend {
        for (w, h) in widths.iter_mut().zip(header) {
            *w = (*w).max(h.chars().count());
        }
    }
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 < ncol {
                l.push_str(&format!("{c:<w$} ", w = widths[i]));
            } else {
                l.push_str(c);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    if legend {
        line(header.to_vec());
    }
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (n, v252, v257) in [
            (307_200, "300.0K", "300K"),
            (4096, "4.0K", "4K"),
            (1023, "1023B", "1023B"),
            (1_572_864, "1.5M", "1.5M"),
            (u64::MAX, "", ""),
        ] {
            assert_eq!(bytes_as(n, false), v252);
            assert_eq!(bytes_as(n, true), v257);
        }
    }

    #[test]
    fn tables() {
        let rows = vec![vec!["a".to_string(), "".to_string(), "x".to_string()]];
        assert_eq!(
            table(&["NAME", "USAGE", "STATE"], &rows, true),
            "NAME USAGE STATE\na          x\n"
        );
        assert_eq!(table(&["NAME", "USAGE", "STATE"], &rows, false), "a   x\n");
    }
}
