//! Usage errors phrased for the user: what is wrong, the closest valid
//! command or option, and the `--help` that lists the right options.
//!
//! argh finds the error; this file finds where it is (before any command, or
//! inside which one) and what would be right. Commands and options come from
//! the argh structs' own description ([`ArgsInfo`]), never from a second
//! list, so the suggestions cannot drift from what the parser accepts.

use std::fmt;

use argh::{ArgsInfo, CommandInfoWithArgs, FlagInfo, FlagInfoKind, SubCommandInfo};

use super::Cli;
use crate::config::suggest::did_you_mean;

/// How a number option's parser says what it wants (see `cli::at_least_one`).
pub const EXPECTS_AT_LEAST_ONE: &str = "expects a whole number of at least 1";

/// Words people type for a command, and the command they mean. Only for
/// words that are not a typo of the command (`rnu` is found by edit
/// distance); a unit test checks that every target is a real command.
const COMMAND_SYNONYMS: &[(&str, &str)] = &[
    ("test", "run"),
    ("tests", "run"),
    ("exec", "run"),
    ("start", "run"),
    ("list", "collect"),
    ("ls", "collect"),
    ("discover", "collect"),
    ("check", "doctor"),
    ("config", "validate"),
    ("verify", "validate"),
    ("lint", "validate"),
    ("show", "logs"),
    ("results", "logs"),
    ("report", "logs"),
    ("new", "init"),
    ("setup", "init"),
    ("create", "init"),
];

/// A command line Offload cannot act on. The message ends with a line
/// naming the `--help` to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError {
    message: String,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// `problem`, then where to read about the options of `command`.
fn error(problem: String, command: Option<&SubCommandInfo>) -> UsageError {
    let see = match command {
        Some(c) => format!("See `offload {} --help` for its options.", c.name),
        None => "See `offload --help` for the commands and the global options.".to_string(),
    };
    UsageError {
        message: format!("{problem}\n{see}"),
    }
}

pub fn not_utf8(arg: &str) -> UsageError {
    error(
        format!("argument `{arg}` is not valid UTF-8; Offload's arguments must be text"),
        None,
    )
}

/// The flag `arg` (`--parallel`, `-c`) of `command`.
fn flag<'a>(command: &'a CommandInfoWithArgs, arg: &str) -> Option<&'a FlagInfo<'static>> {
    command.flags.iter().find(|f| {
        f.long == arg
            || f.short
                .is_some_and(|c| arg.len() == 2 && arg.starts_with('-') && arg.ends_with(c))
    })
}

fn takes_value(f: &FlagInfo) -> bool {
    matches!(f.kind, FlagInfoKind::Option { .. })
}

/// `--name=value` split into `--name value` wherever `--name` is an option
/// (one that takes a value) of Offload or any of its commands. Values are
/// left alone (`--env A=B` stays), and so is everything after `--`.
pub fn split_equals(args: &[String]) -> Vec<String> {
    let info = Cli::get_args_info();
    let option = |name: &str| {
        std::iter::once(&info)
            .chain(info.commands.iter().map(|c| &c.command))
            .filter_map(|c| flag(c, name))
            .any(takes_value)
    };
    let mut out = Vec::with_capacity(args.len());
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(rest.cloned());
            break;
        }
        if option(arg) {
            // `--env --x=1`: the next argument is a value, whatever it looks like.
            out.push(arg.clone());
            out.extend(rest.next().cloned());
            continue;
        }
        match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") && option(name) => {
                out.push(name.to_string());
                out.push(value.to_string());
            }
            _ => out.push(arg.clone()),
        }
    }
    out
}

/// The command (`run`, `logs`) whose part of the command line holds
/// `offending`, or `None` when it comes before any command.
fn locate<'a>(
    args: &[String],
    top: &'a CommandInfoWithArgs,
    offending: &str,
) -> Option<&'a SubCommandInfo> {
    let mut command: Option<&SubCommandInfo> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == offending || arg == "--" {
            break;
        }
        let here = command.map_or(top, |c| &c.command);
        if arg.starts_with('-') {
            if flag(here, arg).is_some_and(takes_value) {
                i += 1;
            }
        } else if command.is_none() {
            command = top.commands.iter().find(|c| c.name == arg);
        }
        i += 1;
    }
    command
}

