//! The public API of the generated Kotlin and Swift bindings, read from their text: every
//! declaration an app sees (types, nested cases, enum cases, functions and methods, fields),
//! whether a doc comment precedes it, and what a call needs (arguments, labels, record fields).
//! uniffi's own plumbing (`FfiConverter…`, `Uniffi…`, private and internal declarations) is
//! left out. `tests/sdk_bindings.rs` checks the documentation and the README's samples with it.
//! The generated code's layout is uniffi's (pinned at 0.32 in the workspace): one declaration a
//! line, top-level declarations at column 0.

use std::collections::BTreeMap;

/// What a declaration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A class, struct, enum, interface, protocol or type alias at the top level.
    Type,
    /// A case of a sealed class or an enum, or a class nested in one.
    Case,
    /// A function or a method (constructors included).
    Function,
    /// A field of a record or of an enum case.
    Field,
}

/// One public declaration of the bindings.
#[derive(Debug, Clone)]
pub struct Declaration {
    /// What it is.
    pub kind: Kind,
    /// The top-level type it belongs to (its own name for a type; empty for a top-level
    /// function).
    pub owner: String,
    /// Its name as the app writes it.
    pub name: String,
    /// Its line in the generated file, from 1.
    pub line: usize,
    /// Whether a doc comment (not just uniffi's `@suppress`) precedes it.
    pub documented: bool,
    /// For a function: its argument labels in order.
    pub arguments: Vec<String>,
}

/// The public API of one generated file.
#[derive(Debug, Default)]
pub struct Api {
    /// Every public declaration, in file order.
    pub declarations: Vec<Declaration>,
}

impl Api {
    /// The names of the top-level types.
    pub fn types(&self) -> Vec<&str> {
        self.of_kind(Kind::Type).map(|d| d.name.as_str()).collect()
    }

    /// Whether `owner` declares a case, nested class, method or field named `member`.
    pub fn has_member(&self, owner: &str, member: &str) -> bool {
        self.declarations
            .iter()
            .any(|d| d.kind != Kind::Type && d.owner == owner && d.name == member)
    }

    /// The argument labels of the functions named `name` declared by any of `owners`.
    pub fn functions(&self, owners: &[&str], name: &str) -> Vec<&[String]> {
        self.of_kind(Kind::Function)
            .filter(|d| owners.contains(&d.owner.as_str()) && d.name == name)
            .map(|d| d.arguments.as_slice())
            .collect()
    }

    /// The fields of the record `owner`, in order (its constructor's arguments).
    pub fn record_fields(&self, owner: &str) -> Vec<&str> {
        self.of_kind(Kind::Field)
            .filter(|d| d.owner == owner)
            .map(|d| d.name.as_str())
            .collect()
    }

    /// The declarations with no doc comment.
    pub fn undocumented(&self) -> Vec<&Declaration> {
        self.declarations.iter().filter(|d| !d.documented).collect()
    }

    /// How many declarations of each kind, documented or not: (kind, documented, total).
    pub fn counts(&self) -> BTreeMap<Kind, (usize, usize)> {
        let mut counts = BTreeMap::new();
        for d in &self.declarations {
            let entry = counts.entry(d.kind).or_insert((0, 0));
            entry.0 += usize::from(d.documented);
            entry.1 += 1;
        }
        counts
    }

    fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Declaration> {
        self.declarations.iter().filter(move |d| d.kind == kind)
    }
}

/// Whether a name is uniffi's plumbing rather than the crate's API.
fn plumbing(name: &str) -> bool {
    ["Ffi", "Uniffi", "uniffi", "Rust", "Foreign", "_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || [
            "Disposable",
            "NoHandle",
            "InternalException",
            "SyncObserverImpl",
            "InitializationResult",
        ]
        .contains(&name)
}

/// The identifier at the start of `text`, without Kotlin's or Swift's backquotes.
fn identifier(text: &str) -> Option<String> {
    let text = text.trim_start_matches('`');
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (end > 0).then(|| text[..end].to_string())
}

/// The labels of a parameter list `a: T, b: U` (Kotlin or Swift): the identifiers before each
/// top-level colon.
fn labels(parameters: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in parameters.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => start = i + 1,
            ':' if depth == 0 => {
                let label = parameters[start..i].trim().trim_matches('`');
                if let Some(label) = label.split_whitespace().last().and_then(identifier) {
                    labels.push(label);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    labels
}

/// The parameters between the parentheses that follow `name` on `line`.
fn parameters_after(line: &str, name: &str) -> String {
    let Some(at) = line.find(name) else {
        return String::new();
    };
    let rest = &line[at + name.len()..];
    let Some(open) = rest.find('(') else {
        return String::new();
    };
    let mut depth = 0;
    for (i, c) in rest[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return rest[open + 1..open + i].to_string();
                }
            }
            _ => {}
        }
    }
    rest[open + 1..].to_string()
}

