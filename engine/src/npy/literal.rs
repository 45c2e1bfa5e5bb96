//! A small parser for the Python dict literal of a `.npy` header: `{'descr': '<f8',
//! 'fortran_order': False, 'shape': (1000, 4), }` in any key order, either quote style, with
//! trailing commas and any spacing. It only knows the syntax; `header` gives it meaning.

use std::fmt;

use super::NpyFormatError;
use super::error::malformed;

/// A value in the header dict, as far as this module cares.
#[derive(Debug)]
pub(super) enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
    /// Anything else, as raw text (e.g. a structured dtype's list, or `(5)`).
    Other(String),
}

/// The three keys of a header dict.
#[derive(Debug, Default)]
pub(super) struct HeaderDict {
    pub(super) descr: Option<PyValue>,
    pub(super) fortran_order: Option<PyValue>,
    pub(super) shape: Option<PyValue>,
}

/// A small parser for the Python dict literal of a header.
pub(super) struct DictParser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> DictParser<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn err(&self, what: impl fmt::Display) -> NpyFormatError {
        malformed(format!("{what} at offset {}", self.pos), self.text)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8, context: &str) -> Result<(), NpyFormatError> {
        self.skip_ws();
        match self.peek() {
            Some(found) if found == c => {
                self.pos += 1;
                Ok(())
            }
            Some(found) => Err(self.err(format_args!(
                "expected '{}' {context}, found '{}'",
                c as char,
                found.escape_ascii()
            ))),
            None => Err(self.err(format_args!(
                "expected '{}' {context}, found the end of the header",
                c as char
            ))),
        }
    }

    pub(super) fn parse(mut self) -> Result<HeaderDict, NpyFormatError> {
        self.expect(b'{', "at the start of the header dict")?;
        let mut dict = HeaderDict::default();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\'' | b'"') => {}
                None => return Err(self.err("unterminated dict")),
                Some(_) => return Err(self.err("expected a quoted key or '}'")),
            }
            let key = self.string()?;
            self.expect(b':', "after a key")?;
            self.skip_ws();
            let value = self.value()?;
            let slot = match key.as_str() {
                "descr" => &mut dict.descr,
                "fortran_order" => &mut dict.fortran_order,
                "shape" => &mut dict.shape,
                _ => return Err(self.err(format_args!("unexpected key {key:?}"))),
            };
            if slot.replace(value).is_some() {
                return Err(self.err(format_args!("duplicate key {key:?}")));
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.err("unterminated dict")),
                Some(c) => {
                    return Err(self.err(format_args!(
                        "expected ',' or '}}' after a value, found '{}'",
                        c.escape_ascii()
                    )));
                }
            }
        }
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(self.err("unexpected text after the dict"));
        }
        Ok(dict)
    }

    /// A quoted string; the current byte is the quote.
    fn string(&mut self) -> Result<String, NpyFormatError> {
        let text = self.text;
        let bytes = text.as_bytes();
        let quote = bytes[self.pos];
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        while let Some(c) = self.peek() {
            if c == quote {
                out.push_str(&self.text[run..self.pos]);
                self.pos += 1;
                return Ok(out);
            }
            if c == b'\\' {
                out.push_str(&self.text[run..self.pos]);
                let escaped = bytes.get(self.pos + 1).copied();
                match escaped {
                    Some(e @ (b'\\' | b'\'' | b'"')) => out.push(e as char),
                    Some(b'n') => out.push('\n'),
                    Some(b't') => out.push('\t'),
                    // Keep other escapes literally; they never occur in a valid header.
                    _ => {
                        run = self.pos;
                        self.pos += 1;
                        continue;
                    }
                }
                self.pos += 2;
                run = self.pos;
                continue;
            }
            self.pos += 1;
        }
        self.pos = start;
        Err(self.err("unterminated string"))
    }

    fn value(&mut self) -> Result<PyValue, NpyFormatError> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(PyValue::Str(self.string()?)),
            Some(b'(') => self.tuple(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if !(c.is_ascii_alphanumeric() || c == b'_') {
                        break;
                    }
                    self.pos += 1;
                }
                Ok(match &self.text[start..self.pos] {
                    "True" => PyValue::Bool(true),
                    "False" => PyValue::Bool(false),
                    other => PyValue::Other(other.to_owned()),
                })
            }
            Some(_) => self.raw(),
            None => Err(self.err("expected a value, found the end of the header")),
        }
    }

    /// A shape tuple; the current byte is `(`. `(5)` is an int in Python, not a tuple.
    fn tuple(&mut self) -> Result<PyValue, NpyFormatError> {
        let start = self.pos;
        self.pos += 1;
        let mut dims = Vec::new();
        let mut comma = false;
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(PyValue::Tuple(dims));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                Some(c) if c.is_ascii_digit() => dims.push(self.int()?),
                Some(b'-') => return Err(self.err("negative dimension in shape")),
                Some(_) => return Err(self.err("expected an integer in the shape tuple")),
                None => return Err(self.err("unterminated shape tuple")),
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    comma = true;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b')') {
                        self.pos += 1;
                        break;
                    }
                }
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.err("unterminated shape tuple")),
                Some(_) => return Err(self.err("expected ',' or ')' in the shape tuple")),
            }
        }
        if dims.len() == 1 && !comma {
            return Ok(PyValue::Other(self.text[start..self.pos].to_owned()));
        }
        Ok(PyValue::Tuple(dims))
    }

    /// A non-negative integer, with Python 2's optional `L` suffix.
    fn int(&mut self) -> Result<u64, NpyFormatError> {
        let start = self.pos;
        let mut n: u64 = 0;
        let mut fits = true;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
            {
                Some(v) => n = v,
                None => fits = false,
            }
            self.pos += 1;
        }
        if !fits {
            let digits = &self.text[start..self.pos];
            return Err(self.err(format_args!("dimension {digits} does not fit in 64 bits")));
        }
        if let Some(b'L' | b'l') = self.peek() {
            self.pos += 1;
        }
        Ok(n)
    }

    /// Any other value, as raw text: balanced brackets and strings up to a `,` or `}` at
    /// the top level.
    fn raw(&mut self) -> Result<PyValue, NpyFormatError> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'\'' | b'"' => {
                    self.string()?;
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth > 0 => depth -= 1,
                b',' | b'}' if depth == 0 => break,
                b')' | b']' => return Err(self.err("unbalanced bracket")),
                _ => {}
            }
            self.pos += 1;
        }
        if depth > 0 {
            return Err(self.err("unterminated value"));
        }
        let raw = self.text[start..self.pos].trim();
        if raw.is_empty() {
            return Err(self.err("expected a value"));
        }
        Ok(PyValue::Other(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use crate::npy::tests::{craft_version, parse_dict};
    use crate::npy::{NpyDtype, parse_header};

    #[test]
    fn dict_parsing_is_robust() {
        let ok = [
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
            "{\"shape\":(3,4),\"descr\":\"<f8\",\"fortran_order\":False}",
            "{ 'fortran_order' : False , 'shape' : ( 3 , 4 , ) , 'descr' : '<f8' , }",
            "{'descr': '<f8',\n 'fortran_order': False,\t'shape': (3L, 4L)}",
            "{'descr': 'f8', 'fortran_order': False, 'shape': (3, 4)}",
            "{'descr': '=f8', 'fortran_order': False, 'shape': (3, 4)}",
        ];
        for dict in ok {
            let h = parse_dict(dict).unwrap_or_else(|e| panic!("{dict}: {e}"));
            assert_eq!(
                (h.dtype, &h.shape[..], h.data_len),
                (NpyDtype::F64, &[3, 4][..], 96)
            );
        }
        let h = parse_dict("{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }").unwrap();
        assert_eq!(
            (h.dtype, &h.shape[..], h.rows(), h.cols()),
            (NpyDtype::I32, &[7][..], 7, 1)
        );
        for descr in ["|u1", "<u1", ">u1", "u1"] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,)}}");
            assert_eq!(parse_dict(&dict).unwrap().dtype, NpyDtype::U8);
        }
        // Fortran order is harmless for a single row or column.
        let h = parse_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (5, 1)}").unwrap();
        assert_eq!(h.shape, vec![5, 1]);
        // Versions 2.0 and 3.0.
        for v in [(2, 0), (3, 0)] {
            let bytes = craft_version(
                v,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}",
                &[0; 16],
            );
            let h = parse_header(&bytes).unwrap();
            assert_eq!(h.data_offset, 128);
            h.check_file_len(bytes.len() as u64).unwrap();
        }
    }
}
