//! JUnit XML in (a runner's per-batch results) and out (the merged report).
pub mod escape;
pub mod id;
pub mod prepass;
pub mod read;
pub mod timestamp;
pub mod write;

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use crate::model::{FinalStatus, Outcome, TestAttempt, TestRecord};

    /// CPU time of the calling thread, for timing checks that must not fail
    /// because other tests share the machine.
    pub(super) fn thread_cpu_time() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the timespec we pass it.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// A large run round-trips, and in release builds both directions stay
    /// within a generous bound for 20,000 tests. Debug builds check the
    /// same at a tenth of the size without timing (they are ~10x slower).
    /// `read::tests::parse_speed` measures the reader alone.
    #[test]
    fn twenty_thousand_tests_round_trip_fast() {
        let n = if cfg!(debug_assertions) {
            2_000
        } else {
            20_000
        };
        let records: Vec<TestRecord> = (0..n)
            .map(|i| {
                let outcome = if i % 50 == 0 {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                };
                let attempts = vec![TestAttempt {
                    outcome,
                    duration: Duration::from_micros(i as u64 * 37),
                    message: (outcome == Outcome::Failed).then(|| format!("assert {i} == 0")),
                    details: (outcome == Outcome::Failed).then(|| {
                        format!(
                            "Traceback:\n  File \"tests/test_{}.py\", line 3\nAssertionError",
                            i / 100
                        )
                    }),
                    system_out: (i % 10 == 0)
                        .then(|| "some output <with> markup & stuff\n".repeat(3)),
                    system_err: None,
                    batch: i / 100 + 1,
                    started: None,
                    location: None,
                }];
                TestRecord {
                    id: format!(
                        "tests/test_{}.py::TestClass::test_case_{i}[param-{}]",
                        i / 100,
                        i % 7
                    ),
                    group: format!("group{}", i % 3),
                    status: TestRecord::status_from_attempts(&attempts),
                    attempts,
                    not_run_reason: None,
                }
            })
            .collect();

        // CPU time of this thread, not wall time: two test threads sharing
        // a loaded CI machine must not make this fail.
        let start = thread_cpu_time();
        let xml = super::write::render(&records, Duration::from_secs(60));
        let write_time = thread_cpu_time() - start;
        let start = thread_cpu_time();
        let cases = super::read::parse(&xml).expect("parses");
        let read_time = thread_cpu_time() - start;

        assert_eq!(cases.len(), n);
        let failed = cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .count();
        assert_eq!(failed, n / 50);
        assert_eq!(
            records
                .iter()
                .filter(|r| r.status == FinalStatus::Failed)
                .count(),
            failed
        );
        let ids: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        assert!(cases.iter().all(|c| ids.contains(c.name.as_str())));
        eprintln!(
            "{n} tests, {} KB: render {write_time:?}, parse {read_time:?}",
            xml.len() / 1024
        );
        if !cfg!(debug_assertions) {
            // Measured on a busy 2-core box (2.5 MB): render 12-25 ms, parse
            // 65-80 ms of CPU (xml-rs, which allocates per event, is ~90% of
            // it; the hand-written tokenizer it replaced took 9-13 ms). The
            // bounds leave room for such a box while still catching anything
            // quadratic.
            assert!(
                write_time < Duration::from_millis(60),
                "render took {write_time:?}"
            );
            assert!(
                read_time < Duration::from_millis(250),
                "parse took {read_time:?}"
            );
        }
    }

    /// Random strings of awkward characters survive write → read: IDs and
    /// messages exactly (after the documented clean-up of characters XML
    /// cannot carry), details up to surrounding whitespace.
    #[test]
    fn awkward_strings_round_trip() {
        const PALETTE: &[char] = &[
            'a', 'Z', '0', ' ', '\t', '\n', '\r', '"', '\'', '<', '>', '&', ';', '#', ']', '[',
            '3', 'm', '\x00', '\x07', '\x1b', '\x7f', 'é', '日', '🎉', '\u{85}', '\u{2028}',
            '\u{FFFE}', '\u{FFFF}', '\u{FFFD}', '\u{E000}',
        ];
        let mut seed: u64 = 0x5eed;
        let mut random_string = |max_len: u64| -> String {
            let mut next = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                seed >> 33
            };
            let len = next() % max_len;
            (0..len)
                .map(|_| PALETTE[(next() % PALETTE.len() as u64) as usize])
                .collect()
        };
        let records: Vec<TestRecord> = (0..300)
            .map(|i| {
                let attempts = vec![TestAttempt {
                    outcome: Outcome::Failed,
                    duration: Duration::from_millis(i),
                    message: Some(random_string(30)),
                    details: Some(random_string(60)),
                    system_out: Some(random_string(60)),
                    system_err: None,
                    batch: 1,
                    started: None,
                    location: None,
                }];
                TestRecord {
                    // Unique even if the random part is empty.
                    id: format!("{i}:{}", random_string(40)),
                    group: random_string(10),
                    status: TestRecord::status_from_attempts(&attempts),
                    attempts,
                    not_run_reason: None,
                }
            })
            .collect();
        let cases = super::read::parse(&super::write::render(&records, Duration::ZERO))
            .expect("valid XML whatever the strings");
        assert_eq!(cases.len(), records.len());
        let clean = |s: &str| super::escape::sanitize(s).into_owned();
        for case in &cases {
            // The report groups tests by group, so find each by its prefix.
            let i: usize = case.name.split(':').next().unwrap().parse().unwrap();
            let record = &records[i];
            let a = &record.attempts[0];
            assert_eq!(case.name, clean(&record.id));
            let group = clean(&record.group);
            assert_eq!(case.classname, Some(group).filter(|g| !g.is_empty()));
            let message = clean(a.message.as_deref().unwrap());
            assert_eq!(
                case.message,
                Some(message).filter(|m| !m.is_empty()),
                "{:?}",
                record.id
            );
            let details = super::read::tidy(&clean(a.details.as_deref().unwrap()));
            assert_eq!(case.details, details, "{:?}", record.id);
            let out = super::read::tidy(&clean(a.system_out.as_deref().unwrap()));
            assert_eq!(case.system_out, out, "{:?}", record.id);
        }
    }
}

#[cfg(test)]
mod fuzz_tests;
