//! The SDK as app teams get it: the Kotlin and Swift that `mobile-ffi/generate-bindings.sh`
//! generates are documented on every public declaration, name Swift error cases like every
//! other Swift enum case, and (for Kotlin) parse with the Kotlin compiler's parser (ktlint, from
//! npm, on the machine's Java); the README's Kotlin and Swift samples parse (Kotlin) and use only
//! types, cases, methods, arguments and fields the bindings declare; the packaging scripts name
//! files and crates that exist. No Kotlin or Swift compiler runs on this Linux machine, so the
//! samples are checked against the declarations, not compiled.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tournee_e2e::bindings_api::{self, Api, Kind};
use tournee_e2e::generate_python_bindings;

const KOTLIN: &str = "kotlin/org/tournee/field/tournee_mobile_ffi.kt";
const SWIFT: &str = "swift/TourneeField.swift";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The bindings, generated once for every test of this file with the documented command.
fn bindings() -> &'static Path {
    static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        generate_python_bindings(out.path());
        out
    })
    .path()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn kotlin_api() -> Api {
    bindings_api::kotlin(&read(&bindings().join(KOTLIN)))
}

fn swift_api() -> Api {
    bindings_api::swift(&read(&bindings().join(SWIFT)))
}

/// Fails listing every undocumented declaration, and prints the counts.
fn assert_documented(language: &str, api: &Api) {
    for (kind, (documented, total)) in api.counts() {
        eprintln!("{language}: {kind:?}: {documented} of {total} documented");
    }
    let undocumented: Vec<String> = api
        .undocumented()
        .iter()
        .map(|d| format!("{:?} {}.{} (line {})", d.kind, d.owner, d.name, d.line))
        .collect();
    assert!(
        undocumented.is_empty(),
        "{language}: {} public declarations have no doc comment (add a /// comment in \
         mobile-ffi/src):\n{}",
        undocumented.len(),
        undocumented.join("\n")
    );
}

#[test]
fn every_public_kotlin_and_swift_declaration_is_documented() {
    let (kotlin, swift) = (kotlin_api(), swift_api());
    for (language, api) in [("Kotlin", &kotlin), ("Swift", &swift)] {
        // The scan sees the API: a scan that found nothing would pass vacuously.
        for ty in [
            "FieldStore",
            "AttemptInput",
            "Outcome",
            "TourneeError",
            "CalendarDate",
        ] {
            let ty = if language == "Kotlin" && ty == "TourneeError" {
                "TourneeException"
            } else {
                ty
            };
            assert!(api.types().contains(&ty), "{language}: {ty} not found");
        }
        assert_documented(language, api);
    }
}

#[test]
fn swift_error_cases_are_lower_camel_case_like_every_other_swift_enum_case() {
    let api = swift_api();
    let cases: Vec<_> = api
        .declarations
        .iter()
        .filter(|d| d.kind == Kind::Case)
        .collect();
    assert!(api.has_member("TourneeError", "invalidInput"));
    let upper: Vec<_> = cases
        .iter()
        .filter(|d| d.name.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|d| format!("{}.{}", d.owner, d.name))
        .collect();
    assert!(upper.is_empty(), "UpperCamelCase Swift cases: {upper:?}");
    let swift = read(&bindings().join(SWIFT));
    assert!(
        swift.contains("case `protocol`(") && swift.contains("return .`protocol`("),
        "the case that is a Swift keyword is declared and used in backquotes"
    );
}

