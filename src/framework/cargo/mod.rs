//! cargo (alias nextest): discovery with `cargo nextest list`, batches with
//! `cargo nextest run` and a filterset naming exactly the batch's tests.
//!
//! The project's own `.config/nextest.toml` stays in force: the batch adds a
//! profile `offload` through nextest's tool-config mechanism (lower priority
//! than the repository's config, and inheriting its `default` profile) whose
//! only setting is where to write JUnit. The tool config is written by the
//! batch script itself, next to the result file, so it exists wherever the
//! batch runs — in a remote sandbox too.

mod filterset;
mod inputs;
mod list;
mod reuse;

use std::path::PathBuf;

use super::{
    format_test_id, match_exact, BatchCommand, Discovery, DiscoveryInputs, Framework, Hints,
    MatchedResults, RanBatch, ResultLocation,
};
use crate::cancel::Cancel;
use crate::config::{CargoConfig, GroupConfig};
use crate::error::{Error, Result};
use crate::junit::read::JunitCase;
use crate::process::{shell_quote, LineSink};

/// The nextest profile Offload adds; it inherits the project's `default`.
const PROFILE: &str = "offload";

pub struct CargoFramework {
    config: CargoConfig,
    working_dir: PathBuf,
}

impl CargoFramework {
    pub fn new(config: CargoConfig, working_dir: PathBuf) -> Self {
        CargoFramework {
            config,
            working_dir,
        }
    }

    /// Options that choose what is built and listed, shared by list and run.
    fn selection_options(&self) -> String {
        let mut s = self.build_options();
        if self.config.include_ignored {
            s.push_str(" --run-ignored all");
        }
        s
    }

    /// The options of [`CargoFramework::selection_options`] that choose what
    /// is built (a reused build has chosen already).
    fn build_options(&self) -> String {
        let mut s = String::new();
        if let Some(p) = &self.config.package {
            s.push_str(&format!(" -p {}", shell_quote(p)));
        }
        if !self.config.features.is_empty() {
            s.push_str(&format!(
                " --features {}",
                shell_quote(&self.config.features.join(","))
            ));
        }
        if let Some(b) = &self.config.bin {
            s.push_str(&format!(" --bin {}", shell_quote(b)));
        }
        s
    }

    /// Keep what the batches need to run the listed build without cargo
    /// ([`reuse`]); `None` (with a warning) when that cannot be done: the
    /// batches then build as `cargo nextest run` does.
    fn keep_build(
        &self,
        group: &GroupConfig,
        build: &list::Build,
        cancel: &Cancel,
        warnings: &mut Vec<String>,
    ) -> Option<reuse::Reuse> {
        let (Some(binaries), Some(target)) = (&build.binaries_metadata, &build.target_dir) else {
            return None;
        };
        let script = "cargo metadata --format-version 1 --all-features --no-deps";
        let out = super::run_discovery(
            group,
            "cargo metadata",
            script,
            &self.working_dir,
            &[],
            cancel,
            None,
        )
        .ok()
        .filter(|o| o.success());
        let Some(out) = out else {
            warnings.push(format!(
                "group `{}`: `{script}` failed: every batch checks the build again",
                group.name
            ));
            return None;
        };
        match reuse::store(target, binaries, out.stdout().trim(), &self.working_dir) {
            Ok(r) => Some(r),
            Err(e) => {
                warnings.push(format!(
                    "group `{}`: cannot keep the build's metadata in {}: {}; every batch checks the build again",
                    group.name,
                    target.display(),
                    crate::error::io_message(&e)
                ));
                None
            }
        }
    }

    fn discovery_script(&self, group: &GroupConfig) -> String {
        // The profile batches inherit from: a `NEXTEST_PROFILE` in the
        // environment (nextest sets it for the tests it runs, so it leaks into
        // any nested use) must not choose another one.
        let mut s = format!(
            "cargo nextest list --message-format json --profile default{}",
            self.selection_options()
        );
        let filters = group.filters.trim();
        if !filters.is_empty() {
            // Shell syntax chosen by the user (`-E 'test(/slow/)'`): inserted as is.
            s.push(' ');
            s.push_str(filters);
        }
        s
    }
}

