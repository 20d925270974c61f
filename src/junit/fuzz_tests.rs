//! Mutation testing of the JUnit reader: damaged reports, made from real
//! ones, never make it panic or loop, and whatever the damage, every
//! testcase completed before it is still read. The long run: see
//! [`crate::fuzz`].

use super::read::{for_each_duration, parse, parse_reader, JunitCase};
use crate::fuzz::{iterations, mutate, seed, Rng};

const SEEDS: &[&str] = &[
    include_str!("testdata/pytest-xunit1.xml"),
    include_str!("testdata/pytest-xunit2.xml"),
    include_str!("testdata/nextest.xml"),
    "<testsuite><testcase name=\"a &amp; b\" time=\"0.5\"><failure message=\"m\x1b[31m\">x &bogus; y &#0;</failure></testcase>\
     <testcase name=\"c\"><![CDATA[ ]]><system-out><![CDATA[out <b>]]></system-out></testcase>\
     <testcase name=\"d\"><!-- c --><rerunFailure message=\"r\"><stackTrace>s</stackTrace></rerunFailure></testcase></testsuite>",
];

/// Pieces of XML and of what runners get wrong.
const PIECES: &[&[u8]] = &[
    b"<testcase name=\"x\">",
    b"</testcase>",
    b"<testcase name='y'/>",
    b"<failure>",
    b"</failure>",
    b"<system-out>",
    b"</system-out>",
    b"<a>",
    b"</b>",
    b"<",
    b">",
    b"/>",
    b"</",
    b"\"",
    b"'",
    b"=",
    b"&",
    b"&amp;",
    b"&lt",
    b"&#",
    b"&#x1b;",
    b"&#0;",
    b"&nbsp;",
    b"&unknown;",
    b";",
    b"<!--",
    b"-->",
    b"--",
    b"<![CDATA[",
    b"]]>",
    b"<?",
    b"?>",
    b"<!DOCTYPE x [",
    b"]>",
    b"<!ENTITY e \"v\">",
    b"\x1b[",
    b"\x1b[31m",
    b"\x1b",
    b"\x00",
    b"\x01",
    b"\xff",
    b"\xc3",
    "\u{FFFE}".as_bytes(),
    "\u{10FFFF}".as_bytes(),
    "\u{10FFFE}12\u{10FFFE}".as_bytes(),
    "é".as_bytes(),
    "日".as_bytes(),
    b"\r\n",
    b"\t",
    b"xmlns:p=\"u\"",
    b"<p:testcase>",
];

/// The testcases of `doc` and, for each, the length of the shortest prefix
/// that already yields it: the end of its closing tag.
fn completions(doc: &str) -> (Vec<JunitCase>, Vec<usize>) {
    let cases = parse(doc).expect("a seed is a valid report");
    let mut ends = Vec::new();
    for (at, _) in doc.match_indices('>') {
        let n = parse(&doc[..=at]).map_or(0, |c| c.len());
        if n > ends.len() {
            assert_eq!(n, ends.len() + 1, "one testcase ends per `>`");
            ends.push(at + 1);
        }
    }
    assert_eq!(ends.len(), cases.len());
    (cases, ends)
}

#[test]
fn damage_after_a_testcase_never_loses_it() {
    let n = iterations(400);
    let seeds: Vec<(&str, Vec<JunitCase>, Vec<usize>)> = SEEDS
        .iter()
        .map(|s| {
            let (cases, ends) = completions(s);
            (*s, cases, ends)
        })
        .collect();
    let mut rng = Rng::new(seed());
    let mut kept = 0;
    for i in 0..n {
        let (doc, cases, ends) = rng.pick(&seeds);
        // Keep the first k testcases intact, damage anything after them.
        let k = rng.below(ends.len() + 1);
        let intact = if k == 0 { 0 } else { ends[k - 1] };
        let mut mutant = doc.as_bytes()[..intact].to_vec();
        mutant.extend(mutate(&mut rng, &doc.as_bytes()[intact..], PIECES));

        let from_bytes = parse_reader(&mutant[..]);
        let text = String::from_utf8_lossy(&mutant);
        let from_text = parse(&text);
        assert_eq!(from_bytes, from_text, "iteration {i}: {text:?}");
        match from_text {
            Ok(read) => {
                assert!(
                    read.len() >= k,
                    "iteration {i}: lost a testcase of {text:?}"
                );
                assert_eq!(read[..k], cases[..k], "iteration {i}: {text:?}");
                kept += k;
            }
            Err(e) => assert_eq!(k, 0, "iteration {i}: {e} for {text:?}"),
        }
        let mut durations = 0;
        for_each_duration(&text, |_, _| durations += 1);
        assert!(durations <= text.matches("testcase").count());
    }
    eprintln!("{n} damaged reports, {kept} intact testcases all read back");
}

/// Anything at all (random bytes, random pieces): no panic, and the reader
/// ends.
#[test]
fn random_input_never_panics() {
    let n = iterations(2_000);
    let mut rng = Rng::new(seed() ^ 1);
    for i in 0..n {
        let mut doc: Vec<u8> = Vec::new();
        for _ in 0..rng.below(40) {
            if rng.below(4) == 0 {
                doc.push(rng.next() as u8);
            } else {
                let piece: &&[u8] = rng.pick(PIECES);
                doc.extend_from_slice(piece);
            }
        }
        let result = std::panic::catch_unwind(|| parse_reader(&doc[..]));
        assert!(result.is_ok(), "iteration {i}: panicked on {doc:?}");
    }
}