/// The ktlint command, installed from `mobile-ffi/tests/ktlint` (npm) on first use.
fn ktlint() -> PathBuf {
    let install = repository().join("mobile-ffi/tests/ktlint/install.sh");
    let output = Command::new("bash").arg(&install).output().unwrap();
    assert!(
        output.status.success(),
        "{} failed: {}",
        install.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Runs ktlint with every rule off on `files`: what it reports is a file the Kotlin parser
/// cannot read. Returns its report, empty when all parse.
fn kotlin_parse_errors(files: &[PathBuf]) -> String {
    let config = repository().join("mobile-ffi/tests/ktlint/parse-only.editorconfig");
    let output = Command::new(ktlint())
        .arg(format!("--editorconfig={}", config.display()))
        .arg("--relative")
        .args(files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        String::new()
    } else {
        report
    }
}

/// The fenced blocks of `language` in the README.
fn readme_samples(language: &str) -> Vec<String> {
    let readme = read(&repository().join("README.md"));
    let fence = format!("```{language}\n");
    readme
        .split(&fence)
        .skip(1)
        .filter_map(|rest| {
            rest.split_once("\n```")
                .map(|(sample, _)| sample.to_string())
        })
        .collect()
}

#[test]
fn the_generated_kotlin_and_the_readme_kotlin_samples_parse() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![bindings().join(KOTLIN)];
    let samples = readme_samples("kotlin");
    assert!(!samples.is_empty(), "the README shows Kotlin samples");
    for (i, sample) in samples.iter().enumerate() {
        // A script (.kts) takes statements at the top level, as the samples are written.
        let path = dir.path().join(format!("readme_sample_{i}.kts"));
        std::fs::write(&path, sample).unwrap();
        files.push(path);
    }
    let errors = kotlin_parse_errors(&files);
    assert!(errors.is_empty(), "Kotlin that does not parse:\n{errors}");

    // The check can fail: a broken copy is reported.
    let broken = dir.path().join("broken.kt");
    let generated = read(&bindings().join(KOTLIN));
    std::fs::write(
        &broken,
        generated.replacen("data class ", "data class (", 1),
    )
    .unwrap();
    assert!(kotlin_parse_errors(&[broken]).contains("Not a valid Kotlin file"));
}

/// `text` without string literals and comments, so names inside them are not taken for code.
fn code_only(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.starts_with("import ")) {
        let line = line.split("//").next().unwrap_or("");
        let mut in_string = false;
        let mut previous = ' ';
        for c in line.chars() {
            if c == '"' && previous != '\\' {
                in_string = !in_string;
                out.push('"');
            } else if !in_string {
                out.push(c);
            }
            previous = c;
        }
        out.push('\n');
    }
    out
}

/// Every `name(` call in `code` with its argument list, as (name, receiver, arguments), where
/// the receiver is the identifier before a `.` (e.g. `store` in `store.door(item)`).
fn calls(code: &str) -> Vec<(String, String, String)> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if c != '(' || i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
            continue;
        }
        let mut start = i;
        while start > 0 && (chars[start - 1].is_alphanumeric() || chars[start - 1] == '_') {
            start -= 1;
        }
        let name: String = chars[start..i].iter().collect();
        let mut receiver = String::new();
        if start > 1 && chars[start - 1] == '.' {
            let mut r = start - 1;
            while r > 0 && (chars[r - 1].is_alphanumeric() || chars[r - 1] == '_') {
                r -= 1;
            }
            receiver = chars[r..start - 1].iter().collect();
        }
        let mut depth = 0;
        let mut end = i;
        for (j, &d) in chars.iter().enumerate().skip(i) {
            match d {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        found.push((name, receiver, chars[i + 1..end].iter().collect()));
    }
    found
}

/// The top-level arguments of an argument list, trimmed.
fn arguments(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in list.chars() {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Every `Type.member` in `code` whose `Type` is one of `types`.
fn qualified_members<'a>(code: &'a str, types: &[&str]) -> Vec<(&'a str, &'a str)> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices('.') {
        let before = &code[..at];
        let ty_start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let ty = &before[ty_start..];
        let after = &code[at + 1..];
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '`'))
            .unwrap_or(after.len());
        if types.contains(&ty) && end > 0 {
            found.push((ty, after[..end].trim_matches('`')));
        }
    }
    found
}