impl Framework for CargoFramework {
    fn discover(
        &self,
        group: &GroupConfig,
        cancel: &Cancel,
        output: Option<&LineSink>,
    ) -> Result<Discovery> {
        let script = self.discovery_script(group);
        let out = super::run_discovery(
            group,
            "cargo nextest list",
            &script,
            &self.working_dir,
            &[],
            cancel,
            output,
        )?;
        let stderr = out.stderr();
        if !out.success() {
            let hint = if stderr.contains("no such command") && stderr.contains("nextest") {
                "cargo-nextest is not installed: `cargo install cargo-nextest --locked` (or see https://nexte.st)"
            } else {
                "run the command by hand in the working directory to see why"
            };
            let shown = if stderr.trim().is_empty() {
                out.tail(30)
            } else {
                crate::text::last_lines(&stderr, 30)
            };
            return Err(Error::new(format!(
                "group `{}`: cargo nextest list failed ({})\n  command: {script}\n  in: {}\n{}\n  {hint}",
                group.name,
                out.describe_ending(None),
                self.working_dir.display(),
                super::indent(&shown),
            )));
        }
        let stdout = out.stdout();
        let ids = list::parse(&stdout).map_err(|e| {
            Error::new(format!(
                "group `{}`: cannot read the output of cargo nextest list: {e}\n  command: {script}\n{}",
                group.name,
                super::indent(&crate::text::last_lines(&stdout, 10)),
            ))
        })?;
        let mut warnings = Vec::new();
        let build = list::build(&stdout);
        let reuse = self.keep_build(group, &build, cancel, &mut warnings);
        let mut products = build.binaries;
        if let Some(r) = &reuse {
            products.push(r.binaries_metadata.clone());
            products.push(r.cargo_metadata.clone());
        }
        if ids.is_empty() {
            warnings.push(format!(
                "group `{}`: cargo nextest list found no tests (filters: {})",
                group.name,
                if group.filters.trim().is_empty() {
                    "none"
                } else {
                    group.filters.trim()
                }
            ));
        }
        Ok(Discovery {
            ids,
            runner_ids: None,
            warnings,
            for_batches: reuse.map(|r| r.encode()),
            products,
        })
    }

    /// `cargo nextest list` first builds the test binaries: said so, as that
    /// is where the time goes on a fresh checkout.
    fn discovery_command(&self, group: &GroupConfig) -> String {
        format!(
            "{} (building the test binaries first)",
            self.discovery_script(group)
        )
    }

    /// With discovery's build ([`reuse`]), the batch runs its binaries
    /// where it can, without cargo; otherwise `cargo nextest run` builds.
    fn batch_command(
        &self,
        tests: &[String],
        result_file: &str,
        from_discovery: Option<&str>,
    ) -> BatchCommand {
        let (choose, options) = match from_discovery.and_then(reuse::Reuse::decode) {
            Some(r) => (
                r.choose_script(&self.build_options()),
                format!(
                    " \"$@\"{}",
                    if self.config.include_ignored {
                        " --run-ignored all"
                    } else {
                        ""
                    }
                ),
            ),
            None => (String::new(), self.selection_options()),
        };
        let script = format!(
            "rf={rf}\n\
             case \"$rf\" in /*) ;; *) rf=\"$PWD/$rf\" ;; esac\n\
             mkdir -p \"$(dirname \"$rf\")\"\n\
             cat > \"$rf.nextest.toml\" <<OFFLOAD_NEXTEST_TOML\n\
             # Written by Offload: JUnit output on top of the project's own nextest config.\n\
             [profile.{PROFILE}.junit]\n\
             path = '''$rf'''\n\
             OFFLOAD_NEXTEST_TOML\n\
             {choose}\
             cargo nextest run --no-fail-fast --profile {PROFILE} --tool-config-file \"offload:$rf.nextest.toml\"{options} -E {expr}\n\
             status=$?\n\
             rm -f \"$rf.nextest.toml\"\n\
             exit $status",
            rf = shell_quote(result_file),
            expr = shell_quote(&filterset::for_ids(tests)),
        );
        BatchCommand {
            script,
            results: ResultLocation::ResultFile,
        }
    }

