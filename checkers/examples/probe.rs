use checkers::format::Format;
use checkers::model::Kv;
use checkers::{Budget, linearizable};
use std::time::Instant;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    let h = Format::Edn.parse(&text).unwrap();
    let ops = h.operations().unwrap();
    let mut keys: Vec<String> = ops.iter().map(|o| o.key.clone().unwrap().to_string()).collect();
    keys.sort(); keys.dedup();
    for k in keys.into_iter().rev() {
        let sub: Vec<_> = ops.iter().filter(|o| o.key.clone().unwrap().to_string() == k).cloned().collect();
        let t = Instant::now();
        let r = linearizable::check(&Kv, &sub, &Budget::with_max_steps(20_000_000)).unwrap();
        println!("key {k}: {} ops {:?} {:?}", sub.len(), r.verdict(), t.elapsed());
    }
}
