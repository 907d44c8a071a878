//! [`HVal`]: a hashable, totally ordered copy of a JSON value, used as model state.

use serde_json::Value;
use std::fmt;

/// A JSON value that can live in hash sets and model states (floats kept by bit pattern).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HVal {
    /// `null` / `nil`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A non-integer number, by its textual form.
    Num(String),
    /// A string (EDN keywords arrive here without their colon).
    Str(String),
    /// A list or vector.
    List(Vec<HVal>),
    /// A map, entries sorted by key.
    Map(Vec<(String, HVal)>),
}

impl From<&Value> for HVal {
    fn from(v: &Value) -> HVal {
        match v {
            Value::Null => HVal::Null,
            Value::Bool(b) => HVal::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => HVal::Int(i),
                None => HVal::Num(n.to_string()),
            },
            Value::String(s) => HVal::Str(s.clone()),
            Value::Array(a) => HVal::List(a.iter().map(HVal::from).collect()),
            Value::Object(m) => {
                let mut e: Vec<(String, HVal)> =
                    m.iter().map(|(k, v)| (k.clone(), HVal::from(v))).collect();
                e.sort();
                HVal::Map(e)
            }
        }
    }
}

impl HVal {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            HVal::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Converts back to JSON.
    pub fn to_json(&self) -> Value {
        match self {
            HVal::Null => Value::Null,
            HVal::Bool(b) => Value::Bool(*b),
            HVal::Int(i) => Value::from(*i),
            HVal::Num(s) => s.parse::<f64>().map(Value::from).unwrap_or(Value::Null),
            HVal::Str(s) => Value::String(s.clone()),
            HVal::List(l) => Value::Array(l.iter().map(HVal::to_json).collect()),
            HVal::Map(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

impl fmt::Display for HVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}
