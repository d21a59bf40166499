//! RFC 3339 timestamps to and from microseconds since the Unix epoch (UTC), without a
//! date-time dependency (plugins stay small).

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const MICROS_PER_SEC: i64 = 1_000_000;

/// Parses `2026-11-26T10:15:00Z`, `2026-11-26T10:15:00.250+01:00` or
/// `2026-11-26 10:15:00` (taken as UTC) into microseconds since the Unix epoch.
///
/// # Errors
/// A message saying what part of the text is not a timestamp.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let err = || format!("{text:?} is not an RFC 3339 timestamp like 2026-11-26T10:15:00Z");
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let s = &text[r];
        if s.bytes().all(|c| c.is_ascii_digit()) { s.parse::<i64>().map_err(|_| err()) } else { Err(err()) }
    };
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(err());
    }
    let mut rest = &text[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        for (i, c) in frac[..digits].bytes().enumerate().take(6) {
            micros += i64::from(c - b'0') * 10i64.pow(5 - i as u32);
        }
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "" | "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let digits = |part: &str| {
                if part.bytes().all(|c| c.is_ascii_digit()) {
                    part.parse::<i64>().map_err(|_| err())
                } else {
                    Err(err())
                }
            };
            let (oh, om) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            // RFC 3339's offsets are real ones: hours 00-23, minutes 00-59.
            if oh > 23 || om > 59 {
                return Err(err());
            }
            sign * (oh * 3600 + om * 60)
        }
        _ => return Err(err()),
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Ok(secs * MICROS_PER_SEC + micros)
}

/// Formats microseconds since the Unix epoch as RFC 3339 in UTC, with a fraction only
/// when there is one: `2026-11-26T10:15:00Z`, `2026-11-26T10:15:00.250Z`.
pub fn format_rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    if (0..=9999).contains(&y) {
        // Digit by digit into one buffer: every event's time and timestamps go through
        // here on their way to the sinks, and two `format!`s cost their allocations and
        // the formatting machinery (1.4 % of the demo pipeline's samples, BENCHMARKS.md).
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, value: i64, width: usize| {
            let mut rest = value as u32; // 0..=999_999: a year, a field or a fraction
            for place in (at..at + width).rev() {
                text[place] = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
        };
        put(0, y, 4);
        put(5, m, 2);
        put(8, d, 2);
        put(11, h, 2);
        put(14, mi, 2);
        put(17, s, 2);
        let end = match (frac, frac % 1000) {
            (0, _) => 19,
            (_, 0) => {
                put(20, frac / 1000, 3);
                23
            }
            _ => {
                put(20, frac, 6);
                26
            }
        };
        text[end] = b'Z';
        return String::from_utf8_lossy(&text[..=end]).into_owned();
    }
    let base = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if frac == 0 {
        format!("{base}Z")
    } else if frac % 1000 == 0 {
        format!("{base}.{:03}Z", frac / 1000)
    } else {
        format!("{base}.{frac:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for text in
            ["1970-01-01T00:00:00Z", "2026-11-26T10:15:00Z", "2024-02-29T23:59:59.250Z", "1969-12-31T23:59:59.000001Z"]
        {
            assert_eq!(format_rfc3339(parse_rfc3339(text).unwrap()), text);
        }
    }

    #[test]
    fn the_digit_by_digit_path_writes_what_format_wrote() {
        let formatted = |micros: i64| {
            let secs = micros.div_euclid(MICROS_PER_SEC);
            let frac = micros.rem_euclid(MICROS_PER_SEC);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            let base = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60);
            match (frac, frac % 1000) {
                (0, _) => format!("{base}Z"),
                (_, 0) => format!("{base}.{:03}Z", frac / 1000),
                _ => format!("{base}.{frac:06}Z"),
            }
        };
        let mut micros: i64 = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
        // Up to 9999-12-31T23:59:59.999999Z; from 10000-01-01 on, the general path.
        while micros < 253_402_300_800_000_000 {
            for nudge in [0, 1, 999, 1_000, 250_000, 999_999] {
                assert_eq!(format_rfc3339(micros + nudge), formatted(micros + nudge), "{}", micros + nudge);
            }
            micros += 7_777_777_000_000; // whole seconds (about 90 days): each nudge's branch every time
        }
        assert_eq!(format_rfc3339(253_402_300_799_999_999), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format_rfc3339(253_402_300_800_000_000), "10000-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(-62_167_219_200_000_001), "-001-12-31T23:59:59.999999Z");
    }

    #[test]
    fn offsets_and_space_separator_are_understood() {
        assert_eq!(parse_rfc3339("2026-11-26T11:15:00+01:00"), parse_rfc3339("2026-11-26T10:15:00Z"));
        assert_eq!(parse_rfc3339("2026-11-26 10:15:00"), parse_rfc3339("2026-11-26T10:15:00Z"));
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Ok(86_400_000_000));
    }

    #[test]
    fn offsets_out_of_range_or_not_digits_are_refused() {
        for text in [
            "2026-11-26T10:15:00+99:00",
            "2026-11-26T10:15:00+24:00",
            "2026-11-26T10:15:00-01:60",
            "2026-11-26T10:15:00+-1:00",
        ] {
            assert!(parse_rfc3339(text).is_err(), "{text}");
        }
        assert!(parse_rfc3339("2026-11-26T10:15:00-23:59").is_ok());
    }

    #[test]
    fn garbage_is_refused_with_the_expected_shape() {
        for bad in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-26T10:15:00 UTC", "2026-11-26T1a:15:00Z"] {
            assert!(parse_rfc3339(bad).unwrap_err().contains("RFC 3339"), "{bad}");
        }
    }
}
