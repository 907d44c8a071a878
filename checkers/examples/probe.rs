use checkers::format::Format;
use checkers::model::CasRegister;
use checkers::{Budget, linearizable};
use std::time::Instant;
fn main() {
    for p in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&p).unwrap();
        let h = Format::PorcupineEtcd.parse(&text).unwrap();
        let ops = h.operations().unwrap();
        let t = Instant::now();
        let r = linearizable::check(&CasRegister, &ops, &Budget::unlimited()).unwrap();
        println!(
            "{p}: {} ops ({} pending) {:?} {:?}",
            ops.len(),
            ops.iter().filter(|o| o.is_pending()).count(),
            r.verdict(),
            t.elapsed()
        );
    }
}
