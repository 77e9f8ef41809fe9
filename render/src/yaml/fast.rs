//! A fast reader for the block-style YAML that manifests are written in.
//!
//! serde-saphyr stays the authority. This reader takes a conservative subset — block
//! mappings and sequences, plain, quoted and block scalars, flow collections of scalars,
//! comments and `---` separators — and answers `None` ("not mine") for anything else:
//! anchors, aliases, tags, tabs, directives, complex keys, duplicate keys, unusual
//! indentation, and every error. The caller then parses the text with serde-saphyr, which
//! also writes the error message. Plain scalars that are not obviously strings or small
//! decimal integers are typed by serde-saphyr as well (one scalar at a time), so the typing
//! rules live in one place. The tests hold both readers to the same output, on the corpus
//! and on mutated inputs.
//!
//! Why: CRD bundles are megabytes of YAML, and reading them through serde was most of
//! `keelson build`'s time.

use serde_json::{Map, Value};

/// Types one single-line plain scalar the way the full parser would (`None`: it cannot).
pub(crate) type Resolve<'r> = &'r dyn Fn(&str) -> Option<Value>;

/// The documents of `text`, empty and null ones dropped; `None` when the text is outside
/// the subset this reader handles.
pub(crate) fn documents(text: &str, resolve: Resolve) -> Option<Vec<Value>> {
    if !plain_text(text) {
        return None;
    }
    let mut reader = Reader {
        src: text,
        b: text.as_bytes(),
        pos: 0,
        line_start: 0,
        depth: 0,
        nodes: 0,
        resolve,
    };
    reader.stream().ok()
}

/// Bytes this reader leaves to serde-saphyr: tabs, carriage returns, control characters,
/// byte-order marks, NEL and the Unicode line/paragraph separators, non-characters.
fn plain_text(text: &str) -> bool {
    const MAX: usize = 32 << 20; // well inside serde-saphyr's scalar and input budgets
    let b = text.as_bytes();
    if b.len() > MAX {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            if (c < 0x20 && c != b'\n') || c == 0x7f {
                return false;
            }
        } else {
            let next = b.get(i + 1).copied().unwrap_or(0);
            let third = b.get(i + 2).copied().unwrap_or(0);
            let odd = (c == 0xC2 && (0x80..=0x9F).contains(&next))
                || (c == 0xE2 && next == 0x80 && (third == 0xA8 || third == 0xA9))
                || (c == 0xEF && next == 0xBB && third == 0xBF)
                || (c == 0xEF && next == 0xBF && (third == 0xBE || third == 0xBF));
            if odd {
                return false;
            }
        }
        i += 1;
    }
    true
}

/// "Not in the subset": the caller falls back to serde-saphyr.
struct Bail;
type R<T> = Result<T, Bail>;

/// What follows, past blank lines and comments.
enum Next {
    /// The first character of a line, at this indentation.
    Content(usize),
    /// The end of the text, or a `---` line (the end of the document).
    End,
}

const MAX_DEPTH: usize = 128;
const MAX_NODES: usize = 5_000_000;
const MAX_KEY: usize = 1000;

struct Reader<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    line_start: usize,
    depth: usize,
    nodes: usize,
    resolve: Resolve<'a>,
}

impl<'a> Reader<'a> {
    fn stream(&mut self) -> R<Vec<Value>> {
        let mut docs = Vec::new();
        loop {
            match self.next_content()? {
                Next::End if self.pos >= self.b.len() => return Ok(docs),
                Next::End => {
                    // a `---` line: anything after the marker but a comment is not ours
                    self.pos += 3;
                    if !self.rest_is_blank()? {
                        return Err(Bail);
                    }
                }
                Next::Content(_) => {
                    let doc = self.node(-1, true)?;
                    if !doc.is_null() {
                        docs.push(doc);
                    }
                    if docs.len() > 50_000 {
                        return Err(Bail);
                    }
                    if let Next::Content(_) = self.next_content()? {
                        return Err(Bail);
                    }
                }
            }
        }
    }

    // ---- positions and lines ----

    fn peek(&self) -> u8 {
        self.b.get(self.pos).copied().unwrap_or(0)
    }

    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    /// A space, a line end or the end of the text at `i`.
    fn blank_at(&self, i: usize) -> bool {
        matches!(self.at(i), b' ' | b'\n' | 0)
    }

    fn col(&self) -> usize {
        self.pos - self.line_start
    }

    fn line_end(&self, from: usize) -> usize {
        memchr::memchr(b'\n', &self.b[from..]).map_or(self.b.len(), |i| from + i)
    }

