//! Every test the documents name exists: a promise in `docs/` (or the README) that names a test
//! which was renamed or removed would otherwise go on claiming a check that no longer runs.
//!
//! Two forms are read, as the documents write them: `module::test_name` (a test of this suite,
//! under `tests/it/module…`), and `src/file.rs` `test_name` (a unit test in that file, or in the
//! directory of the same name).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The spans between backticks.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Every `.rs` file at `path`, or below it when it is a directory.
fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().map_while(Result::ok) {
            rust_files(&entry.path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The names of the functions in `paths` (files or directories).
fn functions(paths: &[PathBuf]) -> HashSet<String> {
    let mut files = Vec::new();
    for path in paths {
        rust_files(path, &mut files);
    }
    let mut names = HashSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for rest in text.split("fn ").skip(1) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

/// What a document names that cannot be found, as `document: reference`.
fn dangling(root: &Path, document: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(document).unwrap();
    let suite = root.join("tests/it");
    let spans = code_spans(&text);
    let mut missing = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let segments: Vec<&str> = span.split("::").collect();
        let module = segments[0];
        let in_suite = suite.join(format!("{module}.rs")).exists() || suite.join(module).is_dir();
        if segments.len() >= 2 && segments.iter().all(|s| is_ident(s)) && in_suite {
            let name = segments[segments.len() - 1];
            let under = [suite.join(format!("{module}.rs")), suite.join(module)];
            // A module's path (`browser::screens`) names its file; anything else a test.
            let file = suite.join(segments.join("/"));
            if !functions(&under).contains(name) && !file.with_extension("rs").exists() {
                missing.push(format!("{}: {span}", document.display()));
            }
            continue;
        }
        let unit = span.starts_with("src/") && span.ends_with(".rs");
        if let (true, Some(next)) = (unit, spans.get(i + 1)) {
            // `src/x.rs` `name`: the name must be a function of that file or its directory.
            let file = root.join(span);
            if is_ident(next) && next.contains('_') {
                let under = [file.clone(), file.with_extension("")];
                if !functions(&under).contains(*next) {
                    missing.push(format!("{}: {span} {next}", document.display()));
                }
            }
        }
    }
    missing
}

#[test]
fn every_test_a_document_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut documents = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map_while(Result::ok)
    {
        if entry.path().extension().is_some_and(|e| e == "md") {
            documents.push(entry.path());
        }
    }
    let mut missing = Vec::new();
    for document in &documents {
        missing.extend(dangling(root, document));
    }
    assert!(
        missing.is_empty(),
        "documents name tests that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_renamed_test_is_found_dangling() {
    // The check itself: a document naming a test that is not there fails it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("promise.md");
    std::fs::write(
        &doc,
        "| a promise | `sockets::no_such_test_was_ever_written`, `promises::every_test_a_document_names_exists` |\n\
         | another | `src/metrics.rs` `no_such_unit_test`, `src/metrics.rs` `events_and_observations_show_in_the_exposition` |\n",
    )
    .unwrap();
    let found = dangling(root, &doc);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].ends_with("sockets::no_such_test_was_ever_written"));
    assert!(found[1].ends_with("src/metrics.rs no_such_unit_test"));
}
