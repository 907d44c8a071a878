//! Key-value store (`get`/`read`, `put`/`write`, `append`, `cas [from to]`), partitioned by key.
//!
//! Each key is an independent register whose missing value equals `""` (so `nil` and `""`
//! reads are the same). `append` concatenates strings, or pushes onto a list. String
//! values are persistent chains of appended pieces with a rolling hash, so a step costs
//! O(piece), not O(value).

use super::{Encoded, Model, ModelError, arg, bad, effect, observe, pair, unknown_fn};
use crate::history::{HVal, Operation, Status};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A value with its hash and length precomputed (read results, cas arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flat {
    hash: u64,
    len: usize,
    val: HVal,
}

impl Flat {
    fn new(val: HVal) -> Flat {
        let val = norm(val);
        let (hash, len) = hash_len(&val);
        Flat { hash, len, val }
    }
}

/// The kv model's per-key input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvIn {
    /// Read the value.
    Get,
    /// Overwrite the value.
    Put(HVal),
    /// Append to the value (strings are kept shared).
    Append(Piece),
    /// Compare-and-set.
    Cas(Flat, HVal),
}

/// An appended value; strings are pre-shared so appending does not copy them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A string piece.
    Str(Arc<str>),
    /// Anything else (appended to a list).
    Other(HVal),
}

impl std::fmt::Display for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Piece::Str(s) => write!(f, "{}", HVal::Str(s.to_string())),
            Piece::Other(v) => write!(f, "{v}"),
        }
    }
}

/// The kv model's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOut {
    /// The value read.
    Read(Flat),
    /// Acknowledged.
    Ack,
    /// Whether the cas compare matched.
    CasDone(bool),
}

/// One key's value: a shared chain of appended pieces.
#[derive(Debug, Clone)]
pub struct KvState(Arc<Node>);

#[derive(Debug)]
struct Node {
    hash: u64,
    /// Byte length for strings; `usize::MAX` for other values.
    len: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Value(HVal),
    Append {
        parent: Option<KvState>,
        piece: Arc<str>,
    },
}

impl Drop for Node {
    fn drop(&mut self) {
        // Unlink long chains iteratively (no deep recursion).
        let mut next = match &mut self.kind {
            Kind::Append { parent, .. } => parent.take(),
            Kind::Value(_) => None,
        };
        while let Some(KvState(arc)) = next {
            match Arc::try_unwrap(arc) {
                Ok(mut node) => {
                    next = match &mut node.kind {
                        Kind::Append { parent, .. } => parent.take(),
                        Kind::Value(_) => None,
                    }
                }
                Err(_) => break,
            }
        }
    }
}

/// Polynomial rolling hash: `roll(roll(0, a), b) == roll(0, a + b)`.
fn roll(h: u64, s: &str) -> u64 {
    s.bytes().fold(h, |h, b| {
        h.wrapping_mul(0x100_0000_01b3)
            .wrapping_add(u64::from(b) + 1)
    })
}

fn hash_len(v: &HVal) -> (u64, usize) {
    match v {
        HVal::Str(s) => (roll(0, s), s.len()),
        other => {
            let mut h = rustc_hash::FxHasher::default();
            other.hash(&mut h);
            (h.finish(), usize::MAX)
        }
    }
}

fn norm(v: HVal) -> HVal {
    if v == HVal::Null {
        HVal::Str(String::new())
    } else {
        v
    }
}

impl KvState {
    fn from_value(v: HVal) -> KvState {
        let (hash, len) = hash_len(&v);
        KvState(Arc::new(Node {
            hash,
            len,
            kind: Kind::Value(v),
        }))
    }

    /// The value as one piece.
    pub fn value(&self) -> HVal {
        let mut pieces: Vec<&str> = Vec::new();
        let mut cur = self;
        loop {
            match &cur.0.kind {
                Kind::Append {
                    parent: Some(p),
                    piece,
                } => {
                    pieces.push(piece);
                    cur = p;
                }
                Kind::Append {
                    parent: None,
                    piece,
                } => {
                    pieces.push(piece);
                    break;
                }
                Kind::Value(HVal::Str(s)) => {
                    pieces.push(s);
                    break;
                }
                Kind::Value(v) => return v.clone(),
            }
        }
        let mut out = String::with_capacity(self.0.len);
        for p in pieces.iter().rev() {
            out.push_str(p);
        }
        HVal::Str(out)
    }

    fn matches(&self, f: &Flat) -> bool {
        self.0.hash == f.hash && self.0.len == f.len && self.value() == f.val
    }

    fn append(&self, piece: &Piece) -> KvState {
        match piece {
            Piece::Str(p) if self.0.len != usize::MAX => KvState(Arc::new(Node {
                hash: roll(self.0.hash, p),
                len: self.0.len + p.len(),
                kind: Kind::Append {
                    parent: Some(self.clone()),
                    piece: Arc::clone(p),
                },
            })),
            Piece::Str(p) => {
                KvState::from_value(append_other(self.value(), &HVal::Str(p.to_string())))
            }
            Piece::Other(v) => KvState::from_value(append_other(self.value(), v)),
        }
    }
}

fn append_other(s: HVal, v: &HVal) -> HVal {
    match (s, v) {
        (HVal::List(mut l), v) => {
            l.push(v.clone());
            HVal::List(l)
        }
        (HVal::Str(a), v) if a.is_empty() => HVal::List(vec![v.clone()]),
        (s, v) => HVal::Str(format!("{s}{v}")),
    }
}