    /// Moves to the start of the next line (or the end of the text).
    fn next_line(&mut self) {
        let end = self.line_end(self.pos);
        self.pos = (end + 1).min(self.b.len());
        self.line_start = self.pos;
    }

    fn is_marker(&self, at: usize, marker: &[u8]) -> bool {
        self.b[at..].starts_with(marker) && self.blank_at(at + 3)
    }

    /// Skips spaces, comments and blank lines to the next content.
    fn next_content(&mut self) -> R<Next> {
        loop {
            while self.peek() == b' ' {
                self.pos += 1;
            }
            match self.peek() {
                0 => return Ok(Next::End),
                b'\n' => {
                    self.pos += 1;
                    self.line_start = self.pos;
                }
                b'#' => self.next_line(),
                c => {
                    if self.col() == 0 {
                        if self.is_marker(self.pos, b"---") {
                            return Ok(Next::End);
                        }
                        if self.is_marker(self.pos, b"...") || c == b'%' {
                            return Err(Bail);
                        }
                    }
                    return Ok(Next::Content(self.col()));
                }
            }
        }
    }

    /// After an indicator or a scalar: true when only spaces and a comment remain on the
    /// line (then moves to the next line); false when content follows (and stays there).
    fn rest_is_blank(&mut self) -> R<bool> {
        let start = self.pos;
        while self.peek() == b' ' {
            self.pos += 1;
        }
        match self.peek() {
            0 => Ok(true),
            b'\n' => {
                self.next_line();
                Ok(true)
            }
            b'#' if self.pos > start || self.col() == 0 => {
                self.next_line();
                Ok(true)
            }
            b'#' => Err(Bail),
            _ => Ok(false),
        }
    }

    /// The line must end here (spaces and a comment allowed).
    fn end_of_line(&mut self) -> R<()> {
        if self.rest_is_blank()? {
            Ok(())
        } else {
            Err(Bail)
        }
    }

    fn at_seq_entry(&self) -> bool {
        self.peek() == b'-' && self.blank_at(self.pos + 1)
    }

    // ---- block nodes ----

    /// The node starting at the cursor. `parent` is the indentation of the enclosing block
    /// collection (-1 at the root); `block` allows a block mapping or sequence to start
    /// here (at a line's first content or right after `- `).
    fn node(&mut self, parent: isize, block: bool) -> R<Value> {
        self.depth += 1;
        self.nodes += 1;
        if self.depth > MAX_DEPTH || self.nodes > MAX_NODES {
            return Err(Bail);
        }
        let column = self.col();
        let value = match self.peek() {
            b'-' if self.blank_at(self.pos + 1) => {
                if !block {
                    return Err(Bail);
                }
                self.sequence(column)?
            }
            b'|' | b'>' => Value::String(self.block_scalar(parent)?),
            b'"' | b'\'' => {
                if self.quoted_key_ahead() {
                    if !block {
                        return Err(Bail);
                    }
                    self.mapping(column)?
                } else {
                    let text = self.quoted(parent)?;
                    self.end_of_line()?;
                    Value::String(text)
                }
            }
            b'[' | b'{' => {
                let value = self.flow(parent)?;
                self.end_of_line()?;
                value
            }
            b'&' | b'*' | b'!' | b'?' | b':' | b'%' | b'@' | b'`' | b',' | b']' | b'}' | b'#'
            | b'<' | b'=' => return Err(Bail),
            _ => {
                if self.plain_key_ahead() {
                    if !block {
                        return Err(Bail);
                    }
                    self.mapping(column)?
                } else {
                    self.plain(parent)?
                }
            }
        };
        self.depth -= 1;
        Ok(value)
    }

    /// A block mapping whose keys sit at column `indent`; the cursor is on the first key.
    fn mapping(&mut self, indent: usize) -> R<Value> {
        let mut map = Map::new();
        loop {
            let key = self.key()?;
            let value = if self.rest_is_blank()? {
                match self.next_content()? {
                    Next::Content(i) if i > indent => self.node(indent as isize, true)?,
                    // `key:` followed by a sequence at the key's own indentation
                    Next::Content(i) if i == indent && self.at_seq_entry() => {
                        self.nodes += 1;
                        self.sequence(indent)?
                    }
                    _ => Value::Null,
                }
            } else {
                self.node(indent as isize, false)?
            };
            if map.insert(key, value).is_some() {
                return Err(Bail); // duplicate keys: serde-saphyr reports them
            }
            match self.next_content()? {
                Next::Content(i) if i == indent && !self.at_seq_entry() => {}
                Next::Content(i) if i < indent => break,
                Next::End => break,
                Next::Content(_) => return Err(Bail),
            }
        }
        Ok(Value::Object(map))
    }

