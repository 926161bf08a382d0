//! pandas DataFrames read in Rust, block by block: numpy blocks, Arrow-backed
//! strings (through the Arrow C stream interface), categoricals and masked
//! numbers are read without a Python call per column or per cell, so a
//! one-row frame costs microseconds and a large one a copy per column.
//! Column names and categorical labels are cached by the identity of the
//! (immutable) pandas objects that hold them, which slices of one frame
//! share. A layout this reader does not know (another pandas internals
//! version, an unusual dtype) reads as `None`: the caller converts it in
//! Python, as before.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Arc, Mutex};

use anomaly_core::credit_risk::{Cell, ColumnData};
use numpy::{PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple, PyType};

use crate::credit_risk::CellArg;

/// Caches of one model's frame reader.
/// A cached value, by the identity of the object it was read from (kept alive).
type Cached<T> = (Py<PyAny>, Arc<T>);

#[derive(Default)]
pub(crate) struct FrameReader {
    names: Mutex<Option<Cached<[Option<String>]>>>,
    labels: Mutex<Vec<Cached<[Cell]>>>,
    kinds: Mutex<Vec<(Py<PyType>, Kind)>>,
}

/// What a pandas array type is, found from its name once per type.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    BlockManager,
    Categorical,
    Masked,
    NumpyBacked,
    Arrow,
    Other,
}

impl Kind {
    fn of_name(name: &str) -> Kind {
        match name {
            "BlockManager" => Kind::BlockManager,
            "Categorical" => Kind::Categorical,
            "IntegerArray" | "FloatingArray" | "BooleanArray" => Kind::Masked,
            "StringArray" | "NumpyExtensionArray" => Kind::NumpyBacked,
            "ArrowStringArray" | "ArrowExtensionArray" | "ArrowStringArrayNumpySemantics" => Kind::Arrow,
            _ => Kind::Other,
        }
    }
}

/// Labels of this many categorical dtypes are kept.
const LABEL_CACHE: usize = 64;