/// Turn argh's error text (its first line names the problem) into a
/// [`UsageError`] for the command line `args`.
pub fn explain(args: &[String], argh_output: &str) -> UsageError {
    let top = Cli::get_args_info();
    let first = argh_output.lines().next().unwrap_or("").trim();
    if let Some(arg) = first.strip_prefix("Unrecognized argument: ") {
        return unrecognized(args, &top, arg.trim_matches('"'));
    }
    if let Some(rest) = first.strip_prefix("Error parsing option '") {
        if let Some((name, rest)) = rest.split_once("' with value '") {
            if let Some((value, reason)) = rest.split_once("': ") {
                return bad_value(args, &top, name, value, reason);
            }
        }
    }
    if let Some(rest) = first.strip_prefix("No value provided for option '") {
        let name = rest.trim_end_matches(['.', '\'']);
        let command = locate(args, &top, name);
        let here = command.map_or(&top, |c| &c.command);
        let what = match flag(here, name) {
            Some(f) => format!(
                " ({}{}: {})",
                f.long,
                match f.kind {
                    FlagInfoKind::Option { arg_name } => format!(" <{arg_name}>"),
                    FlagInfoKind::Switch => String::new(),
                },
                f.description
            ),
            None => String::new(),
        };
        return error(format!("option `{name}` needs a value{what}"), command);
    }
    error(argh_output.trim_end().to_string(), None)
}

/// `offload` or `offload run`.
fn command_line(command: Option<&SubCommandInfo>) -> String {
    match command {
        Some(c) => format!("offload {}", c.name),
        None => "offload".to_string(),
    }
}