/// Whether the lines before `index` end with a doc comment that says more than `@suppress`.
fn documented(lines: &[&str], index: usize) -> bool {
    // uniffi writes `*/override fun …` on one line for methods that throw nothing.
    let closes_here = lines[index].trim_start().starts_with("*/");
    let mut i = index;
    // Blank lines and annotations (`@Throws`, `@Suppress`) may stand between a doc and its
    // declaration.
    while !closes_here
        && i > 0
        && (lines[i - 1].trim().is_empty() || lines[i - 1].trim_start().starts_with('@'))
    {
        i -= 1;
    }
    if closes_here {
        i += 1;
    } else if i == 0 || !lines[i - 1].trim_end().ends_with("*/") {
        return false;
    }
    let mut text = String::new();
    let mut j = i - 1;
    loop {
        text.insert_str(0, lines[j]);
        if lines[j].contains("/**") || j == 0 {
            break;
        }
        j -= 1;
    }
    let words: String = text
        .replace("/**", "")
        .replace("*/", "")
        .replace('*', "")
        .replace("@suppress", "");
    !words.trim().is_empty()
}

/// How the generated Kotlin starts a public top-level type, and what the type is.
const KOTLIN_TYPES: &[(&str, &str)] = &[
    ("data class ", "record"),
    ("sealed class ", "sealed"),
    ("enum class ", "enum"),
    ("public interface ", "interface"),
    ("open class ", "class"),
    ("public typealias ", "alias"),
];

/// How the generated Swift starts a public top-level type, and what the type is.
const SWIFT_TYPES: &[(&str, &str)] = &[
    ("public struct ", "record"),
    ("public enum ", "enum"),
    ("public indirect enum ", "enum"),
    ("public protocol ", "protocol"),
    ("open class ", "class"),
    ("public typealias ", "alias"),
];