impl FrameReader {
    /// The columns of `frame` whose names `wanted` accepts, or `None` when
    /// the frame's layout is not one this reader knows.
    pub(crate) fn read(
        &self,
        frame: &Bound<'_, PyAny>,
        wanted: &dyn Fn(&str) -> bool,
    ) -> PyResult<Option<Vec<(String, FrameColumn)>>> {
        let Ok(mgr) = frame.getattr(intern!(frame.py(), "_mgr")) else { return Ok(None) };
        if self.kind(&mgr)? != Kind::BlockManager {
            return Ok(None);
        }
        let names = match self.names(&mgr.getattr(intern!(mgr.py(), "items"))?, wanted)? {
            Some(names) => names,
            None => return Ok(None),
        };
        let (Ok(blknos), Ok(blklocs)) =
            (mgr.getattr(intern!(mgr.py(), "blknos")), mgr.getattr(intern!(mgr.py(), "blklocs")))
        else {
            return Ok(None);
        };
        let (Ok(blknos), Ok(blklocs)) = (blknos.cast::<PyArray1<isize>>(), blklocs.cast::<PyArray1<isize>>()) else {
            return Ok(None);
        };
        // SAFETY (here and in `row`): the arrays are only read, with the
        // GIL held and no Python code running, and copied before it is
        // released; numpy's borrow tracking would cost more than the copy.
        let (blknos, blklocs) = unsafe { (blknos.as_array().to_vec(), blklocs.as_array().to_vec()) };
        let blocks = mgr.getattr(intern!(mgr.py(), "blocks"))?;
        let Ok(blocks) = blocks.cast::<PyTuple>() else { return Ok(None) };
        if blknos.len() != names.len() || blklocs.len() != names.len() {
            return Ok(None);
        }
        let mut values: Vec<Option<Bound<'_, PyAny>>> = vec![None; blocks.len()];
        let mut out = Vec::new();
        for (j, name) in names.iter().enumerate() {
            let Some(name) = name.as_deref() else { continue };
            let (Ok(b), Ok(loc)) = (usize::try_from(blknos[j]), usize::try_from(blklocs[j])) else { return Ok(None) };
            if b >= blocks.len() {
                return Ok(None);
            }
            let block = match &values[b] {
                Some(v) => v.clone(),
                None => {
                    let v = blocks.get_item(b)?.getattr(intern!(blocks.py(), "values"))?;
                    values[b] = Some(v.clone());
                    v
                }
            };
            match self.column(&block, loc)? {
                Some(data) => out.push((name.to_owned(), data)),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// The wanted column names (`None` for others, and for a name that is
    /// not a string), cached by the identity of the Index's array, which
    /// `iloc` slices share (the reader serves one model: `wanted` is fixed).
    fn names(
        &self,
        items: &Bound<'_, PyAny>,
        wanted: &dyn Fn(&str) -> bool,
    ) -> PyResult<Option<Arc<[Option<String>]>>> {
        let key = items.getattr(intern!(items.py(), "_data")).unwrap_or_else(|_| items.clone());
        let mut cache = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, names)) = cache.as_ref() {
            if k.bind(items.py()).is(&key) {
                return Ok(Some(names.clone()));
            }
        }
        let names: Arc<[Option<String>]> = items
            .call_method0(intern!(items.py(), "tolist"))?
            .try_iter()?
            .map(|n| n.map(|n| n.extract::<String>().ok().filter(|n| wanted(n))))
            .collect::<PyResult<_>>()?;
        *cache = Some((key.unbind(), names.clone()));
        Ok(Some(names))
    }

    /// Row `loc` of a 2-D numpy block, or a 1-D extension array (loc 0).
    fn column(&self, values: &Bound<'_, PyAny>, loc: usize) -> PyResult<Option<FrameColumn>> {
        if let Ok(array) = values.cast::<PyUntypedArray>() {
            return Ok(numpy_row(array, loc)?.map(FrameColumn::Ready));
        }
        if loc != 0 {
            return Ok(None);
        }
        if self.kind(values)? == Kind::Arrow {
            return match values.getattr(intern!(values.py(), "_pa_array")) {
                Ok(chunked) => arrow_column(&chunked),
                Err(_) => Ok(None),
            };
        }
        Ok(self.extension(values)?.map(FrameColumn::Ready))
    }

    /// A 1-D pandas extension array other than Arrow's.
    fn extension(&self, values: &Bound<'_, PyAny>) -> PyResult<Option<ColumnData>> {
        match self.kind(values)? {
            Kind::Categorical => self.categorical(values),
            Kind::Masked => {
                let data = values.getattr(intern!(values.py(), "_data"))?;
                let mask = values.getattr(intern!(values.py(), "_mask"))?;
                let (Ok(data), Ok(mask)) = (data.cast::<PyUntypedArray>(), mask.cast::<PyArray1<bool>>()) else {
                    return Ok(None);
                };
                let Some(ColumnData::Numbers(mut v)) = numpy_row(data, 0)? else { return Ok(None) };
                let mask = mask.readonly();
                let mask = mask.as_array();
                if mask.len() != v.len() {
                    return Ok(None);
                }
                v.iter_mut().zip(mask.iter()).filter(|(_, &m)| m).for_each(|(x, _)| *x = f64::NAN);
                Ok(Some(ColumnData::Numbers(v)))
            }
            Kind::NumpyBacked => match values.getattr(intern!(values.py(), "_ndarray"))?.cast::<PyUntypedArray>() {
                Ok(array) => numpy_row(array, 0),
                Err(_) => Ok(None),
            },
            Kind::Arrow | Kind::BlockManager | Kind::Other => Ok(None),
        }
    }

    /// The kind of `value`'s type (by name, cached by type: a type's name
    /// is a string made per call).
    fn kind(&self, value: &Bound<'_, PyAny>) -> PyResult<Kind> {
        let ty = value.get_type();
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, kind)) = kinds.iter().find(|(t, _)| t.bind(value.py()).is(&ty)) {
            return Ok(*kind);
        }
        let kind = Kind::of_name(ty.name()?.to_str()?);
        if kinds.len() < 64 {
            kinds.push((ty.unbind(), kind));
        }
        Ok(kind)
    }

    /// A pandas Categorical: its codes and its dtype's labels (cached by the
    /// dtype, which slices share).
    fn categorical(&self, values: &Bound<'_, PyAny>) -> PyResult<Option<ColumnData>> {
        let dtype = values.getattr(intern!(values.py(), "dtype"))?;
        let labels = {
            let cache = self.labels.lock().unwrap_or_else(|e| e.into_inner());
            cache.iter().find(|(k, _)| k.bind(values.py()).is(&dtype)).map(|(_, l)| l.clone())
        };
        let labels = match labels {
            Some(l) => l,
            None => {
                let cells: Vec<CellArg> = dtype
                    .getattr(intern!(dtype.py(), "categories"))?
                    .call_method0(intern!(dtype.py(), "tolist"))?
                    .extract()?;
                let labels: Arc<[Cell]> = cells.into_iter().map(|c| c.0).collect();
                let mut cache = self.labels.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= LABEL_CACHE {
                    cache.remove(0);
                }
                cache.push((dtype.unbind(), labels.clone()));
                labels
            }
        };
        let codes = values.getattr(intern!(values.py(), "_codes"))?;
        let Ok(codes) = codes.cast::<PyUntypedArray>() else { return Ok(None) };
        let Some(ColumnData::Numbers(codes)) = numpy_row(codes, 0)? else { return Ok(None) };
        Ok(Some(ColumnData::Coded { codes: codes.into_iter().map(|c| c as i64).collect(), labels: labels.to_vec() }))
    }
}