/// `Run tests in parallel.` as `run tests in parallel`.
fn lowercase_description(d: &str) -> String {
    let d = d.trim().trim_end_matches('.');
    let mut chars = d.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn unrecognized(args: &[String], top: &CommandInfoWithArgs, arg: &str) -> UsageError {
    let command = locate(args, top, arg);
    let here = command.map_or(top, |c| &c.command);
    let cmd = command_line(command);
    let visible_longs: Vec<&str> = here
        .flags
        .iter()
        .filter(|f| !f.hidden)
        .map(|f| f.long.trim_start_matches('-'))
        .collect();

    if !arg.starts_with('-') || arg == "-" {
        let Some(command) = command else {
            return unknown_command(top, arg);
        };
        let hint = if let Some(long) = did_you_mean(arg, &visible_longs) {
            format!(" (did you mean `--{long}`?)")
        } else if top.commands.iter().any(|c| c.name == arg) {
            " (one command at a time)".to_string()
        } else if flag(here, "--test").is_some_and(takes_value) {
            // `offload logs tests/test_a.py::test_x`
            format!(" (to choose a test: `--test {arg}`)")
        } else {
            String::new()
        };
        return error(
            format!("`{cmd}` takes no arguments besides its options, found `{arg}`{hint}"),
            Some(command),
        );
    }

    // `--fail-fast=yes`: a switch given a value.
    if let Some((name, _)) = arg.split_once('=') {
        if flag(here, name).is_some_and(|f| !takes_value(f)) {
            return error(
                format!("`{name}` is a switch and takes no value: write `{name}` alone"),
                command,
            );
        }
    }
    if let Some(command) = command {
        // `offload run -v`: a global option after the command.
        if let Some(global) = flag(top, arg).filter(|f| f.long != "--help") {
            let value = if takes_value(global) { " VALUE" } else { "" };
            return error(
                format!(
                    "`{arg}` is an option of `offload` itself, not of `offload {0}`: \
                     put it before the command, as in `offload {arg}{value} {0} …`",
                    command.name
                ),
                None,
            );
        }
    }
    // `offload run --failures`: an option of another command.
    if let Some(other) = top
        .commands
        .iter()
        .filter(|c| command.map_or(true, |here| here.name != c.name))
        .find(|c| flag(&c.command, arg).is_some_and(|f| f.long != "--help"))
    {
        let placement = match command {
            Some(_) => String::new(),
            None => format!(
                ": put it after the command, as in `offload {} {arg} …`",
                other.name
            ),
        };
        return error(
            format!(
                "unknown option `{arg}` for `{cmd}`; it is an option of `offload {}`{placement}",
                other.name
            ),
            command,
        );
    }
    let word = arg.trim_start_matches('-');
    let hint = match did_you_mean(word, &visible_longs) {
        Some(long) => format!(" (did you mean `--{long}`?)"),
        // `offload --paralel 2 run`: close to an option of a command.
        None if command.is_none() => top
            .commands
            .iter()
            .find_map(|c| {
                let longs: Vec<&str> = c
                    .command
                    .flags
                    .iter()
                    .filter(|f| !f.hidden && f.long != "--help")
                    .map(|f| f.long.trim_start_matches('-'))
                    .collect();
                did_you_mean(word, &longs).map(|long| {
                    format!(
                        " (did you mean `offload {} --{long}`? it goes after the command)",
                        c.name
                    )
                })
            })
            .unwrap_or_default(),
        None => String::new(),
    };
    error(format!("unknown option `{arg}` for `{cmd}`{hint}"), command)
}

fn unknown_command(top: &CommandInfoWithArgs, word: &str) -> UsageError {
    let names: Vec<&str> = top.commands.iter().map(|c| c.name).collect();
    let meant = did_you_mean(word, &names).or_else(|| {
        COMMAND_SYNONYMS
            .iter()
            .find(|(synonym, _)| *synonym == word)
            .map(|(_, name)| *name)
    });
    let hint = match meant.and_then(|m| top.commands.iter().find(|c| c.name == m)) {
        Some(c) => format!(
            "; did you mean `offload {}` ({})?",
            c.name,
            lowercase_description(c.command.description)
        ),
        None => String::new(),
    };
    UsageError {
        message: format!(
            "unknown command `{word}`{hint}\n\
             The commands are {}; `offload --help` describes them.",
            names.join(", ")
        ),
    }
}

fn bad_value(
    args: &[String],
    top: &CommandInfoWithArgs,
    name: &str,
    value: &str,
    reason: &str,
) -> UsageError {
    let command = locate(args, top, name);
    let problem = if reason == "duplicate values provided" {
        format!("`{name}` was given more than once (again as `{value}`); give it once")
    } else if reason.starts_with("expects ") {
        format!("`{name}` {reason}, got `{value}`")
    } else {
        format!("invalid value `{value}` for `{name}`: {reason}")
    };
    error(problem, command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Command, Parsed};

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    /// The usage error for `line`.
    fn message(line: &str) -> String {
        match parse(&args(line)) {
            Err(e) => e.to_string(),
            Ok(parsed) => panic!("`{line}` parsed: {parsed:?}"),
        }
    }

    #[test]
    fn a_misspelt_command_gets_the_closest_one() {
        assert_eq!(
            message("rnu"),
            "unknown command `rnu`; did you mean `offload run` (run tests in parallel)?\n\
             The commands are run, collect, validate, init, logs, doctor; `offload --help` describes them."
        );
        assert!(message("docter").contains("did you mean `offload doctor`"));
        assert!(message("-v valdiate").contains("did you mean `offload validate`"));
    }

    #[test]
    fn a_word_for_a_command_gets_the_command() {
        assert!(message("test").starts_with("unknown command `test`; did you mean `offload run`"));
        assert!(message("list").contains("did you mean `offload collect`"));
        assert!(!message("frobnicate").contains("did you mean"));
    }

    #[test]
    fn every_synonym_names_a_real_command() {
        let top = Cli::get_args_info();
        for (word, target) in COMMAND_SYNONYMS {
            assert!(
                top.commands.iter().any(|c| c.name == *target),
                "{word} -> {target}"
            );
            assert!(
                !top.commands.iter().any(|c| c.name == *word),
                "{word} is a command itself"
            );
        }
    }

    #[test]
    fn a_misspelt_option_gets_the_closest_one_of_its_command_and_that_commands_help() {
        assert_eq!(
            message("run --paralel 2"),
            "unknown option `--paralel` for `offload run` (did you mean `--parallel`?)\n\
             See `offload run --help` for its options."
        );
        assert_eq!(
            message("logs --failure"),
            "unknown option `--failure` for `offload logs` (did you mean `--failures`?)\n\
             See `offload logs --help` for its options."
        );
        // Found after global options with values, and a value that looks like a command.
        assert!(message("-c run run --fial-fast").contains("did you mean `--fail-fast`?"));
        assert_eq!(
            message("--verbos run"),
            "unknown option `--verbos` for `offload` (did you mean `--verbose`?)\n\
             See `offload --help` for the commands and the global options."
        );
        assert!(!message("run --zzzzzz").contains("did you mean"));
        // Before the command, close to one of a command's options.
        assert!(message("--paralel 2 run").starts_with(
            "unknown option `--paralel` for `offload` (did you mean `offload run --parallel`? \
             it goes after the command)"
        ));
    }

    #[test]
    fn an_option_in_the_wrong_place_says_where_it_belongs() {
        assert_eq!(
            message("run -v"),
            "`-v` is an option of `offload` itself, not of `offload run`: put it before the \
             command, as in `offload -v run …`\n\
             See `offload --help` for the commands and the global options."
        );
        assert!(message("validate -c x.toml").contains("as in `offload -c VALUE validate …`"));
        assert!(message("--parallel 2 run").starts_with(
            "unknown option `--parallel` for `offload`; it is an option of `offload run`: put it \
             after the command, as in `offload run --parallel …`\n"
        ));
        assert_eq!(
            message("run --failures"),
            "unknown option `--failures` for `offload run`; it is an option of `offload logs`\n\
             See `offload run --help` for its options."
        );
    }

    #[test]
    fn stray_words_and_switch_values_are_named() {
        assert_eq!(
            message("run extra"),
            "`offload run` takes no arguments besides its options, found `extra`\n\
             See `offload run --help` for its options."
        );
        assert!(message("logs failures").contains("(did you mean `--failures`?)"));
        assert!(message("run collect").contains("(one command at a time)"));
        assert!(message("logs t.py::test_x").contains("(to choose a test: `--test t.py::test_x`)"));
        assert!(message("run --fail-fast=yes")
            .starts_with("`--fail-fast` is a switch and takes no value"));
    }

    #[test]
    fn bad_numbers_say_what_is_expected() {
        for bad in ["-1", "x", "0", "1.5", ""] {
            let line = vec!["run".to_string(), "--parallel".to_string(), bad.to_string()];
            let e = parse(&line).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "`--parallel` expects a whole number of at least 1, got `{bad}`\n\
                     See `offload run --help` for its options."
                )
            );
        }
        assert_eq!(
            message("run --parallel"),
            "option `--parallel` needs a value (--parallel <parallel>: override the maximum \
             number of parallel sandboxes)\n\
             See `offload run --help` for its options."
        );
        assert!(message("run --parallel 1 --parallel 2")
            .starts_with("`--parallel` was given more than once (again as `2`)"));
        assert!(message("-c").starts_with("option `-c` needs a value (--config <config>:"));
    }

    #[test]
    fn equals_is_accepted_for_options() {
        let Ok(Parsed::Command(cli)) = parse(&args("--config=ci.toml run --parallel=3 --env=A=B"))
        else {
            panic!("not parsed")
        };
        assert_eq!(cli.config, std::path::PathBuf::from("ci.toml"));
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.parallel, Some(3));
        assert_eq!(run.env, ["A=B"]);
        // Values are not split, nor anything after `--`.
        assert_eq!(
            split_equals(&args("run --env --parallel=3 -- --parallel=4")),
            args("run --env --parallel=3 -- --parallel=4")
        );
    }

    #[test]
    fn help_is_help() {
        for line in ["--help", "help", "run --help", "logs help"] {
            match parse(&args(line)) {
                Ok(Parsed::Help(text)) => assert!(text.starts_with("Usage: offload"), "{text}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        let Ok(Parsed::Help(text)) = parse(&args("run --help")) else {
            panic!()
        };
        assert!(text.contains("--parallel"), "{text}");
    }
}
