//! Bulk import of FHIR JSON into the store: a single resource, a Bundle (each entry's
//! resource), NDJSON (one resource per line), or a directory of such files. Errors name the file
//! and the line.

use std::path::{Path, PathBuf};

use super::{Precondition, ResourceKey, Store, StoreError, WriteOutcome, WriteRequest};
use crate::json::{self, JsonError, RawElements};

/// Resources written concurrently; they share the committer's group flushes.
const BATCH: usize = 512;

/// How deep below the import path directories are followed. A symbolic link back up the tree
/// would otherwise make the walk endless.
const MAX_DIR_DEPTH: usize = 32;

/// Running totals of an import, reported after each batch and each file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportProgress {
    /// File being read.
    pub file: PathBuf,
    /// Files finished so far.
    pub files_done: usize,
    /// Resources read so far.
    pub resources: u64,
    /// Resources that were new (or re-created).
    pub created: u64,
    /// Resources that got a new version.
    pub updated: u64,
    /// Resources whose content was already stored.
    pub unchanged: u64,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {message}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        message: String,
    },
    /// A file holds something that is not an importable FHIR resource.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line where the offending JSON starts.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The store refused or failed a write.
    #[error("{}:{line}: {error}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// 1-based line where the resource starts.
        line: usize,
        /// The store's error.
        error: StoreError,
    },
}

/// One resource found in a file.
struct Found<'a> {
    line: usize,
    body: &'a str,
}

/// Imports `path` (a file or a directory, recursively) into `store`.
pub async fn import_path(
    store: &Store,
    path: &Path,
    mut progress: impl FnMut(ImportProgress),
) -> Result<ImportProgress, ImportError> {
    let mut totals = ImportProgress::default();
    for file in importable_files(path)? {
        totals.file = file.clone();
        let text = std::fs::read_to_string(&file).map_err(|error| io_error(&file, &error))?;
        let found = resources_in(&file, &text)?;
        for batch in found.chunks(BATCH) {
            write_batch(store, &file, batch, &mut totals).await?;
            progress(totals.clone());
        }
        totals.files_done += 1;
        progress(totals.clone());
    }
    Ok(totals)
}

fn io_error(path: &Path, error: &std::io::Error) -> ImportError {
    ImportError::Io {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// `path` itself, or every `.json`/`.ndjson`/`.jsonl` file below it, sorted.
fn importable_files(path: &Path) -> Result<Vec<PathBuf>, ImportError> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let mut pending = vec![(path.to_owned(), 0usize)];
    while let Some((directory, depth)) = pending.pop() {
        let entries =
            std::fs::read_dir(&directory).map_err(|error| io_error(&directory, &error))?;
        for entry in entries {
            let entry_path = entry.map_err(|error| io_error(&directory, &error))?.path();
            if entry_path.is_dir() {
                if depth >= MAX_DIR_DEPTH {
                    return Err(ImportError::Io {
                        path: entry_path,
                        message: format!(
                            "more than {MAX_DIR_DEPTH} directory levels below the import path \
                             (a symbolic link loop?)"
                        ),
                    });
                }
                pending.push((entry_path, depth + 1));
            } else if is_importable(&entry_path) {
                files.push(entry_path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_importable(path: &Path) -> bool {
    let extension = path.extension().and_then(|extension| extension.to_str());
    matches!(extension, Some("json" | "ndjson" | "jsonl"))
}

fn is_ndjson(path: &Path, text: &str) -> bool {
    let extension = path.extension().and_then(|extension| extension.to_str());
    if matches!(extension, Some("ndjson" | "jsonl")) {
        return true;
    }
    // A .json file that is not one document but whose first line is one is NDJSON too.
    let first_line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str::<&serde_json::value::RawValue>(text).is_err()
        && json::top_level_fields(first_line).is_ok()
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

fn offset_of(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
}

fn resources_in<'a>(path: &Path, text: &'a str) -> Result<Vec<Found<'a>>, ImportError> {
    let invalid = |line: usize, error: JsonError| ImportError::Invalid {
        path: path.to_owned(),
        line: if line == 0 { 1 } else { line },
        message: error.to_string(),
    };
    if is_ndjson(path, text) {
        return text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| {
                json::top_level_fields(line).map_err(|error| invalid(index + 1, error))?;
                Ok(Found {
                    line: index + 1,
                    body: line,
                })
            })
            .collect();
    }
    let fields = json::top_level_fields(text).map_err(|error| match &error {
        JsonError::Syntax { line, .. } => invalid(*line, error.clone()),
        _ => invalid(1, error),
    })?;
    let is_bundle = fields
        .iter()
        .any(|(name, value)| name == "resourceType" && value.get() == "\"Bundle\"");
    if !is_bundle {
        return Ok(vec![Found {
            line: line_of(text, offset_of(text, text.trim_start())),
            body: text,
        }]);
    }
    let Some((_, entries)) = fields.iter().find(|(name, _)| name == "entry") else {
        return Ok(Vec::new());
    };
    let entries_line = line_of(text, offset_of(text, entries.get()));
    let RawElements(entries) = serde_json::from_str(entries.get())
        .map_err(|error| invalid(entries_line, JsonError::from(error)))?;
    let mut found = Vec::with_capacity(entries.len());
    for entry in entries {
        let line = line_of(text, offset_of(text, entry.get()));
        let entry_fields = json::object_fields(entry.get(), "a Bundle entry")
            .map_err(|error| invalid(line, error))?;
        if let Some((_, resource)) = entry_fields
            .into_iter()
            .find(|(name, _)| name == "resource")
        {
            found.push(Found {
                line: line_of(text, offset_of(text, resource.get())),
                body: resource.get(),
            });
        }
    }
    Ok(found)
}

fn request_for(path: &Path, found: &Found<'_>) -> Result<WriteRequest, ImportError> {
    let invalid = |message: String| ImportError::Invalid {
        path: path.to_owned(),
        line: found.line,
        message,
    };
    let text_field = |name: &str| {
        json::string_field(found.body, name)
            .map_err(|error| invalid(error.to_string()))?
            .ok_or_else(|| invalid(format!("the resource has no {name}")))
    };
    let key = ResourceKey::fhir(text_field("resourceType")?, text_field("id")?);
    Ok(WriteRequest {
        key,
        body: Some(found.body.to_owned()),
        precondition: Precondition::Any,
        origin: None,
    })
}

async fn write_batch(
    store: &Store,
    path: &Path,
    batch: &[Found<'_>],
    totals: &mut ImportProgress,
) -> Result<(), ImportError> {
    let requests = batch
        .iter()
        .map(|found| request_for(path, found))
        .collect::<Result<Vec<_>, _>>()?;
    // Served together, the batch's writes are committed as one group (one flush).
    let writes: Vec<_> = requests.into_iter().map(|r| store.write(r)).collect();
    let outcomes = super::serve_together(writes).await;
    for (found, outcome) in batch.iter().zip(outcomes) {
        totals.resources += 1;
        match outcome {
            Ok(WriteOutcome::Created(_)) => totals.created += 1,
            Ok(WriteOutcome::Unchanged(_)) => totals.unchanged += 1,
            Ok(_) => totals.updated += 1,
            Err(error) => {
                return Err(ImportError::Store {
                    path: path.to_owned(),
                    line: found.line,
                    error,
                });
            }
        }
    }
    Ok(())
}
