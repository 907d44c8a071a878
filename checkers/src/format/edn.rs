//! Jepsen EDN import/export: a small parser for the EDN subset histories use
//! (maps, vectors, lists, sets, keywords, strings, numbers, nil, booleans, tagged ops).
//!
//! Keywords become strings without their colon (Jepsen's own JSON convention).

use super::FormatError;
use crate::history::{History, Op, OpType, Process};
use serde_json::{Map, Number, Value};

/// Parses EDN text: a sequence of op maps, or vectors/lists of op maps.
pub fn parse(text: &str) -> Result<History, FormatError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut ops = Vec::new();
    loop {
        p.skip_ws();
        if p.pos >= p.s.len() {
            break;
        }
        let line = p.line;
        match p.form()? {
            Value::Array(items) => {
                for item in items {
                    ops.push(op_from(item, line)?);
                }
            }
            v => ops.push(op_from(v, line)?),
        }
    }
    Ok(History::new(ops))
}

/// Parses one EDN value (e.g. a `:value` field) into JSON.
pub fn parse_value(text: &str) -> Result<Value, FormatError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    p.form()
}

fn op_from(v: Value, line: usize) -> Result<Op, FormatError> {
    let err = |m: &str| FormatError::EdnOp {
        line,
        message: m.to_string(),
    };
    let Value::Object(mut m) = v else {
        return Err(err("is not a map"));
    };
    let process = match m.remove("process") {
        Some(Value::Number(n)) => Process::Id(
            n.as_i64()
                .ok_or_else(|| err(":process is not an integer"))?,
        ),
        Some(Value::String(s)) => Process::Name(s),
        _ => return Err(err("has no :process")),
    };
    let kind = match m.remove("type") {
        Some(Value::String(s)) => OpType::parse(&s)
            .ok_or_else(|| err(&format!(":type {s} is not invoke/ok/fail/info")))?,
        _ => return Err(err("has no :type")),
    };
    let f = match m.remove("f") {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => return Err(err("has no :f")),
    };
    let time = m.get("time").and_then(Value::as_i64);
    let key = m.remove("key");
    let value = m.remove("value").unwrap_or(Value::Null);
    Ok(Op {
        index: None,
        time,
        process,
        kind,
        f,
        key,
        value,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn err(&self, m: impl Into<String>) -> FormatError {
        FormatError::EdnSyntax {
            line: self.line,
            message: m.into(),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | b',' => self.pos += 1,
                b';' => {
                    while self.pos < self.s.len() && self.s[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn form(&mut self) -> Result<Value, FormatError> {
        self.skip_ws();
        let Some(&c) = self.s.get(self.pos) else {
            return Err(self.err("unexpected end of input"));
        };
        match c {
            b'{' => {
                self.pos += 1;
                let items = self.seq(b'}')?;
                if items.len() % 2 != 0 {
                    return Err(self.err("map with an odd number of forms"));
                }
                let mut m = Map::new();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    let k = match k {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    m.insert(k, v);
                }
                Ok(Value::Object(m))
            }
            b'[' => {
                self.pos += 1;
                Ok(Value::Array(self.seq(b']')?))
            }
            b'(' => {
                self.pos += 1;
                Ok(Value::Array(self.seq(b')')?))
            }
            b'"' => self.string(),
            b'#' => {
                self.pos += 1;
                match self.s.get(self.pos) {
                    Some(b'{') => {
                        self.pos += 1;
                        Ok(Value::Array(self.seq(b'}')?))
                    }
                    Some(b'_') => {
                        self.pos += 1;
                        self.form()?;
                        self.form()
                    }
                    _ => {
                        // Tagged literal (#inst, #jepsen.history.Op{...}): keep the form.
                        self.token();
                        self.form()
                    }
                }
            }
            b')' | b']' | b'}' => Err(self.err(format!("unexpected '{}'", c as char))),
            _ => {
                let tok = self.token();
                if tok.is_empty() {
                    return Err(self.err(format!("unexpected character '{}'", c as char)));
                }
                Ok(atom(tok))
            }
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Value>, FormatError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.s.get(self.pos) {
                None => return Err(self.err(format!("missing '{}'", close as char))),
                Some(&c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.form()?),
            }
        }
    }

    fn token(&mut self) -> &str {
        let start = self.pos;
        while let Some(&c) = self.s.get(self.pos) {
            if c.is_ascii_whitespace()
                || b",{}[]()\"#;".contains(&c) && !(c == b'#' && self.pos > start)
            {
                break;
            }
            self.pos += 1;
        }
        std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("")
    }

    fn string(&mut self) -> Result<Value, FormatError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self
                        .s
                        .get(self.pos)
                        .ok_or_else(|| self.err("unterminated string"))?;
                    self.pos += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                b'\n' => {
                    self.line += 1;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out)
            .map(Value::String)
            .map_err(|_| self.err("string is not UTF-8"))
    }
}

fn atom(tok: &str) -> Value {
    match tok {
        "nil" => return Value::Null,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Some(k) = tok.strip_prefix(':') {
        return Value::String(k.to_string());
    }
    let num = tok.trim_end_matches(['N', 'M']);
    if let Ok(i) = num.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = num.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(tok.to_string())
}

/// Writes a history as EDN, one op map per line. `type`/`f` and the function of each
/// transaction micro-op are written as keywords.
pub fn export(history: &History) -> String {
    let mut out = String::new();
    for (i, op) in history.ops.iter().enumerate() {
        out.push_str(&format!("{{:index {}", op.index.unwrap_or(i as u64)));
        if let Some(t) = op.time {
            out.push_str(&format!(", :time {t}"));
        }
        let process = match &op.process {
            Process::Id(n) => n.to_string(),
            Process::Name(s) => format!(":{s}"),
        };
        out.push_str(&format!(
            ", :process {process}, :type :{}, :f :{}",
            op.kind.as_str(),
            op.f
        ));
        if let Some(k) = &op.key {
            out.push_str(", :key ");
            write_value(&mut out, k, false);
        }
        out.push_str(", :value ");
        write_value(&mut out, &op.value, op.f == "txn");
        out.push_str("}\n");
    }
    out
}

fn write_value(out: &mut String, v: &Value, txn: bool) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&serde_json::to_string(s).expect("string")),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                match x {
                    // A micro-op [f k v]: its f is a keyword.
                    Value::Array(mop) if txn && !mop.is_empty() && mop[0].is_string() => {
                        out.push_str(&format!("[:{}", mop[0].as_str().unwrap_or("")));
                        for y in &mop[1..] {
                            out.push(' ');
                            write_value(out, y, false);
                        }
                        out.push(']');
                    }
                    _ => write_value(out, x, false),
                }
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&format!(":{k} "));
                write_value(out, x, false);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoms_and_collections() {
        assert_eq!(parse_value("nil").unwrap(), Value::Null);
        assert_eq!(parse_value(":timed-out").unwrap(), Value::from("timed-out"));
        assert_eq!(
            parse_value("[1 -2 3N 1.5]").unwrap(),
            serde_json::json!([1, -2, 3, 1.5])
        );
        assert_eq!(parse_value("#{1}").unwrap(), serde_json::json!([1]));
        assert_eq!(
            parse_value(r#"{:a "x\"y", :b (1 2)}"#).unwrap(),
            serde_json::json!({"a": "x\"y", "b": [1, 2]})
        );
        assert_eq!(parse_value("#_ 5 6").unwrap(), Value::from(6));
        assert!(parse_value("[1 2").is_err());
        assert!(parse_value("\"open").is_err());
    }
}
