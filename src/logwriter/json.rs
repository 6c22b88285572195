//! The writer's own lines, written as JSON objects when the log is JSON: a line too long to
//! write whole, and the note of dependency lines held back.

use super::{DEPENDENCY_LINES_PER_SEC, MAX_LINE};

/// A JSON line too long to write whole, as a JSON object holding its start as a string: at
/// most [`MAX_LINE`] bytes once escaped.
pub(super) fn cut_json(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let budget = MAX_LINE - 200;
    let mut used = 0;
    let start: String = text
        .trim_end()
        .chars()
        .take_while(|c| {
            used += match c {
                '"' | '\\' => 2,
                c if c.is_control() => 6,
                c => c.len_utf8(),
            };
            used <= budget
        })
        .collect();
    let note = serde_json::json!({
        "level": "WARN",
        "target": "wsauthn::logwriter",
        "message": "log line cut",
        "bytes": bytes.len(),
        "cut_bytes": bytes.len().saturating_sub(start.len()),
        "line": start,
    });
    let mut line = note.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// The note that `count` dependency lines were held back, in the writer's format.
pub(super) fn held_back_note(count: u64, json: bool) -> String {
    let message = format!(
        "held back {count} log lines from dependencies (over {DEPENDENCY_LINES_PER_SEC}/s)"
    );
    match json {
        true => format!(
            "{}\n",
            serde_json::json!({"level": "WARN", "target": "wsauthn::logwriter", "message": message})
        ),
        false => format!("wsauthn::logwriter: {message}\n"),
    }
}
