//! Parquet datasets: the on-disk format of Hugging Face `datasets` (`ds.to_parquet`, the Hub's
//! `refs/convert/parquet` branch).
//!
//! Reading goes through the `parquet` crate's record API (no Arrow: it would double the compile
//! time for nothing we need). Each row becomes a JSON object and is validated by exactly the
//! same code as a JSONL line ([`crate::formats::validate_rows`]), so every TRL shape and every
//! field mapping works the same in both formats. Null columns are left out of the object:
//! `datasets` writes one column per key of any row, so a row without a key reads as null.
//!
//! Writing ([`write_examples`]) produces the schema `datasets` itself writes for a
//! `{"messages": [{"role", "content"}]}` / `{"text"}` dataset (a standard 3-level LIST of
//! structs), Snappy-compressed by default as `datasets` does.

use crate::chat::{ChatExample, Message};
use crate::error::{DataError, Result};
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::data_type::{ByteArray, ByteArrayType};
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::record::{Field, Row};
use ::parquet::schema::parser::parse_message_type;
use serde_json::{Map, Number, Value};
use std::path::Path;
use std::sync::Arc;

/// Parquet files begin and end with these four bytes.
const MAGIC: &[u8; 4] = b"PAR1";

/// Whether `bytes` look like a Parquet file (magic at both ends).
pub fn is_parquet(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes.starts_with(MAGIC) && bytes.ends_with(MAGIC)
}

/// Every row of a Parquet file as `(0-based row index, JSON object)`.
///
/// A file the decoder rejects (truncated, corrupt pages, unsupported encoding) is one
/// [`DataError::Invalid`] naming the file and, where it got that far, the row.
pub fn parquet_rows(path: &Path, bytes: Vec<u8>) -> Result<Vec<(usize, Value)>> {
    // The decoder is a large third-party parser fed user files; a panic inside it must not take
    // the whole run down, so it is turned into an error like any other decoding failure.
    let res = std::panic::catch_unwind(|| decode(bytes));
    match res {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err((row, e))) => Err(DataError::invalid(path, at_row(row, &e))),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(DataError::invalid(
                path,
                format!("Parquet decoder failed: {msg}"),
            ))
        }
    }
}

fn at_row(row: Option<usize>, e: &str) -> String {
    match row {
        Some(r) => format!("row {r}: unreadable Parquet: {e}"),
        None => format!("unreadable Parquet: {e}"),
    }
}

type DecodeErr = (Option<usize>, String);

fn decode(bytes: Vec<u8>) -> std::result::Result<Vec<(usize, Value)>, DecodeErr> {
    let reader =
        SerializedFileReader::new(bytes::Bytes::from(bytes)).map_err(|e| (None, e.to_string()))?;
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| (None, e.to_string()))?;
    let mut out = Vec::new();
    for (i, row) in iter.enumerate() {
        let row = row.map_err(|e| (Some(i), e.to_string()))?;
        out.push((i, row_to_json(&row)));
    }
    Ok(out)
}

/// A record as a JSON object, null fields left out.
pub fn row_to_json(row: &Row) -> Value {
    let mut obj = Map::new();
    for (name, field) in row.get_column_iter() {
        if *field != Field::Null {
            obj.insert(name.clone(), field_to_json(field));
        }
    }
    Value::Object(obj)
}

fn field_to_json(f: &Field) -> Value {
    let num = |x: f64| Number::from_f64(x).map_or(Value::Null, Value::Number);
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::Float16(n) => num(f64::from(*n)),
        Field::Float(n) => num(f64::from(*n)),
        Field::Double(n) => num(*n),
        Field::Str(s) => Value::String(s.clone()),
        // Binary columns without a STRING annotation still often hold text (older writers).
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::Array(b.data().iter().map(|&x| Value::from(x)).collect()),
        },
        Field::Group(row) => row_to_json(row),
        Field::ListInternal(list) => {
            Value::Array(list.elements().iter().map(field_to_json).collect())
        }
        Field::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(k, v)| {
                    let k = match k {
                        Field::Str(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k, field_to_json(v))
                })
                .collect(),
        ),
        // Dates, times and decimals never carry chat text; their display form is enough for
        // an error message that names the field.
        other => Value::String(other.to_string()),
    }
}