impl PartialEq for KvState {
    fn eq(&self, o: &KvState) -> bool {
        if Arc::ptr_eq(&self.0, &o.0) {
            return true;
        }
        if self.0.hash != o.0.hash || self.0.len != o.0.len {
            return false;
        }
        // Same pieces, same parents: walk both chains while they line up.
        let (mut a, mut b) = (self, o);
        loop {
            if Arc::ptr_eq(&a.0, &b.0) {
                return true;
            }
            match (&a.0.kind, &b.0.kind) {
                (
                    Kind::Append {
                        parent: Some(pa),
                        piece: x,
                    },
                    Kind::Append {
                        parent: Some(pb),
                        piece: y,
                    },
                ) if x == y => {
                    a = pa;
                    b = pb;
                }
                _ => return a.value() == b.value(),
            }
        }
    }
}

impl Eq for KvState {}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.0.hash);
    }
}

/// The key-value model (checked one key at a time).
#[derive(Debug, Clone, Copy, Default)]
pub struct Kv;

impl Model for Kv {
    type State = KvState;
    type Input = KvIn;
    type Output = KvOut;
    fn name(&self) -> &'static str {
        "kv"
    }
    fn init(&self) -> KvState {
        KvState::from_value(HVal::Str(String::new()))
    }
    fn step(&self, s: &KvState, i: &KvIn, o: Option<&KvOut>) -> Option<KvState> {
        match i {
            KvIn::Get => match o {
                Some(KvOut::Read(f)) => s.matches(f).then(|| s.clone()),
                _ => Some(s.clone()),
            },
            KvIn::Put(v) => Some(KvState::from_value(v.clone())),
            KvIn::Append(v) => Some(s.append(v)),
            KvIn::Cas(from, to) => {
                let matched = s.matches(from);
                match o {
                    Some(KvOut::CasDone(ok)) if *ok != matched => None,
                    _ => Some(if matched {
                        KvState::from_value(to.clone())
                    } else {
                        s.clone()
                    }),
                }
            }
        }
    }
    fn encode(&self, op: &Operation) -> Result<Encoded<KvIn, KvOut>, ModelError> {
        if op.key.is_none() {
            return Err(ModelError::MissingKey {
                index: op.invoke,
                f: op.f.clone(),
            });
        }
        Ok(match op.f.as_str() {
            "get" | "read" | "r" => {
                observe(op, KvIn::Get, |v| Ok(KvOut::Read(Flat::new(HVal::from(v)))))?
            }
            "put" | "write" | "w" => effect(op, KvIn::Put(norm(HVal::from(arg(op)))), KvOut::Ack),
            "append" => {
                let piece = match HVal::from(arg(op)) {
                    HVal::Str(s) => Piece::Str(Arc::from(s)),
                    other => Piece::Other(other),
                };
                effect(op, KvIn::Append(piece), KvOut::Ack)
            }
            "cas" => {
                let v = arg(op);
                let (from, to) = pair(op, v).map_err(|_| bad(op, "[from to]", v))?;
                let input = KvIn::Cas(Flat::new(from), norm(to));
                match op.status {
                    Status::Ok => Encoded::Op {
                        input,
                        output: Some(KvOut::CasDone(true)),
                    },
                    Status::Fail => Encoded::Op {
                        input,
                        output: Some(KvOut::CasDone(false)),
                    },
                    Status::Pending => Encoded::Op {
                        input,
                        output: None,
                    },
                }
            }
            _ => return Err(unknown_fn(op, "kv")),
        })
    }
    fn partition(&self, op: &Operation) -> Option<HVal> {
        op.key.as_ref().map(HVal::from)
    }
    fn is_read_only(&self, i: &KvIn) -> bool {
        matches!(i, KvIn::Get)
    }
    fn describe(&self, i: &KvIn, o: Option<&KvOut>) -> String {
        let res = match o {
            None => "?".to_string(),
            Some(KvOut::Read(f)) => f.val.to_string(),
            Some(KvOut::Ack) => "ok".to_string(),
            Some(KvOut::CasDone(b)) => (if *b { "ok" } else { "fail" }).to_string(),
        };
        match i {
            KvIn::Get => format!("get() -> {res}"),
            KvIn::Put(v) => format!("put({v}) -> {res}"),
            KvIn::Append(v) => format!("append({v}) -> {res}"),
            KvIn::Cas(a, b) => format!("cas({}, {b}) -> {res}", a.val),
        }
    }
    fn describe_state(&self, s: &KvState) -> String {
        s.value().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_hash_composes_and_chains_compare_by_content() {
        assert_eq!(roll(roll(0, "ab"), "cd"), roll(0, "abcd"));
        let base = Kv.init();
        let piece = |s: &str| Piece::Str(Arc::from(s));
        let a = base.append(&piece("x")).append(&piece("y"));
        let b = KvState::from_value(HVal::Str("xy".into()));
        let c = base.append(&piece("y")).append(&piece("x"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.matches(&Flat::new(HVal::Str("xy".into()))));
        assert_eq!(a.value(), HVal::Str("xy".into()));
        // nil reads equal the empty initial value
        assert!(base.matches(&Flat::new(HVal::Null)));
    }

    #[test]
    fn long_chains_drop_without_recursion() {
        let mut s = Kv.init();
        for i in 0..200_000 {
            s = s.append(&Piece::Str(Arc::from(if i % 2 == 0 { "a" } else { "b" })));
        }
        assert_eq!(s.0.len, 200_000);
        drop(s);
    }
}
