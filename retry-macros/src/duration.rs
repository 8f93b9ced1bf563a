//! Duration literals of the attributes and config blocks: `"250ms"`, `"2s"`, `"1m30s"`,
//! parsed at expansion time into whole nanoseconds.

/// Parses `"250ms"`, `"2s"`, `"1.5s"`, `"1m30s"`, `"1h"`, `"500us"`, `"0ms"`.
pub fn parse(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(hint(text, "it is empty"));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(hint(text, "a number must come before each unit"));
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let per_unit: u128 = match unit.trim() {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" | "sec" | "secs" => 1_000_000_000,
            "m" | "min" | "mins" => 60_000_000_000,
            "h" | "hr" | "hrs" => 3_600_000_000_000,
            "" => return Err(hint(text, "the unit is missing")),
            other => return Err(hint(text, &format!("`{other}` is not a unit"))),
        };
        let num = num.replace('_', "");
        let nanos = if let Some((whole, frac)) = num.split_once('.') {
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole
                    .parse()
                    .map_err(|_| hint(text, "the number is not valid"))?
            };
            if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
                return Err(hint(text, "the number is not valid"));
            }
            let scale = 10u128.pow(frac.len() as u32);
            let frac: u128 = frac
                .parse()
                .map_err(|_| hint(text, "the number is not valid"))?;
            whole
                .saturating_mul(per_unit)
                .saturating_add(frac * per_unit / scale)
        } else {
            let whole: u128 = num
                .parse()
                .map_err(|_| hint(text, "the number is not valid"))?;
            whole.saturating_mul(per_unit)
        };
        total = total.saturating_add(nanos);
        rest = next;
    }
    if total > MAX_NANOS {
        return Err(format!(
            "{text:?} is longer than a year: no retry, timeout or breaker waits that long (tokio's timers stop at about 30 years, and the logs would report a delay that never happens); write at most \"8760h\""
        ));
    }
    Ok(total as u64)
}

/// The longest duration any key takes: a year (the runtime caps its delays there too).
const MAX_NANOS: u128 = 365 * 24 * 3_600_000_000_000;

fn hint(text: &str, why: &str) -> String {
    format!(
        "cannot read {text:?} as a duration ({why}); write a number and a unit, like \"250ms\", \"2s\", \"1.5s\" or \"1m\""
    )
}

/// Renders nanoseconds the way a user would write them (for messages).
pub fn show(nanos: u64) -> String {
    if nanos % 1_000_000_000 == 0 {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_common_forms() {
        assert_eq!(parse("250ms"), Ok(250_000_000));
        assert_eq!(parse("2s"), Ok(2_000_000_000));
        assert_eq!(parse("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse("0ms"), Ok(0));
        assert_eq!(parse("1_000ms"), Ok(1_000_000_000));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "",
            "2",
            "ms",
            "2 parsecs",
            "1.s",
            "1e3ms",
            "-1s",
            "99999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