/// Compression of written Parquet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParquetCompression {
    /// What `datasets` writes.
    #[default]
    Snappy,
    Zstd,
    None,
}

/// The schema `datasets` (via Arrow) writes for `messages` + `text` columns.
const SCHEMA: &str = "
message schema {
  optional group messages (LIST) {
    repeated group list {
      optional group element {
        optional binary role (STRING);
        optional binary content (STRING);
      }
    }
  }
  optional binary text (STRING);
}";

/// Values and levels of one leaf column.
#[derive(Default)]
struct Leaf {
    values: Vec<ByteArray>,
    def: Vec<i16>,
    rep: Vec<i16>,
}

/// Encode examples as a Parquet file: chat rows in `messages`, text rows in `text` (the other
/// column null), all in one row group.
pub fn examples_to_parquet(
    examples: &[ChatExample],
    compression: ParquetCompression,
) -> Result<Vec<u8>> {
    let (mut role, mut content, mut text) = (Leaf::default(), Leaf::default(), Leaf::default());
    for ex in examples {
        match ex {
            ChatExample::Chat { messages } => {
                message_levels(messages, &mut role, &mut content);
                text.def.push(0);
            }
            ChatExample::Text { text: t } => {
                for leaf in [&mut role, &mut content] {
                    leaf.def.push(0);
                    leaf.rep.push(0);
                }
                text.def.push(1);
                text.values.push(ByteArray::from(t.as_str()));
            }
        }
    }
    write_leaves(vec![role, content, text], compression)
        .map_err(|e| DataError::invalid("<parquet writer>", format!("cannot encode Parquet: {e}")))
}

/// Levels for one row's messages: definition 4 = value present (messages, list, element and
/// leaf all defined), 1 = empty list; repetition 0 starts the row, 1 continues the list.
fn message_levels(messages: &[Message], role: &mut Leaf, content: &mut Leaf) {
    if messages.is_empty() {
        for leaf in [role, content] {
            leaf.def.push(1);
            leaf.rep.push(0);
        }
        return;
    }
    for (j, m) in messages.iter().enumerate() {
        let rep = i16::from(j > 0);
        role.values.push(ByteArray::from(m.role.as_str()));
        content.values.push(ByteArray::from(m.content.as_str()));
        for leaf in [&mut *role, &mut *content] {
            leaf.def.push(4);
            leaf.rep.push(rep);
        }
    }
}

fn write_leaves(
    leaves: Vec<Leaf>,
    compression: ParquetCompression,
) -> ::parquet::errors::Result<Vec<u8>> {
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let compression = match compression {
        ParquetCompression::Snappy => Compression::SNAPPY,
        ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
        ParquetCompression::None => Compression::UNCOMPRESSED,
    };
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(compression)
            .build(),
    );
    let mut buf = Vec::new();
    let mut w = SerializedFileWriter::new(&mut buf, schema, props)?;
    let mut rg = w.next_row_group()?;
    let mut leaves = leaves.into_iter();
    while let Some(mut col) = rg.next_column()? {
        let leaf = leaves.next().unwrap_or_default();
        // Top-level `text` has no repetition levels; the schema decides which apply.
        let rep = (!leaf.rep.is_empty()).then_some(leaf.rep.as_slice());
        col.typed::<ByteArrayType>()
            .write_batch(&leaf.values, Some(&leaf.def), rep)?;
        col.close()?;
    }
    rg.close()?;
    w.close()?;
    Ok(buf)
}

/// Write examples as Parquet, atomically; returns the number of rows written.
pub fn write_examples(
    path: &Path,
    examples: &[ChatExample],
    compression: ParquetCompression,
) -> Result<u64> {
    let bytes = examples_to_parquet(examples, compression)?;
    keel_core::artifact::write_atomic(path, &bytes)?;
    Ok(examples.len() as u64)
}
