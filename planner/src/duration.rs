//! Duration strings as plans and scenario files write them (`50ms`, `10s`, `2m`, `1h`).

/// Parses `<integer><unit>` with unit `ms`, `s`, `m` or `h` into milliseconds; `None` if malformed.
pub fn parse_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_refuses_garbage() {
        let cases = [
            ("50ms", Some(50)),
            ("10s", Some(10_000)),
            ("2m", Some(120_000)),
            ("1h", Some(3_600_000)),
            (" 3s ", Some(3_000)),
            ("10", None),
            ("s", None),
            ("1.5s", None),
            ("10d", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_ms(text), want, "{text:?}");
        }
    }
}
