//! Matrices as Arrow columns: `FixedSizeList<Float32|Float64>` and the canonical
//! `arrow.fixed_shape_tensor` extension type, viewed zero-copy as `ndarray::ArrayView2`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{Array, ArrayRef, FixedSizeListArray, PrimitiveArray};
use arrow_schema::{DataType, Field};
use ndarray::ArrayView2;

/// The extension name key in Arrow field metadata.
pub const EXTENSION_NAME_KEY: &str = "ARROW:extension:name";
/// The extension metadata key in Arrow field metadata.
pub const EXTENSION_METADATA_KEY: &str = "ARROW:extension:metadata";
/// The canonical fixed-shape tensor extension name.
pub const FIXED_SHAPE_TENSOR: &str = "arrow.fixed_shape_tensor";

/// An error viewing a column as a matrix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// The column type is not a matrix of the requested element type.
    #[error("column {column:?} has type {found}, expected {expected}")]
    Type {
        /// The column name.
        column: String,
        /// Its type.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// The tensor extension metadata is invalid.
    #[error("column {column:?}: invalid arrow.fixed_shape_tensor metadata: {reason}")]
    Tensor {
        /// The column name.
        column: String,
        /// Why.
        reason: String,
    },
    /// No column with that name.
    #[error("no column named {column:?} (columns: {available})")]
    NoColumn {
        /// The name asked for.
        column: String,
        /// The column names present.
        available: String,
    },
}

/// A matrix column field: `FixedSizeList<value_type>` of `cols` items per row.
pub fn matrix_field(name: &str, value_type: DataType, cols: usize, nullable: bool) -> Field {
    let item = Arc::new(Field::new("item", value_type, false));
    Field::new(name, DataType::FixedSizeList(item, cols as i32), nullable)
}

/// An `arrow.fixed_shape_tensor` field: each row is a row-major tensor of `shape`.
pub fn tensor_field(name: &str, value_type: DataType, shape: &[usize], nullable: bool) -> Field {
    let n: usize = shape.iter().product();
    let meta = format!(
        "{{\"shape\":[{}]}}",
        shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    matrix_field(name, value_type, n, nullable).with_metadata(HashMap::from([
        (
            EXTENSION_NAME_KEY.to_string(),
            FIXED_SHAPE_TENSOR.to_string(),
        ),
        (EXTENSION_METADATA_KEY.to_string(), meta),
    ]))
}

/// The tensor shape of an `arrow.fixed_shape_tensor` field, or `None` for other fields.
pub fn tensor_shape(field: &Field) -> Result<Option<Vec<usize>>, MatrixError> {
    if field.metadata().get(EXTENSION_NAME_KEY).map(String::as_str) != Some(FIXED_SHAPE_TENSOR) {
        return Ok(None);
    }
    let bad = |reason: String| MatrixError::Tensor {
        column: field.name().clone(),
        reason,
    };
    let meta = field
        .metadata()
        .get(EXTENSION_METADATA_KEY)
        .ok_or_else(|| bad("no extension metadata".into()))?;
    // Minimal parser for {"shape":[a,b,...], ...}: shmframe writes exactly this; other
    // writers add optional keys (dim_names, permutation) that we do not need.
    let start = meta
        .find("\"shape\"")
        .and_then(|i| meta[i..].find('[').map(|j| i + j + 1))
        .ok_or_else(|| bad(format!("no shape in {meta:?}")))?;
    let end = meta[start..]
        .find(']')
        .map(|j| start + j)
        .ok_or_else(|| bad(format!("unterminated shape in {meta:?}")))?;
    let shape = meta[start..end]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .map_err(|e| bad(format!("shape entry {s:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if meta.contains("\"permutation\"") {
        return Err(bad("permuted tensors are not supported".into()));
    }
    if let DataType::FixedSizeList(_, n) = field.data_type() {
        let prod = shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d));
        if prod != Some(*n as usize) {
            return Err(bad(format!(
                "shape {shape:?} does not multiply to the list size {n}"
            )));
        }
    }
    Ok(Some(shape))
}

/// A row-major matrix view of a `FixedSizeList<T>` column: rows x list size, zero-copy.
///
/// Null rows are present in the view (their values are unspecified); check
/// `array.nulls()` for them.
pub fn matrix_view<'a, T>(
    column: &str,
    array: &'a ArrayRef,
) -> Result<ArrayView2<'a, T::Native>, MatrixError>
where
    T: ArrowPrimitiveType,
{
    let type_err = || MatrixError::Type {
        column: column.to_string(),
        found: array.data_type().to_string(),
        expected: format!("FixedSizeList<{}>", T::DATA_TYPE),
    };
    let list = array
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .ok_or_else(type_err)?;
    let values = list
        .values()
        .as_any()
        .downcast_ref::<PrimitiveArray<T>>()
        .ok_or_else(type_err)?;
    let cols = list.value_length() as usize;
    let rows = list.len();
    let start = list.offset() * cols;
    let slice = &values.values()[start..start + rows * cols];
    Ok(ArrayView2::from_shape((rows, cols), slice).expect("rows*cols elements, row-major"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Float64Array;
    use arrow_array::types::Float64Type;

    #[test]
    fn tensor_metadata_round_trip() {
        let f = tensor_field("img", DataType::UInt8, &[4, 3, 3], false);
        assert_eq!(tensor_shape(&f).unwrap(), Some(vec![4, 3, 3]));
        let m = matrix_field("x", DataType::Float64, 3, true);
        assert_eq!(tensor_shape(&m).unwrap(), None);
        let bad = matrix_field("x", DataType::Float64, 5, true).with_metadata(HashMap::from([
            (
                EXTENSION_NAME_KEY.to_string(),
                FIXED_SHAPE_TENSOR.to_string(),
            ),
            (
                EXTENSION_METADATA_KEY.to_string(),
                "{\"shape\":[2,2]}".to_string(),
            ),
        ]));
        assert!(tensor_shape(&bad).is_err());
    }

    #[test]
    fn view_of_a_sliced_list() {
        let values = Float64Array::from_iter_values((0..12).map(f64::from));
        let item = Arc::new(Field::new("item", DataType::Float64, false));
        let list = FixedSizeListArray::new(item, 3, Arc::new(values), None);
        let arr: ArrayRef = Arc::new(list.slice(1, 2));
        let v = matrix_view::<Float64Type>("x", &arr).unwrap();
        assert_eq!(v.shape(), &[2, 3]);
        assert_eq!(v[[0, 0]], 3.0);
        assert_eq!(v[[1, 2]], 8.0);
        let not_list: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        assert!(matrix_view::<Float64Type>("y", &not_list).is_err());
    }
}
