//! Hedge percentiles as the attribute and the live configuration write them: `"p95"`,
//! `"p99.9"` (the text after the `p`), parsed into tenths of a percent.

/// `"95"`, `"99.9"` (after the `p`): tenths of a percent, from p50 to p99.9.
pub fn parse(text: &str) -> Result<u16, String> {
    let hint = "write a percentile from p50 to p99.9, like \"p95\", \"p99\" or \"p99.9\"";
    let (whole, tenth) = match text.split_once('.') {
        Some((w, t)) if t.len() == 1 => (w, t),
        Some(_) => return Err(format!("percentiles take at most one decimal; {hint}")),
        None => (text, "0"),
    };
    let parsed = whole
        .parse::<u16>()
        .ok()
        .zip(tenth.parse::<u16>().ok())
        .filter(|_| !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()));
    let Some((whole, tenth)) = parsed else {
        return Err(format!("not a percentile; {hint}"));
    };
    let permille = whole.saturating_mul(10).saturating_add(tenth);
    if !(500..=999).contains(&permille) {
        return Err(format!(
            "p{} is outside p50–p99.9 (below the median a hedge would double most calls; p100 is the slowest call, never reached); {hint}",
            text
        ));
    }
    Ok(permille)
}
