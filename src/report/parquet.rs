//! `export --format parquet` (cargo feature `parquet`): the flat rows of `export` (every
//! metadata field under its dotted name) as one Parquet file, for the engines that prefer
//! it. Each column's type comes from its values: all booleans -> BOOLEAN, all integers ->
//! INT64, all numbers -> DOUBLE, anything else -> UTF8 (an array or object as its JSON
//! text); a run without the field has a null.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};

use crate::report::export::{columns, flatten};
use crate::schema::Metadata;

/// The columns a file with no run still has.
const EMPTY_COLUMNS: [&str; 5] = ["test_id", "timestamp", "platform", "model", "status"];

/// The runs as the bytes of one Parquet file (snappy-compressed, one row group).
pub fn parquet(runs: &[Metadata]) -> anyhow::Result<Vec<u8>> {
    let rows: Vec<Map<String, Value>> = runs.iter().map(flatten).collect();
    let mut cols = columns(&rows);
    if cols.is_empty() {
        cols = EMPTY_COLUMNS.iter().map(|c| c.to_string()).collect();
    }
    let mut fields = Vec::with_capacity(cols.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for c in &cols {
        let values: Vec<Option<&Value>> = rows
            .iter()
            .map(|r| r.get(c).filter(|v| !v.is_null()))
            .collect();
        let (kind, array) = column(&values);
        fields.push(Field::new(c, kind, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(out)
}

/// One column: its type from the values present, and the array.
fn column(values: &[Option<&Value>]) -> (DataType, ArrayRef) {
    let present = || values.iter().flatten();
    if present().next().is_some() && present().all(|v| v.is_boolean()) {
        let mut b = BooleanBuilder::with_capacity(values.len());
        values
            .iter()
            .for_each(|v| b.append_option(v.and_then(Value::as_bool)));
        return (DataType::Boolean, Arc::new(b.finish()));
    }
    if present().next().is_some() && present().all(|v| v.is_i64()) {
        let mut b = Int64Builder::with_capacity(values.len());
        values
            .iter()
            .for_each(|v| b.append_option(v.and_then(Value::as_i64)));
        return (DataType::Int64, Arc::new(b.finish()));
    }
    if present().next().is_some() && present().all(|v| v.is_number()) {
        let mut b = Float64Builder::with_capacity(values.len());
        values
            .iter()
            .for_each(|v| b.append_option(v.and_then(Value::as_f64)));
        return (DataType::Float64, Arc::new(b.finish()));
    }
    let mut b = StringBuilder::new();
    for v in values {
        match v {
            None => b.append_null(),
            Some(Value::String(s)) => b.append_value(s),
            Some(other) => b.append_value(other.to_string()),
        }
    }
    (DataType::Utf8, Arc::new(b.finish()))
}