/// A top-level type (its name and what it is, from `types`) declared on `line`.
type TopLevelType = (String, &'static str);

/// What a top-level line declares, plumbing left out: a type (by `types`), or a function
/// (starting with `function`) with its argument labels.
fn top_level(
    line: &str,
    types: &[(&str, &'static str)],
    function: &str,
) -> (Option<TopLevelType>, Option<(String, Vec<String>)>) {
    let ty = types.iter().find_map(|(prefix, what)| {
        line.strip_prefix(prefix)
            .and_then(identifier)
            .filter(|name| !plumbing(name))
            .map(|name| (name, *what))
    });
    let function = line
        .strip_prefix(function)
        .and_then(identifier)
        .filter(|name| !plumbing(name))
        .map(|name| {
            let arguments = labels(&parameters_after(line, &name));
            (name, arguments)
        });
    (ty, function)
}

/// The public API of the generated Kotlin (`tournee_mobile_ffi.kt`).
pub fn kotlin(text: &str) -> Api {
    let lines: Vec<&str> = text.lines().collect();
    let mut api = Api::default();
    let mut owner: Option<(String, &str)> = None;
    for (index, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        // uniffi closes some method bodies at column 0: braces and comments there end nothing.
        let top = !raw.starts_with(' ')
            && !line.is_empty()
            && !line.starts_with(['}', '{', ')', '/', '*']);
        let mut add = |kind, owner: &str, name: String, arguments| {
            api.declarations.push(Declaration {
                kind,
                owner: owner.to_string(),
                name,
                line: index + 1,
                documented: documented(&lines, index),
                arguments,
            });
        };
        if top {
            let (ty, function) = top_level(line, KOTLIN_TYPES, "public fun `");
            if let Some((name, _)) = &ty {
                add(Kind::Type, name, name.clone(), Vec::new());
            }
            owner = ty;
            if let Some((name, arguments)) = function {
                add(Kind::Function, "", name, arguments);
            }
            continue;
        }
        let Some((owner, what)) = owner.as_ref() else {
            continue;
        };
        let nested = ["class ", "data class ", "object "]
            .iter()
            .find_map(|prefix| line.strip_prefix(prefix).and_then(identifier));
        if let Some(name) = nested.filter(|n| !plumbing(n) && n != "Companion") {
            if *what == "sealed" {
                add(Kind::Case, owner, name, Vec::new());
            }
        } else if let Some(at) = line.find("fun `") {
            if let Some(name) = identifier(&line[at + 5..]) {
                let arguments = labels(&parameters_after(line, &name));
                add(Kind::Function, owner, name, arguments);
            }
        } else if let Some(name) = ["var `", "val `"]
            .iter()
            .find_map(|prefix| line.strip_prefix(prefix).and_then(identifier))
        {
            if *what == "record" || *what == "sealed" {
                add(Kind::Field, owner, name, Vec::new());
            }
        } else if *what == "enum"
            && raw.starts_with("    ")
            && !raw.starts_with("     ")
            && line
                .trim_end_matches([',', ';'])
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && line.starts_with(|c: char| c.is_ascii_uppercase())
        {
            add(
                Kind::Case,
                owner,
                line.trim_end_matches([',', ';']).to_string(),
                Vec::new(),
            );
        }
    }
    api
}

/// The public API of the generated Swift (`TourneeField.swift`).
pub fn swift(text: &str) -> Api {
    let lines: Vec<&str> = text.lines().collect();
    let mut api = Api::default();
    let mut owner: Option<(String, &str)> = None;
    for (index, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        // uniffi writes a class's methods at column 0 too: they stay the class's.
        let top = !raw.starts_with(' ')
            && !line.is_empty()
            && !line.starts_with(['}', '{', ')', '/', '*'])
            && !line.starts_with("open func ")
            && !line.starts_with("public static func ")
            && !line.starts_with("public convenience init");
        // uniffi writes `public` alone on the line before an error enum's `enum`.
        let joined = if line == "public" {
            continue;
        } else if index > 0 && lines[index - 1].trim() == "public" {
            format!("public {line}")
        } else {
            line.to_string()
        };
        let doc_index = if joined != line { index - 1 } else { index };
        let mut add = |kind, owner: &str, name: String, arguments| {
            api.declarations.push(Declaration {
                kind,
                owner: owner.to_string(),
                name,
                line: index + 1,
                documented: documented(&lines, doc_index),
                arguments,
            });
        };
        if top {
            if line.starts_with("#") || line.starts_with('@') {
                continue;
            }
            let (ty, function) = top_level(&joined, SWIFT_TYPES, "public func ");
            if let Some((name, _)) = &ty {
                add(Kind::Type, name, name.clone(), Vec::new());
            }
            owner = ty;
            if let Some((name, arguments)) = function {
                add(Kind::Function, "", name, arguments);
            }
            continue;
        }
        let Some((owner, what)) = owner.as_ref() else {
            continue;
        };
        let function = ["func ", "open func ", "public static func ", "public func "]
            .iter()
            .find_map(|prefix| line.strip_prefix(prefix).and_then(identifier));
        if let Some(name) = function {
            if !plumbing(&name) && (*what == "protocol" || *what == "class" || *what == "enum") {
                let arguments = labels(&parameters_after(line, &name));
                add(Kind::Function, owner, name, arguments);
            }
        } else if let Some(name) = line.strip_prefix("public var ").and_then(identifier) {
            if *what == "record" && name != "errorDescription" {
                add(Kind::Field, owner, name, Vec::new());
            }
        } else if let Some(name) = line.strip_prefix("case ").and_then(identifier) {
            if *what == "enum" && raw.starts_with("    ") && !raw.starts_with("     ") {
                add(Kind::Case, owner, name, Vec::new());
            }
        }
    }
    api
}

#[cfg(test)]
mod tests {
    use super::*;

    const KOTLIN: &str = "\
/**
 * A stop.
 */
data class Stop (
    /**
     * Its order.
     */
    var `order`: kotlin.UInt
    , 
    var `items`: List<kotlin.String>
){
}

/**
 * @suppress
 */
public object FfiConverterTypeStop {
    fun `lift`(`x`: kotlin.Int): Stop
}

enum class StoreRole {
    /**
     * A postman.
     */
    POSTMAN,
    CUSTOMER;
}
";

    #[test]
    fn kotlin_declarations_are_found_with_their_documentation_and_plumbing_is_left_out() {
        let api = kotlin(KOTLIN);
        let found: Vec<_> = api
            .declarations
            .iter()
            .map(|d| (d.kind, d.name.as_str(), d.documented))
            .collect();
        assert_eq!(
            found,
            [
                (Kind::Type, "Stop", true),
                (Kind::Field, "order", true),
                (Kind::Field, "items", false),
                (Kind::Type, "StoreRole", false),
                (Kind::Case, "POSTMAN", true),
                (Kind::Case, "CUSTOMER", false),
            ]
        );
        assert_eq!(api.record_fields("Stop"), ["order", "items"]);
    }

    #[test]
    fn swift_declarations_are_found_with_their_labels() {
        let api = swift(
            "/**\n * The store.\n */\npublic protocol FieldStoreProtocol {\n    /**\n     * Records.\n     */\n    func recordAttempt(item: String, attempt: AttemptInput) throws -> PendingInteraction\n}\npublic \nenum TourneeError: Swift.Error {\n    case invalidInput(\n}\n",
        );
        let found: Vec<_> = api
            .declarations
            .iter()
            .map(|d| (d.kind, d.name.as_str(), d.documented))
            .collect();
        assert_eq!(
            found,
            [
                (Kind::Type, "FieldStoreProtocol", true),
                (Kind::Function, "recordAttempt", true),
                (Kind::Type, "TourneeError", false),
                (Kind::Case, "invalidInput", false),
            ]
        );
        assert_eq!(
            api.functions(&["FieldStoreProtocol"], "recordAttempt"),
            [["item".to_string(), "attempt".to_string()].as_slice()]
        );
    }
}