/// The types a sample declares itself (the app's own transport or worker, say).
fn declared_in(code: &str) -> Vec<String> {
    let words: Vec<&str> = code.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| ["class", "struct", "object", "enum", "protocol", "actor"].contains(&w[0]))
        .map(|w| {
            w[1].chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Identifiers written with a capital first letter (types, and Kotlin's enum entries).
fn capitalized(code: &str) -> Vec<String> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(str::to_string)
        .collect()
}

/// Platform names the Kotlin samples may use besides the bindings' (Kotlin, Android, OkHttp).
const KOTLIN_PLATFORM: &[&str] = &[
    "List",
    "String",
    "Instant",
    "LocalDate",
    "Request",
    "Builder",
    "System",
    "Long",
    "Int",
    "ByteArray",
    "WorkManager",
    "OkHttpClient",
    "Dispatchers",
    "Context",
    "WorkerParameters",
    "CoroutineWorker",
    "Result",
];

/// Platform names the Swift samples may use besides the bindings' (Swift, Foundation).
const SWIFT_PLATFORM: &[&str] = &[
    "URLRequest",
    "URLSession",
    "URLError",
    "HTTPURLResponse",
    "Date",
    "DateComponents",
    "Data",
    "String",
    "Int",
    "Int64",
    "UInt16",
    "BGTaskScheduler",
    "Task",
    "Calendar",
    "URL",
];

/// Members of platform types the Swift samples use with a leading dot.
const SWIFT_PLATFORM_MEMBERS: &[&str] = &["badServerResponse", "gregorian", "shared"];

/// Fails listing the `problems` found in the README's samples of `language`, or when the
/// samples do not show the calls an app starts with.
fn assert_samples_checked(language: &str, samples: &[String], problems: &[String]) {
    assert!(
        problems.is_empty(),
        "README {language} samples:\n{}",
        problems.join("\n")
    );
    let code = samples.concat();
    for used in [
        "FieldStore.open(",
        "recordAttempt(",
        "setObserver(",
        "syncRequest(",
    ] {
        assert!(code.contains(used), "the {language} samples show {used}");
    }
}

#[test]
fn the_readme_kotlin_samples_use_only_what_the_bindings_declare() {
    let api = kotlin_api();
    let types = api.types();
    let mut problems = Vec::new();
    let samples = readme_samples("kotlin");
    for sample in &samples {
        let code = code_only(sample);
        for name in capitalized(&code) {
            let known = types.contains(&name.as_str())
                || KOTLIN_PLATFORM.contains(&name.as_str())
                || declared_in(&code).contains(&name)
                || name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                || types.iter().any(|t| api.has_member(t, &name));
            if !known {
                problems.push(format!("{name}: no such type in the bindings"));
            }
        }
        for (ty, member) in qualified_members(&code, &types) {
            if !api.has_member(ty, member) {
                problems.push(format!("{ty}.{member}: no such case or function"));
            }
        }
        for (name, receiver, list) in calls(&code) {
            let given = arguments(&list);
            if receiver == "store" || receiver == "FieldStore" {
                let owners = ["FieldStoreInterface", "FieldStore"];
                let declared = api.functions(&owners, &name);
                if !declared.iter().any(|labels| labels.len() == given.len()) {
                    problems.push(format!(
                        "{receiver}.{name} with {} arguments: declared {declared:?}",
                        given.len()
                    ));
                }
            } else if types.contains(&name.as_str()) && receiver.is_empty() {
                let fields = api.record_fields(&name);
                if fields.len() != given.len() {
                    problems.push(format!(
                        "{name}(…) with {} arguments: its fields are {fields:?}",
                        given.len()
                    ));
                }
                for argument in &given {
                    if let Some((label, _)) = argument.split_once(" = ") {
                        if !fields.contains(&label.trim()) {
                            problems.push(format!("{name} has no field {label}"));
                        }
                    }
                }
            }
        }
    }
    assert_samples_checked("Kotlin", &samples, &problems);
}

#[test]
fn the_readme_swift_samples_use_only_what_the_bindings_declare() {
    let api = swift_api();
    let types = api.types();
    let cases: Vec<&str> = api
        .declarations
        .iter()
        .filter(|d| d.kind == Kind::Case)
        .map(|d| d.name.as_str())
        .collect();
    let mut problems = Vec::new();
    let samples = readme_samples("swift");
    assert!(!samples.is_empty(), "the README shows Swift samples");
    for sample in &samples {
        let code = code_only(sample);
        for name in capitalized(&code) {
            if !types.contains(&name.as_str())
                && !SWIFT_PLATFORM.contains(&name.as_str())
                && !declared_in(&code).contains(&name)
            {
                problems.push(format!("{name}: no such type in the bindings"));
            }
        }
        for (ty, member) in qualified_members(&code, &types) {
            if !api.has_member(ty, member) {
                problems.push(format!("{ty}.{member}: no such case or function"));
            }
        }
        // `.case` with the type inferred: some enum of the bindings has it.
        let chars: Vec<char> = code.chars().collect();
        for (at, _) in code.match_indices('.') {
            let after_identifier = at > 0
                && (chars[at - 1].is_alphanumeric()
                    || chars[at - 1] == '_'
                    || chars[at - 1] == ')'
                    || chars[at - 1] == '?');
            if after_identifier {
                continue;
            }
            let rest = &code[at + 1..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '`'))
                .unwrap_or(rest.len());
            let member = rest[..end].trim_matches('`');
            if !member.is_empty()
                && !cases.contains(&member)
                && !SWIFT_PLATFORM_MEMBERS.contains(&member)
            {
                problems.push(format!(".{member}: no such enum case"));
            }
        }
        for (name, receiver, list) in calls(&code) {
            let labels: Vec<String> = arguments(&list)
                .iter()
                .filter_map(|a| a.split_once(':').map(|(label, _)| label.trim().to_string()))
                .filter(|label| !label.contains(' ') && !label.is_empty())
                .collect();
            if receiver == "store" || receiver == "FieldStore" {
                let owners = ["FieldStoreProtocol", "FieldStore"];
                let declared = api.functions(&owners, &name);
                if !declared.contains(&labels.as_slice()) {
                    problems.push(format!(
                        "{receiver}.{name}({labels:?}): declared {declared:?}"
                    ));
                }
            } else if types.contains(&name.as_str()) && receiver.is_empty() {
                let fields = api.record_fields(&name);
                if fields != labels {
                    problems.push(format!(
                        "{name}({labels:?}): its initializer takes {fields:?}"
                    ));
                }
            }
        }
    }
    assert_samples_checked("Swift", &samples, &problems);
}

#[test]
fn the_packaging_scripts_name_the_crate_the_library_and_files_that_exist() {
    let root = repository();
    let gradle = read(&root.join("mobile-ffi/android/build.gradle.kts"));
    let package = read(&root.join("Package.swift"));
    let xcframework = read(&root.join("mobile-ffi/apple/build-xcframework.sh"));
    for (file, text) in [
        ("build.gradle.kts", &gradle),
        ("build-xcframework.sh", &xcframework),
    ] {
        assert!(
            text.contains("tournee-mobile-ffi") && text.contains("generate-bindings.sh"),
            "{file} builds the crate tournee-mobile-ffi and generates its bindings"
        );
    }
    assert!(gradle.contains("libtournee_mobile_ffi.so") || gradle.contains("cargo ndk"));
    for abi in ["arm64-v8a", "armeabi-v7a", "x86_64"] {
        assert!(gradle.contains(abi), "the AAR carries {abi}");
    }
    for target in [
        "aarch64-apple-ios",
        "aarch64-apple-ios-sim",
        "x86_64-apple-ios",
    ] {
        assert!(
            xcframework.contains(target),
            "the XCFramework carries {target}"
        );
    }
    assert!(xcframework.contains("libtournee_mobile_ffi.a"));
    // The names the generator writes are the ones the packages expect.
    let swift_module = "TourneeField";
    assert!(bindings()
        .join(format!("swift/{swift_module}.swift"))
        .exists());
    assert!(bindings()
        .join(format!("swift/{swift_module}FFI.h"))
        .exists());
    assert!(package.contains(&format!("name: \"{swift_module}\"")));
    assert!(package.contains(&format!("\"{swift_module}FFI\"")));
    assert!(package.contains(".binaryTarget("));
    let kotlin_package = read(&root.join("mobile-ffi/uniffi.toml"));
    assert!(kotlin_package.contains("package_name = \"org.tournee.field\""));
    assert!(gradle.contains("org.tournee.field"));
    for file in [
        "mobile-ffi/android/settings.gradle.kts",
        "mobile-ffi/android/src/main/AndroidManifest.xml",
        "mobile-ffi/android/consumer-rules.pro",
        "mobile-ffi/generate-bindings.sh",
    ] {
        assert!(root.join(file).exists(), "{file} exists");
    }
}
