//! TEMPORARY: the tokenizer-based reader against the xml-rs based one.

fn samples() -> Vec<String> {
    let src = include_str!("read.rs");
    // Every string literal that looks like XML in read.rs's tests.
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("r#\"") {
        let body = &rest[i + 3..];
        let end = body.find("\"#").unwrap();
        if body[..end].contains('<') {
            out.push(body[..end].to_string());
        }
        rest = &body[end..];
    }
    out
}

fn show(r: &Result<Vec<super::read::JunitCase>, String>) -> String {
    match r {
        Ok(c) => format!("{c:?}"),
        Err(_) => "ERR".into(),
    }
}

fn show_old(r: &Result<Vec<super::old_read::JunitCase>, String>) -> String {
    match r {
        Ok(c) => format!("{c:?}"),
        Err(_) => "ERR".into(),
    }
}

#[test]
fn same_as_xml_rs() {
    let mut docs = samples();
    docs.extend(
        std::fs::read_dir("src/junit/testdata")
            .into_iter()
            .flatten()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()),
    );
    eprintln!("{} samples", docs.len());
    let mut seed: u64 = 7;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let (mut same, mut lenient, mut differ) = (0, 0, 0);
    let palette = [
        '<', '>', '&', ';', '"', '\'', '/', ' ', '=', '!', '-', '[', ']', '\r', '\n', 'x', '#',
    ];
    for doc in &docs {
        let mut variants = vec![doc.clone()];
        for cut in (0..=doc.len()).filter(|&c| doc.is_char_boundary(c)) {
            variants.push(doc[..cut].to_string());
        }
        for _ in 0..300 {
            let mut v: Vec<char> = doc.chars().collect();
            for _ in 0..1 + next() % 3 {
                let at = next() % (v.len() + 1);
                match next() % 3 {
                    0 if at < v.len() => {
                        v.remove(at);
                    }
                    1 if at < v.len() => v[at] = palette[next() % palette.len()],
                    _ => v.insert(at, palette[next() % palette.len()]),
                }
            }
            variants.push(v.into_iter().collect());
        }
        for v in variants {
            let new = show(&super::read::parse(&v));
            let old = show_old(&super::old_read::old_parse(&v));
            if new == old {
                same += 1;
            } else if old == "ERR" || new.starts_with(&old[..old.len() - 1]) {
                lenient += 1;
                if lenient % 40 == 0 {
                    eprintln!(
                        "LENIENT {v:?}\n  old {old}\n  new {}\n",
                        &new[..new.len().min(300)]
                    );
                }
            } else {
                differ += 1;
                if differ <= 15 {
                    eprintln!("DIFF {v:?}\n  old {old}\n  new {new}\n");
                }
            }
        }
    }
    eprintln!("same {same}, new reads more {lenient}, differ {differ}");
}