    /// `        PASS [   0.009s] ( 1/12) alpha tests::adds`, as nextest prints
    /// each finished test (the counter is optional).
    fn live_result<'l>(&self, line: &'l str) -> Option<(&'l str, crate::model::Outcome)> {
        use crate::model::Outcome;
        let line = line.trim();
        let (status, rest) = line.split_once(" [")?;
        let outcome = match status {
            "PASS" | "FLAKY" | "LEAK" => Outcome::Passed,
            "SKIP" => Outcome::Skipped,
            "FAIL" | "TIMEOUT" | "ABORT" | "LEAK-FAIL" => Outcome::Failed,
            s if s.starts_with("SIG") && s.len() > 3 => Outcome::Failed,
            _ => return None,
        };
        let (_, rest) = rest.split_once("] ")?;
        let rest = match rest.strip_prefix('(') {
            Some(counted) => counted.split_once(") ")?.1,
            None => rest,
        };
        rest.contains(' ').then_some((rest, outcome))
    }

    fn match_results(&self, cases: Vec<JunitCase>, expected: &[String]) -> MatchedResults {
        // nextest writes classname = binary ID, name = test name.
        let mut matched = match_exact(cases, expected, |c| format_test_id("{classname} {name}", c));
        for (_, attempt) in &mut matched.matched {
            if let Some(message) = attempt.details.as_deref().and_then(panic_message) {
                attempt.message = Some(message);
            }
            if let Some(location) = attempt.details.as_deref().and_then(panic_location) {
                attempt.location = Some(Box::new(location));
            }
        }
        matched
    }

    fn discovery_inputs(&self, group: &GroupConfig) -> Option<DiscoveryInputs> {
        Some(inputs::discovery_inputs(
            &self.discovery_script(group),
            &self.working_dir,
        ))
    }

    /// nextest runs every test its filterset names (`--no-fail-fast`): one
    /// absent from the JUnit of a run that ended normally (0: passed, 100:
    /// some failed, 4: no test to run) is one its binaries do not have.
    fn not_found(&self, batch: &RanBatch<'_>) -> Vec<usize> {
        let Some(results) = batch.results else {
            return Vec::new();
        };
        if !matches!(batch.exit_code, Some(0 | 4 | 100)) || !results.unmatched.is_empty() {
            return Vec::new();
        }
        let mut has = vec![false; batch.expected.len()];
        for (i, _) in &results.matched {
            if let Some(h) = has.get_mut(*i) {
                *h = true;
            }
        }
        (0..has.len()).filter(|&i| !has[i]).collect()
    }

    fn hints(&self) -> Hints {
        let dir = self.working_dir.display();
        Hints {
            programs: vec![
                ("cargo".into(), "the cargo framework".into()),
                (
                    "cargo-nextest".into(),
                    "the cargo framework, which runs `cargo nextest`".into(),
                ),
            ],
            version_probe: Some((
                "cargo nextest --version".into(),
                "cargo-nextest".into(),
                "install cargo-nextest: cargo install cargo-nextest --locked".into(),
            )),
            discovery_fix: format!(
                "run `cargo nextest list` in {dir} and fix what it reports (the project must build)"
            ),
            no_tests_fix: "check the groups' filters and [framework] package / bin / features \
                           (`offload collect` shows what discovery finds)"
                .into(),
            no_results_fix: "run `cargo nextest run` by hand and check that the tests build".into(),
            mapping_fix: "check .config/nextest.toml: the JUnit testcases must keep \
                 nextest's binary ID (classname) and test name"
                .into(),
            ..Hints::default()
        }
    }

    /// Every batch pays a `cargo nextest run` start-up (cargo metadata, build
    /// check, test binary listing): plan few, large batches until history
    /// has measured it.
    fn unknown_startup_min_fraction(&self) -> u64 {
        4
    }

    fn unknown_startup_min_tests(&self) -> usize {
        40
    }

    /// nextest runs a batch's tests in parallel, one process each.
    fn runs_tests_side_by_side(&self) -> bool {
        true
    }

    /// The test binary: the ID up to its first space (`alpha::integ`).
    fn locality_key<'a>(&self, id: &'a str) -> Option<&'a str> {
        id.split_once(' ').map(|(binary, _)| binary)
    }

    /// The filterset's `test(=…) | ` per test, with its escapes; the whole
    /// script is one argument (128 KiB on Linux). Large suites are few
    /// thousand tests: 32 KiB is plenty for a batch.
    fn max_batch_id_bytes(&self) -> usize {
        32 * 1024
    }

    /// `test(=NAME) | `, and the binary's `binary_id(=…)` counted for every
    /// test (on the safe side), in a filterset quoted as one word of the
    /// script, which a remote provider quotes once more.
    fn batch_id_bytes(&self, id: &str) -> usize {
        let (binary, test) = filterset::split_id(id);
        let text =
            filterset::escape(binary).len() + filterset::escape(test).len() + "test(=) | ".len();
        let quotes = id.bytes().filter(|&b| b == b'\'').count();
        crate::process::requoted_bytes(text, quotes, 2)
    }
}