    /// A block sequence whose `-` sit at column `indent`; the cursor is on the first `-`.
    fn sequence(&mut self, indent: usize) -> R<Value> {
        let mut items = Vec::new();
        loop {
            self.pos += 1; // the `-`
            let item = if self.rest_is_blank()? {
                match self.next_content()? {
                    Next::Content(i) if i > indent => self.node(indent as isize, true)?,
                    _ => Value::Null,
                }
            } else {
                self.node(indent as isize, true)?
            };
            items.push(item);
            match self.next_content()? {
                Next::Content(i) if i == indent && self.at_seq_entry() => {}
                // a key after a sequence at its key's indentation ends it; the mapping
                // around judges anything else
                Next::Content(i) if i <= indent => break,
                Next::End => break,
                Next::Content(_) => return Err(Bail),
            }
        }
        Ok(Value::Array(items))
    }

    /// A mapping key and its `:`; leaves the cursor after the `:`.
    fn key(&mut self) -> R<String> {
        let start = self.pos;
        let key = match self.peek() {
            // implicit keys are single-line
            b'"' | b'\'' if self.quoted_key_ahead() => self.quoted(-1)?,
            b'"' | b'\'' => return Err(Bail),
            b'-' if self.blank_at(self.pos + 1) => return Err(Bail),
            b'&' | b'*' | b'!' | b'?' | b':' | b'%' | b'@' | b'`' | b',' | b'[' | b']' | b'{'
            | b'}' | b'#' | b'|' | b'>' | b'<' | b'=' => return Err(Bail),
            _ => {
                let end = self.plain_key_end(self.pos).ok_or(Bail)?;
                let text = self.src[self.pos..end].trim_end_matches(' ');
                self.pos = end;
                match self.plain_value(text)? {
                    Value::String(s) if s == text => s,
                    _ => return Err(Bail), // keys that type as numbers, booleans, null
                }
            }
        };
        while self.peek() == b' ' {
            self.pos += 1;
        }
        if self.peek() != b':' || !self.blank_at(self.pos + 1) || self.pos - start > MAX_KEY {
            return Err(Bail);
        }
        self.pos += 1;
        Ok(key)
    }

    /// Where a plain key ends (its `:` separator), if this line is `plain-key: ...`.
    fn plain_key_end(&self, from: usize) -> Option<usize> {
        let end = self.line_end(from);
        let line = &self.b[from..end];
        let mut i = 0;
        while i < line.len() {
            match line[i] {
                b':' if self.blank_at(from + i + 1) => return Some(from + i),
                b'#' if i > 0 && line[i - 1] == b' ' => return None,
                _ => {}
            }
            i += 1;
        }
        None
    }

    fn plain_key_ahead(&self) -> bool {
        self.plain_key_end(self.pos).is_some()
    }

    /// Whether the quoted scalar at the cursor closes on this line and is followed by `:`.
    fn quoted_key_ahead(&self) -> bool {
        let quote = self.peek();
        let end = self.line_end(self.pos);
        let mut i = self.pos + 1;
        while i < end {
            let c = self.b[i];
            if quote == b'"' && c == b'\\' {
                i += 2;
                continue;
            }
            if c == quote {
                if quote == b'\'' && self.at(i + 1) == b'\'' {
                    i += 2;
                    continue;
                }
                let mut j = i + 1;
                while self.at(j) == b' ' {
                    j += 1;
                }
                return self.at(j) == b':' && self.blank_at(j + 1);
            }
            i += 1;
        }
        false
    }

    // ---- scalars ----

