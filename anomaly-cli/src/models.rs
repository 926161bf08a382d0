//! Model files, read and written the same way by every command and by the
//! service: the core serialises to bytes, this module does the file
//! system. A file is read only when it is a regular file within the size
//! cap, so a FIFO, a device or a link to `/dev/zero` is an error at once,
//! not a hang or an unbounded read.

use std::io::Read;
use std::path::Path;

use anomaly_core::credit_risk::CreditModel;
use anomaly_core::forecast_interval::MultiDetector;
use anyhow::{Context, Result};

use crate::input_error::InputError;

use anomaly_core::persist::MAX_MODEL_BYTES;

/// A model file's bytes, or why it cannot be read.
pub(crate) fn read(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    if meta.len() > MAX_MODEL_BYTES {
        return Err(format!(
            "{}: {} bytes, more than a model file holds ({MAX_MODEL_BYTES})",
            path.display(),
            meta.len()
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_MODEL_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(format!("{}: larger than a model file holds", path.display()));
    }
    Ok(bytes)
}

/// Writes a forecast model directory (one file per variable plus `detector.json`).
pub(crate) fn save_forecast(dir: &Path, models: &MultiDetector) -> Result<()> {
    let files = models.to_directory()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, bytes) in files {
        std::fs::write(dir.join(&name), bytes)
            .with_context(|| format!("cannot write {}", dir.join(&name).display()))?;
    }
    Ok(())
}

/// Reads a forecast model directory; a missing or bad one is the input's fault (exit 2).
pub(crate) fn load_forecast(dir: &Path) -> Result<MultiDetector> {
    MultiDetector::from_directory(|name| read(&dir.join(name))).map_err(|e| {
        InputError::Csv { path: dir.to_owned(), message: format!("cannot load the models ({e}); run `anomaly train`") }
            .into()
    })
}

/// Reads a model or parameter file saved in the core's envelope (an
/// isolation forest, consumption rules); a missing, oversized, non-regular
/// or corrupt file is the input's fault (exit 2).
pub(crate) fn load<M: anomaly_core::persist::Persist>(path: &Path) -> Result<M> {
    let bytes = read(path).map_err(|message| InputError::Csv { path: path.to_owned(), message })?;
    M::from_bytes(&bytes).map_err(|e| InputError::Csv { path: path.to_owned(), message: e.to_string() }.into())
}

/// The consumption rules' parameters: a parameter file, else a named
/// preset (`--preset`), else the defaults.
pub(crate) fn consumption_params(
    file: Option<&Path>,
    preset: Option<&str>,
) -> Result<anomaly_core::consumption::ConsumptionParams> {
    Ok(match (file, preset) {
        (Some(path), _) => load(path)?,
        (None, Some(name)) => {
            anomaly_core::consumption::ConsumptionParams::preset("--preset", name).map_err(InputError::Params)?
        }
        (None, None) => Default::default(),
    })
}

/// Reads a credit model file; a bad file is the input's fault (exit 2).
pub(crate) fn load_credit(path: &Path) -> Result<CreditModel> {
    let bytes = read(path).map_err(|message| InputError::Csv { path: path.to_owned(), message })?;
    CreditModel::from_json(&bytes).map_err(|e| InputError::Csv { path: path.to_owned(), message: e.to_string() }.into())
}
