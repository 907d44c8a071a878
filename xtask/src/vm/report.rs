//! Results of the guests: the console lines parsed into a per-test outcome, the probe each
//! guest reported, and the kernel × test summary table (stdout and target/vm/summary.md).

use std::{collections::BTreeMap, fmt::Write as _};

use super::initramfs::{BEGIN, DONE, PROBE_BEGIN, PROBE_END, RESULT};

/// One test's outcome in one guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Failed, then passed when run again in the same guest.
    Flaky,
    Failed,
    /// Passed but printed `SKIP:` (the probe said the mechanism is missing).
    Skip,
    /// Never started (the guest died or timed out before it), or the filter matched nothing.
    NotRun,
    /// Running when the deadline passed.
    TimedOut,
}

impl Outcome {
    fn cell(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Flaky => "ok (flaky: failed once)",
            Outcome::Failed => "FAILED",
            Outcome::Skip => "SKIP",
            Outcome::NotRun => "not-run",
            Outcome::TimedOut => "FAILED (timeout)",
        }
    }
}

/// What one guest said, parsed from its console as it streams.
#[derive(Debug, Default)]
pub struct Guest {
    pub results: BTreeMap<String, Outcome>,
    running: Option<String>,
    probe_text: Option<String>,
    pub probe: Option<serde_json::Value>,
    pub done: bool,
    pub release: Option<String>,
}

