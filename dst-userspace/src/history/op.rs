//! One history operation: schema checks (`process`, `type`, `f` required; extra fields kept)
//! with errors that name the field, and parsing of request bodies (one op, an array, or JSONL).

use serde_json::{Map, Value};

use super::HistoryError;

/// The allowed values of `type`.
pub const OP_TYPES: [&str; 4] = ["invoke", "ok", "fail", "info"];

fn invalid(field: String, problem: impl Into<String>) -> HistoryError {
    HistoryError::Invalid {
        field,
        problem: problem.into(),
    }
}

/// Checks one operation and returns its fields. `index` is dropped (the recorder assigns it);
/// a caller-supplied `time` is kept as `client_time` (the recorder stamps `time` with
/// CLOCK_MONOTONIC, the clock of fault evidence).
pub fn normalize_op(at: &str, v: Value) -> Result<Map<String, Value>, HistoryError> {
    let Value::Object(mut m) = v else {
        return Err(invalid(
            at.to_string(),
            "an operation must be a JSON object",
        ));
    };
    match m.get("process") {
        Some(Value::Number(_) | Value::String(_)) => {}
        Some(other) => {
            return Err(invalid(
                format!("{at}.process"),
                format!("{other} must be a number or a string"),
            ));
        }
        None => return Err(invalid(format!("{at}.process"), "missing")),
    }
    match m.get("type") {
        Some(Value::String(t)) if OP_TYPES.contains(&t.as_str()) => {}
        Some(other) => {
            return Err(invalid(
                format!("{at}.type"),
                format!("{other} is not one of invoke|ok|fail|info"),
            ));
        }
        None => return Err(invalid(format!("{at}.type"), "missing")),
    }
    match m.get("f") {
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(invalid(
                format!("{at}.f"),
                format!("{other} must be a string"),
            ));
        }
        None => return Err(invalid(format!("{at}.f"), "missing")),
    }
    m.remove("index");
    if let Some(t) = m.remove("time") {
        m.insert("client_time".into(), t);
    }
    Ok(m)
}

/// Parses a request body: one JSON object, a JSON array of objects, or JSONL (one per line).
pub fn parse_ops(body: &[u8]) -> Result<Vec<Map<String, Value>>, HistoryError> {
    let values: Vec<(String, Value)> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("[{i}]"), v))
            .collect(),
        Ok(v) => vec![("op".to_string(), v)],
        Err(whole) => {
            let mut out = Vec::new();
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v = serde_json::from_slice(line).map_err(|e| {
                    invalid(
                        format!("line {}", i + 1),
                        format!("not JSON ({e}); the body as a whole: {whole}"),
                    )
                })?;
                out.push((format!("line {}", i + 1), v));
            }
            out
        }
    };
    if values.is_empty() {
        return Err(invalid("body".into(), "no operation given"));
    }
    values
        .into_iter()
        .map(|(at, v)| normalize_op(&at, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_and_named() {
        let err = |s: &str| match parse_ops(s.as_bytes()) {
            Err(HistoryError::Invalid { field, .. }) => field,
            other => panic!("{s}: expected an error, got {other:?}"),
        };
        assert_eq!(err(r#"{"type":"ok","f":"read"}"#), "op.process");
        assert_eq!(
            err(r#"[{"process":1,"type":"ok","f":"r"},{"process":1,"type":"done","f":"r"}]"#),
            "[1].type"
        );
        assert_eq!(err(r#"{"process":1,"type":"ok","f":3}"#), "op.f");
        assert_eq!(
            err("{\"process\":1,\"type\":\"ok\",\"f\":\"r\"}\nnope\n"),
            "line 2"
        );
        assert_eq!(err("[]"), "body");
    }

    #[test]
    fn extra_fields_kept_index_dropped_time_moved() {
        let ops = parse_ops(
            br#"{"index":9,"time":5,"process":"nemesis","type":"info","f":"start","value":[1],"fault":"x"}"#,
        )
        .unwrap();
        let m = &ops[0];
        assert!(m.get("index").is_none() && m.get("time").is_none());
        assert_eq!(m["client_time"], 5);
        assert_eq!(m["fault"], "x");
        let jsonl = parse_ops(b"{\"process\":1,\"type\":\"invoke\",\"f\":\"w\"}\n{\"process\":1,\"type\":\"ok\",\"f\":\"w\"}\n").unwrap();
        assert_eq!(jsonl.len(), 2);
    }
}