/// Row `loc` of a 2-D array (a block) or the whole of a 1-D one (`loc` 0):
/// numbers of any numpy integer, float or bool dtype as f64; objects as
/// cells. `None` for other dtypes (datetimes, complex, ...).
fn numpy_row(array: &Bound<'_, PyUntypedArray>, loc: usize) -> PyResult<Option<ColumnData>> {
    let py = array.py();
    let dtype = array.dtype();
    macro_rules! numbers {
        ($($t:ty),*) => {$(
            if dtype.is_equiv_to(&numpy::dtype::<$t>(py)) {
                return Ok(row::<$t>(array, loc)?.map(|v| ColumnData::Numbers(v.into_iter().map(|x| x as f64).collect())));
            }
        )*};
    }
    if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        return Ok(row::<f64>(array, loc)?.map(ColumnData::Numbers));
    }
    numbers!(f32, i64, i32, i16, i8, u64, u32, u16, u8);
    if dtype.is_equiv_to(&numpy::dtype::<bool>(py)) {
        return Ok(row::<bool>(array, loc)?.map(|v| ColumnData::Numbers(v.into_iter().map(f64::from).collect())));
    }
    if dtype.is_equiv_to(&numpy::dtype::<Py<PyAny>>(py)) {
        let cell = |o: &Py<PyAny>| o.bind(py).extract::<CellArg>().map(|c| c.0);
        let cells = match array.ndim() {
            1 if loc == 0 => match array.cast::<PyArray1<Py<PyAny>>>() {
                Ok(a) => a.readonly().as_array().iter().map(cell).collect::<PyResult<_>>()?,
                Err(_) => return Ok(None),
            },
            2 => match array.cast::<PyArray2<Py<PyAny>>>() {
                Ok(a) if loc < a.shape()[0] => {
                    a.readonly().as_array().row(loc).iter().map(cell).collect::<PyResult<_>>()?
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        return Ok(Some(ColumnData::Cells(cells)));
    }
    Ok(None)
}

fn row<T: numpy::Element + Clone>(array: &Bound<'_, PyUntypedArray>, loc: usize) -> PyResult<Option<Vec<T>>> {
    match array.ndim() {
        1 if loc == 0 => {
            let Ok(a) = array.cast::<PyArray1<T>>() else { return Ok(None) };
            // SAFETY: see `read`.
            Ok(Some(unsafe { a.as_array() }.to_vec()))
        }
        2 => {
            let Ok(a) = array.cast::<PyArray2<T>>() else { return Ok(None) };
            // SAFETY: see `read`.
            let a = unsafe { a.as_array() };
            Ok((loc < a.nrows()).then(|| a.row(loc).to_vec()))
        }
        _ => Ok(None),
    }
}

// The Arrow C data and stream interfaces (arrow.apache.org/docs/format/CDataInterface.html).
#[repr(C)]
struct ArrowSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut ArrowSchema,
    dictionary: *mut ArrowSchema,
    release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    private_data: *mut c_void,
}

#[repr(C)]
struct ArrowArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut ArrowArray,
    dictionary: *mut ArrowArray,
    release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    private_data: *mut c_void,
}

