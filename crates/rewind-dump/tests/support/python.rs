//! A second, independent BSON implementation as an oracle: pymongo's `bson`
//! package, used only when a Python with pymongo is at hand (the repo's
//! `.venv`, or `REWIND_DUMP_PYTHON`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The Python to use, if there is one with pymongo.
pub fn python() -> Option<PathBuf> {
    let candidate = match std::env::var_os("REWIND_DUMP_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
    };
    let has_bson = Command::new(&candidate)
        .args(["-c", "import bson, bson.json_util"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    has_bson.then_some(candidate)
}

/// Runs `script` with `input` on stdin; returns stdout's lines decoded from hex.
fn run(python: &PathBuf, script: &str, input: &[u8]) -> Vec<Vec<u8>> {
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("python reads");
    let out = child.wait_with_output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("hex output")
        .lines()
        .map(|line| {
            (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect()
}

/// `bson.decode_all` on a `.bson` file, each document re-encoded by pymongo.
pub fn decode_all_reencoded(python: &PathBuf, data: &[u8]) -> Vec<Vec<u8>> {
    let script = "import sys, bson\n\
                  for d in bson.decode_all(sys.stdin.buffer.read()):\n    print(bson.encode(d).hex())";
    run(python, script, data)
}

/// A `.metadata.json` text read by pymongo's Extended JSON parser (canonical
/// mode); returns its options then its indexes, each re-encoded as BSON.
pub fn metadata_reencoded(python: &PathBuf, json: &str) -> Vec<Vec<u8>> {
    let script = "import sys, bson\n\
                  from bson import json_util\n\
                  m = json_util.loads(sys.stdin.read(), json_options=json_util.CANONICAL_JSON_OPTIONS)\n\
                  print(bson.encode(m.get('options', {})).hex())\n\
                  for ix in m['indexes']:\n    print(bson.encode(ix).hex())";
    run(python, script, json.as_bytes())
}