impl Guest {
    /// Feeds one console line.
    pub fn line(&mut self, line: &str) {
        if let Some(text) = self.probe_text.as_mut() {
            if line.contains(PROBE_END) {
                self.probe = serde_json::from_str(text).ok();
                self.probe_text = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
            return;
        }
        if line.contains(PROBE_BEGIN) {
            self.probe_text = Some(String::new());
        } else if let Some(rest) = after(line, "DSTVM-KERNEL ") {
            self.release = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some(t) = after(line, &format!("{BEGIN} ")) {
            self.running = Some(t.trim().to_owned());
        } else if let Some(rest) = after(line, &format!("{RESULT} ")) {
            let mut parts = rest.split_whitespace();
            if let (Some(t), Some(r)) = (parts.next(), parts.next()) {
                let o = match r {
                    "ok" => Outcome::Ok,
                    "flaky" => Outcome::Flaky,
                    "SKIP" => Outcome::Skip,
                    "not-run" => Outcome::NotRun,
                    _ => Outcome::Failed,
                };
                self.results.insert(t.to_owned(), o);
                self.running = None;
            }
        } else if line.contains(DONE) {
            self.done = true;
        }
    }

    /// After a timeout: the running test timed out.
    pub fn timed_out(&mut self) {
        if let Some(t) = self.running.take() {
            self.results.insert(t, Outcome::TimedOut);
        }
    }

    /// Whether the guest's probe says `mechanism` is available.
    pub fn has(&self, mechanism: &str) -> bool {
        self.probe
            .as_ref()
            .and_then(|p| p[mechanism]["available"].as_bool())
            .unwrap_or(false)
    }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

/// `(kernel, test, reason)` failures known on a kernel (see `vm::KNOWN`).
pub type Known<'a> = &'a [(&'a str, &'a str, &'a str)];

fn is_known(known: Known<'_>, kernel: &str, test: &str) -> bool {
    known.iter().any(|(k, t, _)| *k == kernel && *t == test)
}

/// The Markdown table: one row per test, one column per kernel.
pub fn table(kernels: &[(String, Guest)], tests: &[String], known: Known<'_>) -> String {
    let mut s = String::from("| test |");
    for (k, g) in kernels {
        let _ = write!(s, " {k} ({}) |", g.release.as_deref().unwrap_or("?"));
    }
    s.push_str("\n|---|");
    for _ in kernels {
        s.push_str("---|");
    }
    s.push('\n');
    for t in tests {
        let _ = write!(s, "| `{t}` |");
        for (k, g) in kernels {
            let o = g.results.get(t).copied().unwrap_or(Outcome::NotRun);
            let known = if is_known(known, k, t) {
                " (known)"
            } else {
                ""
            };
            let _ = write!(s, " {}{known} |", o.cell());
        }
        s.push('\n');
    }
    s
}

/// Problems that make the tier fail: failures, timeouts, a guest that never finished, and an
/// `lsm::`/`edt::` test that skipped although the guest's probe has the mechanism. A failure
/// listed in `known` is not a problem; its passing is reported on stderr.
pub fn problems(kernels: &[(String, Guest)], tests: &[String], known: Known<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, g) in kernels {
        if !g.done {
            out.push(format!(
                "kernel {k}: the guest did not finish its test list"
            ));
        }
        for t in tests {
            match g.results.get(t).copied().unwrap_or(Outcome::NotRun) {
                Outcome::Failed if is_known(known, k, t) => {}
                Outcome::Ok if is_known(known, k, t) => eprintln!(
                    "xtask: vm: {t} passed on {k} although listed as a known failure: remove it from vm::KNOWN"
                ),
                Outcome::Failed => out.push(format!("kernel {k}: {t} FAILED")),
                Outcome::TimedOut => out.push(format!("kernel {k}: {t} timed out")),
                Outcome::Skip => {
                    let needs = if t.starts_with("lsm::") {
                        Some("lsm")
                    } else if t.starts_with("edt::") {
                        Some("fq")
                    } else {
                        None
                    };
                    if let Some(m) = needs.filter(|m| g.has(m)) {
                        out.push(format!(
                            "kernel {k}: {t} skipped although the probe reports {m} available"
                        ));
                    }
                }
                Outcome::Ok | Outcome::Flaky | Outcome::NotRun => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(lines: &[&str]) -> Guest {
        let mut g = Guest::default();
        for l in lines {
            g.line(l);
        }
        g
    }

    #[test]
    fn console_lines_become_outcomes() {
        let g = guest(&[
            "DSTVM-KERNEL 6.1.0-56-amd64 lsm=lockdown,bpf",
            "DSTVM-PROBE-BEGIN",
            "{\"lsm\": {\"available\": true},",
            "\"fq\": {\"available\": false}}",
            "DSTVM-PROBE-END",
            "DSTVM-BEGIN net::a",
            "[  3.1] kernel noise DSTVM-RESULT net::a ok",
            "DSTVM-BEGIN lsm::b",
            "DSTVM-RESULT lsm::b SKIP",
            "DSTVM-BEGIN edt::c",
            "DSTVM-RESULT edt::c SKIP",
            "DSTVM-RESULT net::f flaky",
            "DSTVM-BEGIN sys::d",
        ]);
        assert_eq!(g.release.as_deref(), Some("6.1.0-56-amd64"));
        assert!(g.has("lsm") && !g.has("fq"));
        assert_eq!(g.results["net::a"], Outcome::Ok);
        assert_eq!(g.results["net::f"], Outcome::Flaky);
        let mut g = g;
        g.timed_out();
        assert_eq!(g.results["sys::d"], Outcome::TimedOut);
        let tests: Vec<String> = ["net::a", "lsm::b", "edt::c", "sys::d", "sys::e"]
            .map(String::from)
            .to_vec();
        let ks = vec![("6.1".to_string(), g)];
        let p = problems(&ks, &tests, &[]);
        // lsm skipped with lsm available; sys::d timed out; not done. edt skip is fine (no fq).
        assert_eq!(p.len(), 3, "{p:?}");
        let t = table(&ks, &tests, &[]);
        assert!(t.contains("| `sys::e` | not-run |"), "{t}");
        assert!(t.contains("| `lsm::b` | SKIP |"), "{t}");
    }

    #[test]
    fn a_known_failure_is_marked_and_does_not_fail_the_tier() {
        let mut g = guest(&[
            "DSTVM-KERNEL 6.1.0",
            "DSTVM-RESULT sys::k FAILED",
            "DSTVM-DONE",
        ]);
        g.done = true;
        let ks = vec![("6.1".to_string(), g)];
        let tests = vec!["sys::k".to_string()];
        let known: Known<'_> = &[("6.1", "sys::k", "a dst bug")];
        assert!(problems(&ks, &tests, known).is_empty());
        assert_eq!(problems(&ks, &tests, &[]).len(), 1);
        assert!(table(&ks, &tests, known).contains("| FAILED (known) |"));
    }
}
