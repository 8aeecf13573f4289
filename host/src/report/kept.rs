//! A sled tree of JSON values keyed by node or decision id: how a node keeps the reports and
//! decisions of the tree beside its sync state.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What can go wrong with kept reports or decisions.
#[derive(Debug, thiserror::Error)]
pub enum KeptError {
    #[error("storage of kept reports and decisions failed")]
    Storage(#[from] sled::Error),
    #[error("could not encode `{id}`")]
    Encode {
        id: String,
        source: serde_json::Error,
    },
    #[error("the kept value `{id}` is unreadable")]
    Decode {
        id: String,
        source: serde_json::Error,
    },
}

/// Values of type `T` in one tree, by id. Cheap to clone.
#[derive(Debug)]
pub struct KeptTree<T> {
    tree: sled::Tree,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for KeptTree<T> {
    fn clone(&self) -> Self {
        Self {
            tree: self.tree.clone(),
            kind: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> KeptTree<T> {
    /// The values kept in `tree`.
    pub fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            kind: PhantomData,
        }
    }

    /// Every value, by id.
    pub fn all(&self) -> Result<Vec<T>, KeptError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (key, value) = item?;
            out.push(decode(&key, &value)?);
        }
        Ok(out)
    }

    /// The value of `id`.
    pub fn get(&self, id: &str) -> Result<Option<T>, KeptError> {
        self.tree
            .get(id.as_bytes())?
            .map(|value| decode(id.as_bytes(), &value))
            .transpose()
    }

    /// Replaces the value of `id`.
    pub fn put(&self, id: &str, value: &T) -> Result<(), KeptError> {
        self.tree.insert(id.as_bytes(), encode(id, value)?)?;
        Ok(())
    }

    /// Stores `value` under `id` unless something is kept there already.
    pub fn put_if_absent(&self, id: &str, value: &T) -> Result<(), KeptError> {
        let new = encode(id, value)?;
        // An `Err` inside means a value was kept already: it stays.
        let _kept_already =
            self.tree
                .compare_and_swap(id.as_bytes(), None as Option<&[u8]>, Some(new))?;
        Ok(())
    }

    /// Removes the ids of `remove` and stores `put`, in one atomic batch.
    pub fn replace(&self, remove: &[String], put: &[(&str, &T)]) -> Result<(), KeptError> {
        let mut batch = sled::Batch::default();
        for id in remove {
            batch.remove(id.as_bytes());
        }
        for (id, value) in put {
            batch.insert(id.as_bytes(), encode(id, *value)?);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

fn encode<T: Serialize>(id: &str, value: &T) -> Result<Vec<u8>, KeptError> {
    serde_json::to_vec(value).map_err(|source| KeptError::Encode {
        id: id.to_string(),
        source,
    })
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, KeptError> {
    serde_json::from_slice(value).map_err(|source| KeptError::Decode {
        id: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}