#[repr(C)]
struct ArrowArrayStream {
    get_schema: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowSchema) -> c_int>,
    get_next: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowArray) -> c_int>,
    get_last_error: Option<unsafe extern "C" fn(*mut ArrowArrayStream) -> *const c_char>,
    release: Option<unsafe extern "C" fn(*mut ArrowArrayStream)>,
    private_data: *mut c_void,
}

impl ArrowSchema {
    fn empty() -> Self {
        // SAFETY: all-zero is the released (empty) state of the C struct.
        unsafe { std::mem::zeroed() }
    }
}

impl ArrowArray {
    fn empty() -> Self {
        // SAFETY: all-zero is the released (empty) state of the C struct.
        unsafe { std::mem::zeroed() }
    }
}

impl Drop for ArrowSchema {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the producer's callback, called once on its own struct.
            unsafe { release(self) }
        }
    }
}

impl Drop for ArrowArray {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the producer's callback, called once on its own struct.
            unsafe { release(self) }
        }
    }
}

/// The value type of an Arrow column this reader takes.
#[derive(Clone, Copy, PartialEq)]
enum ArrowKind {
    Utf8,
    LargeUtf8,
    F64,
    I64,
}

/// A pyarrow ChunkedArray (an `ArrowStringArray`'s or `ArrowExtensionArray`'s
/// `_pa_array`) read through `__arrow_c_stream__`: strings (utf8, large
/// utf8) or f64/i64 numbers; `None` for other types.
fn arrow_column(chunked: &Bound<'_, PyAny>) -> PyResult<Option<FrameColumn>> {
    let Ok(capsule) = chunked.call_method0(intern!(chunked.py(), "__arrow_c_stream__")) else { return Ok(None) };
    let Ok(capsule) = capsule.cast::<PyCapsule>() else { return Ok(None) };
    let Ok(stream) = capsule.pointer_checked(Some(c"arrow_array_stream")) else { return Ok(None) };
    let stream = stream.as_ptr().cast::<ArrowArrayStream>();
    // SAFETY: the capsule holds a live ArrowArrayStream (the PyCapsule
    // protocol); it releases the stream itself when collected, and we use
    // it only while `capsule` is alive. Each array it yields is ours
    // (released by `ArrowArray::drop`).
    unsafe {
        let (Some(get_schema), Some(get_next)) = ((*stream).get_schema, (*stream).get_next) else { return Ok(None) };
        let mut schema = ArrowSchema::empty();
        if get_schema(stream, &mut schema) != 0 || schema.format.is_null() {
            return Ok(None);
        }
        let kind = match CStr::from_ptr(schema.format).to_bytes() {
            b"u" => ArrowKind::Utf8,
            b"U" => ArrowKind::LargeUtf8,
            b"g" => ArrowKind::F64,
            b"l" => ArrowKind::I64,
            _ => return Ok(None),
        };
        let mut chunks = Vec::new();
        loop {
            let mut array = ArrowArray::empty();
            if get_next(stream, &mut array) != 0 {
                return Ok(None);
            }
            if array.release.is_none() {
                break; // end of stream
            }
            if array.length < 0 || array.offset < 0 || array.n_buffers < 2 || array.buffers.is_null() {
                return Ok(None);
            }
            chunks.push(array);
        }
        Ok(Some(FrameColumn::Arrow(ArrowChunks(chunks, kind))))
    }
}

/// A column as read: its data, or Arrow arrays still to decode (off the
/// GIL, columns in parallel).
pub(crate) enum FrameColumn {
    Ready(ColumnData),
    Arrow(ArrowChunks),
}

/// Exported Arrow arrays of one column (ours: released on drop).
pub(crate) struct ArrowChunks(Vec<ArrowArray>, ArrowKind);