    /// A plain scalar in block context, possibly folded over several lines.
    fn plain(&mut self, parent: isize) -> R<Value> {
        let src = self.src;
        let (first, stop) = self.plain_line(self.pos)?;
        let text = src[self.pos..first].trim_end_matches(' ');
        self.pos = first;
        if stop == Stop::Comment {
            self.next_line();
            return self.plain_value(text);
        }
        self.next_line();
        // continuation lines: more indented than the parent, not comments or markers
        let mut folded: Option<String> = None;
        let mut empties = 0;
        loop {
            let line_start = self.pos;
            let end = self.line_end(line_start);
            let line = &src[line_start..end];
            let content = line.trim_start_matches(' ');
            let indent = line.len() - content.len();
            if content.is_empty() {
                if end >= self.b.len() {
                    break;
                }
                empties += 1;
                self.pos = end + 1;
                self.line_start = self.pos;
                continue;
            }
            let first_byte = content.as_bytes()[0];
            if indent as isize <= parent
                || first_byte == b'#'
                || (indent == 0
                    && (self.is_marker(line_start, b"---") || content.starts_with("...")))
            {
                break;
            }
            if b"-?:,[]{}&*!|>'\"%@`".contains(&first_byte) {
                return Err(Bail);
            }
            let (stop_at, stop) = self.plain_line(line_start + indent)?;
            if stop != Stop::Line {
                return Err(Bail);
            }
            let piece = src[line_start + indent..stop_at].trim_end_matches(' ');
            let out = folded.get_or_insert_with(|| text.to_owned());
            if empties == 0 {
                out.push(' ');
            } else {
                out.extend(std::iter::repeat_n('\n', empties));
            }
            out.push_str(piece);
            empties = 0;
            self.pos = (end + 1).min(self.b.len());
            self.line_start = self.pos;
        }
        // the cursor is at the start of the line that ended the scalar
        match folded {
            Some(s) => Ok(Value::String(s)),
            None => self.plain_value(text),
        }
    }

    /// Scans one line of a block plain scalar from `from`: where it ends and why.
    fn plain_line(&self, from: usize) -> R<(usize, Stop)> {
        let end = self.line_end(from);
        let mut i = from;
        while i < end {
            match self.b[i] {
                b':' if self.blank_at(i + 1) => return Err(Bail), // a key where none may be
                b'#' if i > from && self.b[i - 1] == b' ' => return Ok((i, Stop::Comment)),
                _ => {}
            }
            i += 1;
        }
        Ok((end, Stop::Line))
    }

    /// Types a single-line plain scalar: letters-first words that are no YAML keyword are
    /// strings, short decimal numbers are integers, and serde-saphyr decides the rest.
    fn plain_value(&self, text: &str) -> R<Value> {
        let b = text.as_bytes();
        let Some(&first) = b.first() else {
            return Ok(Value::Null);
        };
        if first.is_ascii_alphabetic() && !keyword(text) {
            return Ok(Value::String(text.to_owned()));
        }
        if first.is_ascii_digit()
            && b.len() <= 18
            && (first != b'0' || b.len() == 1)
            && b.iter().all(u8::is_ascii_digit)
        {
            return text.parse::<u64>().map(Value::from).map_err(|_| Bail);
        }
        if matches!(first, b'/' | b'$' | b'(' | b')' | b'^' | b';') || digits_then_unit(b) {
            return Ok(Value::String(text.to_owned()));
        }
        // text that would read differently on its own: markers, a lone indicator
        let indicator = matches!(first, b'-' | b'?' | b':') && b.get(1).is_none_or(|&c| c == b' ');
        if indicator || text.starts_with("---") || text.starts_with("...") {
            return Err(Bail);
        }
        match (self.resolve)(text) {
            Some(Value::Null) if !matches!(text, "~" | "null" | "Null" | "NULL") => Err(Bail),
            Some(Value::Array(_) | Value::Object(_)) | None => Err(Bail),
            Some(value) => Ok(value),
        }
    }

