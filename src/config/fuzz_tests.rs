//! Mutation testing of the config loader: thousands of damaged configs,
//! made from real ones, must each load or fail with a message; none may
//! panic. The long run: see [`crate::fuzz`].

use std::path::Path;

use super::parse_with_env;
use crate::fuzz::{iterations, mutate, seed, Rng};

/// Configs that load, covering every section and framework.
const SEEDS: &[&str] = &[
    include_str!("../../fixtures/shell/offload.toml"),
    include_str!("../../examples/ssh/offload.toml"),
    include_str!("../../examples/docker/offload.toml"),
    include_str!("../../examples/kubernetes/offload.toml"),
    include_str!("../../examples/dir-sandbox/offload.toml"),
    r#"
[offload]
max_parallel = 4
test_timeout_secs = 90
sandbox_project_root = "/app"

[provider]
type = "default"
create_command = "./make ${TOKEN}"
exec_command = "./exec {sandbox_id} {command}"
destroy_command = "./drop {sandbox_id}"
copy_dirs = ["src:/app/src", "tests:/app/tests"]

[framework]
type = "pytest"
paths = ["tests"]
python = "python3"

[groups.unit]
filters = "-m 'not slow'"
retry_count = 2

[groups.slow]
filters = "-m slow"

[report]
output_dir = "out"
junit_file = "junit.xml"
"#,
    r#"
[provider]
type = "local"

[framework]
type = "cargo"
package = "alpha"
features = ["x"]

[groups.all]
filters = "test(foo)"
"#,
];

/// Pieces of TOML and of Offload's config, for mutants that stay close to
/// a config.
const PIECES: &[&[u8]] = &[
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"=",
    b"\"",
    b"'",
    b"'''",
    b"\"\"\"",
    b"\n",
    b"#",
    b",",
    b"{",
    b"}",
    b".",
    b"\\",
    b"\\u{0}",
    b"${",
    b"${HOME}",
    b"}",
    b"{tests}",
    b"{filters}",
    b"{sandbox_id}",
    b"{command}",
    b"{result_file}",
    b"{name}",
    b"{classname}",
    b"[groups.x]\n",
    b"[provider]\n",
    b"[framework]\n",
    b"type = \"default\"\n",
    b"type = \"pytest\"\n",
    b"type = \"cargo\"\n",
    b"type = \"modal\"\n",
    b"retry_count = -1\n",
    b"max_parallel = 0\n",
    b"max_parallel = 99999999999999999999\n",
    b"= 1e400\n",
    b"true",
    b"1979-05-27T07:32:00Z",
    b"inf",
    b"nan",
    b"\xff",
    b"\xc3",
    "é".as_bytes(),
    b"\x00",
    b"\r",
    b"\t",
];

#[test]
fn mutated_configs_load_or_fail_with_a_message() {
    let n = iterations(3_000);
    let mut rng = Rng::new(seed());
    let env = |name: &str| (name == "HOME" || name == "TOKEN").then(|| "/x".to_string());
    let (mut loaded, mut failed) = (0u64, 0u64);
    for i in 0..n {
        let seed = rng.pick(SEEDS).as_bytes();
        let mutant = mutate(&mut rng, seed, PIECES);
        let text = String::from_utf8_lossy(&mutant);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            parse_with_env(&text, Path::new("/proj/offload.toml"), &env)
        }));
        match result {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(e)) => {
                assert!(
                    !e.message.trim().is_empty(),
                    "an empty message for {text:?}"
                );
                failed += 1;
            }
            Err(_) => panic!("iteration {i}: the config loader panicked on {text:?}"),
        }
    }
    eprintln!("{n} mutated configs: {loaded} loaded, {failed} refused with a message");
    assert_eq!(loaded + failed, n);
}