// SAFETY: the arrays are exported copies owned by us alone; their buffers
// are immutable and kept alive by the producer until release. Other threads
// only read them (`decode(&self)`); they are released where they are
// dropped, which the caller keeps on the thread that holds the GIL.
unsafe impl Send for ArrowChunks {}
unsafe impl Sync for ArrowChunks {}

impl FrameColumn {
    /// The column's data (an Arrow column is decoded here; a ready one is
    /// taken, leaving an empty column).
    pub(crate) fn decode(&mut self) -> ColumnData {
        match self {
            FrameColumn::Ready(data) => std::mem::replace(data, ColumnData::Numbers(Vec::new())),
            // SAFETY: arrays checked by `arrow_column`, of the kind its schema gave.
            FrameColumn::Arrow(ArrowChunks(chunks, kind)) => unsafe { read_chunks(chunks, *kind) },
        }
    }

    /// Rows in the column.
    pub(crate) fn len(&self) -> usize {
        match self {
            FrameColumn::Ready(data) => data.len(),
            FrameColumn::Arrow(ArrowChunks(chunks, _)) => chunks.iter().map(|a| a.length as usize).sum(),
        }
    }
}

/// Values of Arrow arrays of one type, in order.
///
/// # Safety
/// Each array must be a live, valid Arrow array of `kind` (as a producer
/// such as pyarrow exports it).
unsafe fn read_chunks(chunks: &[ArrowArray], kind: ArrowKind) -> ColumnData {
    let rows: usize = chunks.iter().map(|a| a.length as usize).sum();
    let valid = |a: &ArrowArray, i: usize| -> bool {
        let bits = *a.buffers as *const u8;
        let j = i + a.offset as usize;
        a.null_count == 0 || bits.is_null() || (*bits.add(j / 8) >> (j % 8)) & 1 == 1
    };
    match kind {
        ArrowKind::F64 | ArrowKind::I64 => {
            let mut v = Vec::with_capacity(rows);
            for a in chunks {
                let data = *a.buffers.add(1);
                for i in 0..a.length as usize {
                    let j = i + a.offset as usize;
                    v.push(match (valid(a, i), kind) {
                        (false, _) => f64::NAN,
                        (true, ArrowKind::F64) => *(data as *const f64).add(j),
                        (true, _) => *(data as *const i64).add(j) as f64,
                    });
                }
            }
            ColumnData::Numbers(v)
        }
        // One chunk (the usual frame): its rows as a plain range, which
        // knows its length and costs no chunk bookkeeping per value.
        ArrowKind::Utf8 | ArrowKind::LargeUtf8 if chunks.len() == 1 => {
            ColumnData::from_utf8(strings(&chunks[0], kind, valid))
        }
        ArrowKind::Utf8 | ArrowKind::LargeUtf8 => {
            let all = chunks.iter().flat_map(|a| strings(a, kind, valid));
            ColumnData::from_utf8(Exact(all, rows))
        }
    }
}

/// One Arrow string array's values, `None` where missing. Arrow strings
/// are UTF-8 by contract; the core checks each distinct one (a bad one
/// reads as missing).
///
/// # Safety
/// As `read_chunks`: `a` is a live, valid string array of `kind`.
unsafe fn strings<'a>(
    a: &'a ArrowArray,
    kind: ArrowKind,
    valid: impl Fn(&ArrowArray, usize) -> bool + 'a,
) -> impl ExactSizeIterator<Item = Option<&'a [u8]>> + 'a {
    let (offsets, data) = (*a.buffers.add(1), *a.buffers.add(2) as *const u8);
    let at = move |j: usize| -> usize {
        match kind {
            ArrowKind::Utf8 => *(offsets as *const i32).add(j) as usize,
            _ => *(offsets as *const i64).add(j) as usize,
        }
    };
    (0..a.length as usize).map(move |i| {
        let j = i + a.offset as usize;
        valid(a, i).then(|| std::slice::from_raw_parts(data.add(at(j)), at(j + 1).saturating_sub(at(j))))
    })
}

/// An iterator with its known length (`flat_map` loses it).
struct Exact<I>(I, usize);

impl<I: Iterator> Iterator for Exact<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.0.next();
        if item.is_some() {
            self.1 = self.1.saturating_sub(1);
        }
        item
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for Exact<I> {}