    /// A single- or double-quoted scalar; may span lines (folded as YAML folds them).
    fn quoted(&mut self, parent: isize) -> R<String> {
        let quote = self.peek();
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos; // start of the literal run not yet copied
        loop {
            let c = self.peek();
            match c {
                0 => return Err(Bail),
                b'\'' if quote == b'\'' => {
                    out.push_str(&self.src[run..self.pos]);
                    if self.at(self.pos + 1) == b'\'' {
                        out.push('\'');
                        self.pos += 2;
                        run = self.pos;
                    } else {
                        self.pos += 1;
                        return Ok(out);
                    }
                }
                b'"' if quote == b'"' => {
                    out.push_str(&self.src[run..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' if quote == b'"' => {
                    out.push_str(&self.src[run..self.pos]);
                    if self.at(self.pos + 1) == b'\n' {
                        // an escaped line break: joins the lines without a space
                        self.pos += 1;
                        self.fold_break(parent, &mut out, true)?;
                    } else {
                        self.escape(&mut out)?;
                    }
                    run = self.pos;
                }
                b'\n' => {
                    let kept = self.src[run..self.pos].trim_end_matches(' ');
                    out.push_str(kept);
                    self.fold_break(parent, &mut out, false)?;
                    run = self.pos;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// At a line break inside a quoted scalar: skips it, the blank lines after it and the
    /// next line's indentation, and writes what YAML folds them into.
    fn fold_break(&mut self, parent: isize, out: &mut String, escaped: bool) -> R<()> {
        let mut empties = 0;
        loop {
            self.pos += 1; // the '\n'
            self.line_start = self.pos;
            while self.peek() == b' ' {
                self.pos += 1;
            }
            if self.peek() == b'\n' {
                empties += 1;
                continue;
            }
            if self.peek() == 0 {
                return Err(Bail);
            }
            let indent = self.col();
            if (indent as isize) <= parent
                || (indent == 0
                    && (self.is_marker(self.pos, b"---") || self.is_marker(self.pos, b"...")))
            {
                return Err(Bail);
            }
            break;
        }
        if empties > 0 {
            out.extend(std::iter::repeat_n('\n', empties));
        } else if !escaped {
            out.push(' ');
        }
        Ok(())
    }

    /// One escape sequence of a double-quoted scalar (the cursor is on the `\`).
    fn escape(&mut self, out: &mut String) -> R<()> {
        let c = self.at(self.pos + 1);
        self.pos += 2;
        let simple = match c {
            b'0' => '\0',
            b'a' => '\x07',
            b'b' => '\x08',
            b't' => '\t',
            b'n' => '\n',
            b'v' => '\x0b',
            b'f' => '\x0c',
            b'r' => '\r',
            b'e' => '\x1b',
            b' ' => ' ',
            b'"' => '"',
            b'/' => '/',
            b'\\' => '\\',
            b'N' => '\u{85}',
            b'_' => '\u{a0}',
            b'L' => '\u{2028}',
            b'P' => '\u{2029}',
            b'x' | b'u' | b'U' => {
                let len = match c {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                let digits = self.src.get(self.pos..self.pos + len).ok_or(Bail)?;
                if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
                    return Err(Bail);
                }
                let code = u32::from_str_radix(digits, 16).map_err(|_| Bail)?;
                self.pos += len;
                char::from_u32(code).ok_or(Bail)?
            }
            _ => return Err(Bail),
        };
        out.push(simple);
        Ok(())
    }

    /// A literal (`|`) or folded (`>`) block scalar; the cursor is on the indicator.
    fn block_scalar(&mut self, parent: isize) -> R<String> {
        let folded = self.peek() == b'>';
        self.pos += 1;
        let chomp = match self.peek() {
            b'-' | b'+' => {
                self.pos += 1;
                self.b[self.pos - 1]
            }
            _ => b' ',
        };
        if self.peek().is_ascii_digit() || !self.rest_is_blank()? {
            return Err(Bail); // explicit indentation, or text after the header
        }
        let src = self.src;
        let mut lines: Vec<&str> = Vec::new();
        let mut indent: Option<usize> = None;
        let mut leading_blank = 0;
        let mut last_content = None;
        while self.pos < self.b.len() {
            let end = self.line_end(self.pos);
            let line = &src[self.pos..end];
            let spaces = line.len() - line.trim_start_matches(' ').len();
            if spaces == line.len() {
                match indent {
                    None => leading_blank = leading_blank.max(spaces),
                    Some(i) if spaces > i => return Err(Bail),
                    Some(_) => {}
                }
                lines.push("");
            } else {
                let i = match indent {
                    Some(i) => i,
                    None if spaces as isize <= parent => break,
                    None if spaces == 0 || leading_blank > spaces => return Err(Bail),
                    None => *indent.insert(spaces),
                };
                if spaces < i {
                    break;
                }
                lines.push(&line[i..]);
                last_content = Some(lines.len());
            }
            if end >= self.b.len() {
                return Err(Bail); // no final line break: chomping there is not worth it
            }
            self.pos = end + 1;
            self.line_start = self.pos;
        }
        let Some(content_end) = last_content else {
            return if chomp == b'+' {
                Err(Bail)
            } else {
                Ok(String::new())
            };
        };
        let trailing = lines.len() - content_end;
        let body = &lines[..content_end];
        let mut out = if folded {
            fold_lines(body)
        } else {
            body.join("\n")
        };
        match chomp {
            b'-' => {}
            b'+' => out.extend(std::iter::repeat_n('\n', 1 + trailing)),
            _ => out.push('\n'),
        }
        Ok(out)
    }

    // ---- flow collections ----

    /// A flow sequence or mapping of scalars and flow collections.
    fn flow(&mut self, parent: isize) -> R<Value> {
        self.depth += 1;
        self.nodes += 1;
        if self.depth > MAX_DEPTH || self.nodes > MAX_NODES {
            return Err(Bail);
        }
        let open = self.peek();
        self.pos += 1;
        let value = if open == b'[' {
            let mut items = Vec::new();
            loop {
                self.flow_space(parent)?;
                if self.peek() == b']' {
                    break;
                }
                items.push(self.flow_node(parent)?);
                self.flow_space(parent)?;
                match self.peek() {
                    b',' => self.pos += 1,
                    b']' => break,
                    _ => return Err(Bail),
                }
            }
            Value::Array(items)
        } else {
            let mut map = Map::new();
            loop {
                self.flow_space(parent)?;
                if self.peek() == b'}' {
                    break;
                }
                let key = match self.flow_node(parent)? {
                    Value::String(s) => s,
                    _ => return Err(Bail),
                };
                self.flow_space(parent)?;
                if self.peek() != b':' || !self.blank_at(self.pos + 1) {
                    return Err(Bail);
                }
                self.pos += 1;
                self.flow_space(parent)?;
                let value = match self.peek() {
                    b',' | b'}' => Value::Null,
                    _ => self.flow_node(parent)?,
                };
                if map.insert(key, value).is_some() {
                    return Err(Bail);
                }
                self.flow_space(parent)?;
                match self.peek() {
                    b',' => self.pos += 1,
                    b'}' => break,
                    _ => return Err(Bail),
                }
            }
            Value::Object(map)
        };
        self.pos += 1; // the closing bracket
        self.depth -= 1;
        Ok(value)
    }

    fn flow_node(&mut self, parent: isize) -> R<Value> {
        match self.peek() {
            b'[' | b'{' => self.flow(parent),
            b'"' | b'\'' => {
                self.nodes += 1;
                Ok(Value::String(self.quoted(parent)?))
            }
            b'-' if self.blank_at(self.pos + 1) => Err(Bail),
            b'&' | b'*' | b'!' | b'?' | b':' | b'%' | b'@' | b'`' | b',' | b']' | b'}' | b'#'
            | b'|' | b'>' | b'<' | b'=' => Err(Bail),
            _ => {
                self.nodes += 1;
                let start = self.pos;
                let end = self.line_end(start);
                let mut i = start;
                while i < end {
                    match self.b[i] {
                        b',' | b'[' | b']' | b'{' | b'}' => break,
                        b':' if self.blank_at(i + 1)
                            || matches!(self.at(i + 1), b',' | b'[' | b']' | b'{' | b'}') =>
                        {
                            break;
                        }
                        b'#' if self.b[i - 1] == b' ' => break,
                        _ => {}
                    }
                    i += 1;
                }
                self.pos = i;
                let src = self.src;
                let text = src[start..i].trim_end_matches(' ');
                if text.is_empty() {
                    return Err(Bail);
                }
                self.plain_value(text)
            }
        }
    }

    /// Spaces, line breaks and comments inside a flow collection.
    fn flow_space(&mut self, parent: isize) -> R<()> {
        loop {
            let before = self.pos;
            while self.peek() == b' ' {
                self.pos += 1;
            }
            match self.peek() {
                b'\n' => {
                    self.pos += 1;
                    self.line_start = self.pos;
                    while self.peek() == b' ' {
                        self.pos += 1;
                    }
                    let indent = self.col();
                    if self.peek() != b'\n'
                        && self.peek() != b'#'
                        && ((indent as isize) <= parent
                            || (indent == 0
                                && (self.is_marker(self.pos, b"---")
                                    || self.is_marker(self.pos, b"..."))))
                    {
                        return Err(Bail);
                    }
                }
                b'#' if self.pos > before || self.col() == 0 => self.next_line_in_flow(),
                b'#' => return Err(Bail),
                _ => return Ok(()),
            }
        }
    }

    fn next_line_in_flow(&mut self) {
        // stay on the '\n' so flow_space checks the next line's indentation
        self.pos = self.line_end(self.pos);
    }
}

#[derive(PartialEq)]
enum Stop {
    Line,
    Comment,
}

/// Quantities and versions such as `500m`, `128Mi`, `8080/TCP` or `1.2.3`: a digit first,
/// then a letter that no YAML number or timestamp contains, or a second `.`.
fn digits_then_unit(b: &[u8]) -> bool {
    b[0].is_ascii_digit()
        && (b.iter().any(|&c| {
            (c.is_ascii_alphabetic() && !b"eExXoObBaAcCdDfFtTzZ".contains(&c)) || c == b'/'
        }) || (b.iter().all(|&c| c.is_ascii_digit() || c == b'.')
            && b.iter().filter(|&&c| c == b'.').count() >= 2))
}

/// Words that YAML may type as something other than a string, in any letter case.
fn keyword(text: &str) -> bool {
    text.len() <= 8
        && matches!(
            text.to_ascii_lowercase().as_str(),
            "y" | "n"
                | "yes"
                | "no"
                | "on"
                | "off"
                | "true"
                | "false"
                | "null"
                | "nan"
                | "inf"
                | "infinity"
        )
}

/// Folds the lines of a `>` block scalar: breaks between text lines become spaces, a run
/// of blank lines becomes that many line feeds, and lines that start with a space (more
/// indented) keep their breaks.
fn fold_lines(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut previous_text: Option<bool> = None; // Some(true): last content was a text line
    let mut empties = 0;
    for line in lines {
        if line.is_empty() {
            empties += 1;
            continue;
        }
        let text = !line.starts_with(' ');
        match previous_text {
            None => out.extend(std::iter::repeat_n('\n', empties)),
            Some(true) if text => {
                if empties == 0 {
                    out.push(' ');
                } else {
                    out.extend(std::iter::repeat_n('\n', empties));
                }
            }
            Some(_) => out.extend(std::iter::repeat_n('\n', empties + 1)),
        }
        out.push_str(line);
        previous_text = Some(text);
        empties = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(text: &str) -> Option<Vec<Value>> {
        crate::yaml::both_readers(text).0
    }

    /// The fast reader either declines or agrees with serde-saphyr; returns whether it read.
    fn agrees(text: &str) -> bool {
        match crate::yaml::both_readers(text) {
            (None, _) => false,
            (Some(ours), theirs) => {
                assert_eq!(
                    Some(&ours),
                    theirs.as_ref(),
                    "the fast reader differs from serde-saphyr on:\n{text}"
                );
                true
            }
        }
    }

    /// Inputs the fast reader must read itself (and read as serde-saphyr does).
    const READS: &[&str] = &[
        "a: 1\nb: two\nc:\nd: ~\ne: null\nf: true\ng: yes\nh: 0644\ni: 1.5\nj: -3\nk: 0x1F\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    app.kubernetes.io/name: web\ndata:\n  k: v\n",
        "---\na: 1\n---\n# only a comment\n---\nb: 2\n",
        "--- # comment\na: 1\n---\n",
        "items:\n- a\n- b: 1\n  c: 2\n-   - x\n    - y\n- \n-\n  nested: true\nafter: 1\n",
        "seq:\n  - 1\n  - two\n  -\n    - deep\n",
        "- - a\n  - b\n- c: d\n  e:\n  - f\n",
        "k: |\n  line one\n    indented\n\n  three\n\nnext: 1\n",
        "k: |-\n  a\n  b\n\n\nn: 1\n",
        "k: |+\n  a\n  b\n\n\nn: 1\n",
        "k: >\n  folded\n  text\n\n  para\n    more indented\n  back\n\nn: 1\n",
        "k: >-\n  a\n  b\n",
        "k: >+\n  a\n\n",
        "k: |\n\n  after blank\n",
        "k: |\n  x\n# comment\nn: 1\n",
        "k: |\nn: 1\n",
        "- |\n  in seq\n- >\n  folded in seq\n",
        "k: 'single ''quoted'' string'\nl: \"double \\\"quoted\\\" \\t tab \\u00e9 \\x41 \\\\ \\/\"\n",
        "k: \"multi\n  line\n\n  quoted\"\nl: 'also\n  single'\n",
        "k: \"escaped \\\n  break\"\n",
        "k: plain\n  multi line\n\n  scalar\nl: 1\n",
        "k: plain # a comment\nl: x#y\nm: a:b\nn: http://example.com/a?b=c#d\n",
        "flow: [a, 'b', \"c\", 1, true, [x], {k: v}]\nempty: []\nobj: {}\nmap: {a: 1, b: [2, 3], c: }\n",
        "multi: [\n  a,\n  b\n  ]\n",
        "\"quoted key\": 1\n'single': 2\nplain key: 3\n",
        "- \"q\": 1\n  r: 2\n",
        "key with spaces : value\n",
        "unicode: “quotes” é ☃\nemoji: \"\\U0001F600\"\n",
        "path: /var/run\nurl: https://x\nver: 1.2.3\ncpu: 500m\nmem: 128Mi\nip: 10.0.0.1\n",
        "port: 8080/TCP\nt: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\ns: 1:30\nh: 0x1f\no: 0o17\nu: 1_000\n",
        "q: [1.5Gi, 2e3, 3.0.1, 1e, 0b101, $HOME, (x), /a]\n",
        "neg: -1\nfloat: -0.5\nexp: 1e3\nzero: 0\n",
        "big: 123456789012345678901234567890\n",
        "  indented: root\n  also: here\n",
        "scalar document\n",
        "description: \"Field 0 of kind 0; a long description as real CRDs carry.\"\n",
    ];

    /// Inputs the fast reader leaves to serde-saphyr.
    const DECLINES: &[&str] = &[
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a:\t1\n",
        "a: 1\r\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: 1\na: 2\n",
        "? complex\n: key\n",
        "<<: {a: 1}\n",
        "a: |2\n  x\n",
        "a: b: c\n",
        "a:\n  b: 1\n   c: 2\n",
        "1: one\n",
        "true: yes\n",
        "--- text\n",
        "a: |\n  no final break",
        "a: \"unterminated\n",
        "a: [1, 2\n",
        "\u{feff}a: 1\n",
        "a: 1\n...\n",
    ];

    #[test]
    fn reads_the_common_subset_as_serde_saphyr_does() {
        for text in READS {
            assert!(agrees(text), "the fast reader declined:\n{text}");
        }
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        for text in DECLINES {
            assert!(fast(text).is_none(), "the fast reader read:\n{text}");
        }
    }

    /// Every YAML file in the repository (and Tekton's CRDs and examples when the test
    /// harness downloaded them): the fast reader must agree wherever it reads.
    #[test]
    fn agrees_on_the_repository_corpus() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut roots = vec![repo.clone()];
        if let Ok(tekton) = std::env::var("KEELSON_TEKTON_DIR") {
            roots.push(tekton.into());
        }
        let (mut files, mut read) = (0, 0);
        for root in roots {
            let mut stack = vec![root];
            while let Some(dir) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if path.is_dir() {
                        if !name.starts_with('.') && name != "target" && name != "node_modules" {
                            stack.push(path);
                        }
                    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                        let Ok(text) = std::fs::read_to_string(&path) else {
                            continue;
                        };
                        files += 1;
                        if agrees(&text) {
                            read += 1;
                        }
                    }
                }
            }
        }
        eprintln!("corpus: the fast reader read {read} of {files} YAML files");
        assert!(files > 100, "only {files} YAML files found");
        // most real files are in the subset; the rest are templates, anchors, tags…
        assert!(
            read * 10 > files * 7,
            "the fast reader read only {read} of {files} files"
        );
    }

    /// Mutated inputs (characters, lines and indentation changed at random, with a fixed
    /// seed) probe the edges: whatever the fast reader accepts, serde-saphyr must read the
    /// same way.
    #[test]
    fn agrees_on_mutated_inputs() {
        // KEELSON_MUTATION_SEED explores other inputs (must be non-zero)
        let mut seed: u64 = std::env::var("KEELSON_MUTATION_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        const ALPHABET: &[u8] = b" -:#'\"|>[]{},\n\\&*!?%a1.0x~+mT/_e";
        let (mut cases, mut read) = (0, 0);
        for base in READS.iter().chain(DECLINES) {
            for _ in 0..1500 {
                let mut text: Vec<u8> = base.as_bytes().to_vec();
                for _ in 0..1 + next(3) {
                    let len = text.len().max(1);
                    match next(5) {
                        0 if !text.is_empty() => {
                            text.remove(next(len).min(text.len() - 1));
                        }
                        1 => text.insert(
                            next(len + 1).min(text.len()),
                            ALPHABET[next(ALPHABET.len())],
                        ),
                        2 => {
                            // indent or dedent a line
                            let at = next(len).min(text.len());
                            let line = text[..at]
                                .iter()
                                .rposition(|&c| c == b'\n')
                                .map_or(0, |i| i + 1);
                            if next(2) == 0 {
                                text.insert(line, b' ');
                            } else if text.get(line) == Some(&b' ') {
                                text.remove(line);
                            }
                        }
                        _ => {
                            // duplicate a line
                            let s = String::from_utf8_lossy(&text).into_owned();
                            let lines: Vec<&str> = s.split_inclusive('\n').collect();
                            if !lines.is_empty() {
                                let i = next(lines.len());
                                let mut out = lines[..=i].concat();
                                out.push_str(lines[i]);
                                out.push_str(&lines[i + 1..].concat());
                                text = out.into_bytes();
                            }
                        }
                    }
                }
                let Ok(text) = String::from_utf8(text) else {
                    continue;
                };
                cases += 1;
                if agrees(&text) {
                    read += 1;
                }
            }
        }
        eprintln!("mutants: the fast reader read {read} of {cases}");
        assert!(
            read * 4 > cases,
            "only {read} of {cases} mutants were read by the fast reader"
        );
    }
}
