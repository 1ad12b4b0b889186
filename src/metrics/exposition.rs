//! Writing the Prometheus text exposition format 0.0.4: family headers and escaped samples.

use std::fmt::{Display, Write};

use super::PREFIX;

/// Writes the `# HELP` and `# TYPE` lines of metric family `name` (given without the prefix);
/// `kind` is `counter`, `gauge`, `histogram` or `summary`.
pub fn write_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {PREFIX}{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
}

/// Writes one sample line of metric `name` (given without the prefix), escaping label values.
pub fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl Display) {
    out.push_str(PREFIX);
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (label, label_value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            for character in label_value.chars() {
                match character {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    other => out.push(other),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}