/// What a panic says, from a failed test's output: nextest's message is the
/// panic's first line (`thread 'x' (123) panicked at src/lib.rs:16:9`),
/// which says where but not what. The lines after it, up to the backtrace
/// note, are the panic's message (`assertion `left == right` failed`,
/// `left: 4`, `right: 5`): joined on one line, with where it happened.
fn panic_message(output: &str) -> Option<String> {
    let mut lines = output.lines();
    let location = lines.by_ref().find_map(panicked_at)?;
    let what: Vec<&str> = lines
        .map(str::trim)
        .take_while(|l| {
            !l.is_empty() && !l.starts_with("note: run with") && !l.starts_with("stack backtrace:")
        })
        .collect();
    (!what.is_empty()).then(|| format!("{} (at {location})", what.join("; ")))
}

/// `src/lib.rs:16:9` from `thread 'x' (123) panicked at src/lib.rs:16:9:`.
fn panicked_at(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix("thread '")
        .and_then(|l| l.split_once(" panicked at "))
        .map(|(_, at)| at.trim_end_matches(':'))
}

/// Where the first panic of a failed test's output happened, for the CI
/// annotations: `src/lib.rs:16:9` as file `src/lib.rs`, line 16 (rustc's
/// paths are relative to the workspace root, where nextest runs).
fn panic_location(output: &str) -> Option<crate::model::SourceLocation> {
    let mut at = output.lines().find_map(panicked_at)?;
    // Before Rust 1.73: `panicked at 'boom', src/main.rs:2:5`.
    if at.starts_with('\'') {
        at = &at[at.rfind("', ")? + 3..];
    }
    let mut parts = at.rsplitn(3, ':');
    let (column, line, file) = (parts.next()?, parts.next()?, parts.next()?);
    let line: u32 = line.parse().ok()?;
    column.parse::<u32>().ok()?;
    (!file.is_empty()).then(|| crate::model::SourceLocation {
        file: file.to_string(),
        line: Some(line),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{self, CommandSpec, Ending};

    fn framework(config: CargoConfig) -> CargoFramework {
        CargoFramework::new(config, PathBuf::from("."))
    }

    #[test]
    fn a_panic_is_summed_up_by_its_message() {
        let output = "\n    running 1 test\n    thread 'tests::wrong' (4478) panicked at src/lib.rs:16:9:\n    \
                      assertion `left == right` failed\n      left: 4\n     right: 5\n    \
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(output).as_deref(),
            Some("assertion `left == right` failed; left: 4; right: 5 (at src/lib.rs:16:9)")
        );
        assert_eq!(
            panic_message("thread 'main' panicked at x.rs:1:1:\nboom\nstack backtrace:\n  0: x")
                .as_deref(),
            Some("boom (at x.rs:1:1)")
        );
        assert_eq!(panic_message("test failed, no panic"), None);
    }

    #[test]
    fn a_panic_says_where_it_happened() {
        let output = "running 1 test\nthread 'tests::wrong' (4478) panicked at alpha/src/lib.rs:16:9:\nboom\n";
        assert_eq!(
            panic_location(output),
            Some(crate::model::SourceLocation {
                file: "alpha/src/lib.rs".into(),
                line: Some(16),
            })
        );
        // Before Rust 1.73 the message came first, quoted.
        assert_eq!(
            panic_location("thread 'main' panicked at 'a, b', src/main.rs:2:5"),
            Some(crate::model::SourceLocation {
                file: "src/main.rs".into(),
                line: Some(2),
            })
        );
        assert_eq!(panic_location("thread 'main' panicked at somewhere"), None);
        assert_eq!(panic_location("no panic here"), None);
    }

    #[test]
    fn nextest_result_lines_give_the_id_and_outcome() {
        use crate::model::Outcome::*;
        let f = framework(CargoConfig::default());
        let r = |l| f.live_result(l);
        assert_eq!(
            r("        PASS [   0.009s] ( 1/12) alpha tests::adds"),
            Some(("alpha tests::adds", Passed))
        );
        assert_eq!(
            r("        FAIL [   0.218s] ( 3/12) alpha::integ fails"),
            Some(("alpha::integ fails", Failed))
        );
        assert_eq!(
            r("     SIGSEGV [   0.1s] beta::custom weird name (a, b)"),
            Some(("beta::custom weird name (a, b)", Failed))
        );
        assert_eq!(
            r("        SKIP [   0.000s] ( 4/12) alpha tests::ignored"),
            Some(("alpha tests::ignored", Skipped))
        );
        assert_eq!(
            r("    Starting 12 tests across 4 binaries (1 test skipped)"),
            None
        );
        assert_eq!(r("   TRY 1 FAIL [   0.2s] alpha tests::flaky"), None);
        assert_eq!(r("    running 1 test"), None);
    }

    #[test]
    fn locality_is_the_test_binary() {
        let f = framework(CargoConfig::default());
        assert_eq!(
            f.locality_key("alpha::integ shared name"),
            Some("alpha::integ")
        );
        assert_eq!(f.locality_key("alpha tests::adds"), Some("alpha"));
        assert!(f.runs_tests_side_by_side());
    }

    #[test]
    fn discovery_command_with_options() {
        let f = framework(CargoConfig {
            package: Some("alpha".into()),
            features: vec!["a".into(), "b c".into()],
            bin: None,
            include_ignored: true,
        });
        let g = GroupConfig {
            name: "g".into(),
            retry_count: 0,
            filters: "-E 'test(/slow/)'".into(),
        };
        assert_eq!(
            f.discovery_script(&g),
            "cargo nextest list --message-format json --profile default -p alpha --features 'a,b c' --run-ignored all -E 'test(/slow/)'"
        );
    }

    #[test]
    fn a_test_absent_from_a_normal_run_is_one_nextest_does_not_have() {
        let f = framework(CargoConfig::default());
        let ids: Vec<String> = ["a t1", "a gone", "b t2"].map(String::from).to_vec();
        let output = crate::process::CapturedOutput::default();
        let results = MatchedResults {
            matched: vec![
                (
                    0,
                    crate::framework::attempt_from_case(JunitCase::named("t1")),
                ),
                (
                    2,
                    crate::framework::attempt_from_case(JunitCase::named("t2")),
                ),
            ],
            unmatched: vec![],
        };
        let batch = |exit_code, results| RanBatch {
            exit_code,
            ids: &ids,
            expected: &ids,
            output: &output,
            results,
        };
        for code in [0, 4, 100] {
            assert_eq!(f.not_found(&batch(Some(code), Some(&results))), [1]);
        }
        // A crash, a JUnit whose names do not map, or no JUnit: not the word
        // of a runner that ran everything it was given.
        assert!(f.not_found(&batch(Some(101), Some(&results))).is_empty());
        assert!(f.not_found(&batch(None, Some(&results))).is_empty());
        assert!(f.not_found(&batch(Some(0), None)).is_empty());
        let odd = MatchedResults {
            unmatched: vec![JunitCase::named("x")],
            ..results.clone()
        };
        assert!(f.not_found(&batch(Some(0), Some(&odd))).is_empty());
    }

    #[test]
    fn with_discoverys_build_a_local_batch_runs_its_binaries_without_cargo() {
        let f = framework(CargoConfig {
            package: Some("alpha".into()),
            include_ignored: true,
            ..CargoConfig::default()
        });
        let reuse = reuse::Reuse {
            binaries_metadata: "/t/bm.json".into(),
            cargo_metadata: "/t/cm.json".into(),
            workspace: "/ws".into(),
        };
        let cmd = f.batch_command(&["alpha t".into()], "r.xml", Some(&reuse.encode()));
        assert!(
            cmd.script.contains(
                "if [ -f /t/bm.json ] && [ -f /t/cm.json ] && [ \"$(pwd -P)\" = /ws ]; then\n\
                 set -- --binaries-metadata /t/bm.json --cargo-metadata /t/cm.json\n\
                 else\n\
                 set -- -p alpha\n\
                 fi\n"
            ),
            "{}",
            cmd.script
        );
        assert!(
            cmd.script
                .contains("\"offload:$rf.nextest.toml\" \"$@\" --run-ignored all -E "),
            "{}",
            cmd.script
        );
    }

    #[test]
    fn batch_script_writes_a_tool_config_and_selects_exactly_the_batch() {
        let f = framework(CargoConfig::default());
        let cmd = f.batch_command(
            &[
                "alpha tests::adds".into(),
                "beta::custom weird name (a, b)".into(),
            ],
            "results/batch-1-0.xml",
            None,
        );
        assert_eq!(cmd.results, ResultLocation::ResultFile);
        assert!(
            cmd.script.starts_with("rf=results/batch-1-0.xml\n"),
            "{}",
            cmd.script
        );
        assert!(cmd
            .script
            .contains("[profile.offload.junit]\npath = '''$rf'''\nOFFLOAD_NEXTEST_TOML\n"));
        assert!(cmd.script.contains(
            "cargo nextest run --no-fail-fast --profile offload --tool-config-file \"offload:$rf.nextest.toml\" \
             -E '(binary_id(=alpha) & test(=tests::adds)) | \
             (binary_id(=beta::custom) & test(=weird\\u{20}name\\u{20}(a\\,\\u{20}b\\)))'\n"
        ));
        assert!(cmd.script.ends_with("exit $status"));
    }

    /// The script is real shell: run it with a stand-in `cargo` that records
    /// its arguments and the tool config it was given.
    #[test]
    fn batch_script_runs_in_a_shell() {
        let dir = std::env::temp_dir().join(format!("offload-cargo-script-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let fake = dir.join("bin/cargo");
        std::fs::write(
            &fake,
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > args.txt\n\
             cfg=$(grep '^offload:' args.txt | cut -d: -f2-)\ncp \"$cfg\" config.txt\nexit 3\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

        let f = framework(CargoConfig::default());
        let cmd = f.batch_command(&["beta::custom it's (x)".into()], "out/r.xml", None);
        let path = format!(
            "{}:{}",
            dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let env = [("PATH".to_string(), path)];
        let spec = CommandSpec {
            cwd: Some(&dir),
            env: &env,
            ..CommandSpec::sh(&cmd.script)
        };
        let out = process::run(&spec, None, &Cancel::new(), None).unwrap();
        assert_eq!(out.ending, Ending::Exited(3), "{}", out.tail(20));
        let args = std::fs::read_to_string(dir.join("args.txt")).unwrap();
        assert!(
            args.ends_with("-E\n(binary_id(=beta::custom) & test(=it's\\u{20}(x\\)))\n"),
            "{args}"
        );
        let config = std::fs::read_to_string(dir.join("config.txt")).unwrap();
        let expected_path = dir.join("out/r.xml");
        assert!(
            config.contains(&format!(
                "[profile.offload.junit]\npath = '''{}'''\n",
                expected_path.display()
            )),
            "{config}"
        );
        // The tool config does not outlive the batch.
        assert!(!dir.join("out/r.xml.nextest.toml").exists());

        // With discovery's build: used in the directory it was made for, and
        // anywhere else (a sandbox's own copy) cargo builds as before.
        let ws = dir.join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(dir.join("bm.json"), "{}").unwrap();
        std::fs::write(dir.join("cm.json"), "{}").unwrap();
        let reuse = reuse::Reuse {
            binaries_metadata: dir.join("bm.json"),
            cargo_metadata: dir.join("cm.json"),
            workspace: std::fs::canonicalize(&ws).unwrap(),
        };
        let f = framework(CargoConfig {
            features: vec!["x".into()],
            ..CargoConfig::default()
        });
        let cmd = f.batch_command(&["a t".into()], "r.xml", Some(&reuse.encode()));
        for (cwd, reused) in [(&ws, true), (&dir, false)] {
            let spec = CommandSpec {
                cwd: Some(cwd),
                env: &env,
                ..CommandSpec::sh(&cmd.script)
            };
            let out = process::run(&spec, None, &Cancel::new(), None).unwrap();
            assert_eq!(out.ending, Ending::Exited(3), "{}", out.tail(20));
            let args = std::fs::read_to_string(cwd.join("args.txt")).unwrap();
            assert_eq!(args.contains("--binaries-metadata\n"), reused, "{args}");
            assert_eq!(args.contains("--features\nx\n"), !reused, "{args}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
