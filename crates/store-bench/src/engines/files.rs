//! One file per document, the store a program without a storage engine writes: a file named
//! by the id under one of up to 1024 directories.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use store_mmap::DocId;

use crate::corpus::Document;
use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};

/// A directory of files, one per document.
#[derive(Debug)]
pub struct FilePerDoc {
    dir: PathBuf,
}

const NAME: &str = "file per doc";

impl FilePerDoc {
    fn path(&self, id: DocId) -> PathBuf {
        let name = id.to_string();
        // The last two characters of a ULID are its most random.
        self.dir.join(&name[name.len() - 2..]).join(name)
    }

    /// Writes the text to a temporary file and renames it over the document's file, so that
    /// a crash leaves the old or the new text, never a mix; returns the file, not yet synced.
    fn write(&self, id: DocId, text: &str) -> Result<File> {
        let path = self.path(id);
        let parent = path.parent().expect("a document's file is in a directory");
        std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        let temporary = path.with_extension("tmp");
        let mut file = File::create(&temporary).map_err(Error::io(&temporary))?;
        file.write_all(text.as_bytes())
            .map_err(Error::io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(Error::io(&path))?;
        Ok(file)
    }

    /// Makes every write so far durable with one `syncfs`: the file system writes every
    /// file and directory back and flushes the device once, as one fsync per file would
    /// not.
    fn sync_all(&self) -> Result<()> {
        let dir = File::open(&self.dir).map_err(Error::io(&self.dir))?;
        rustix::fs::syncfs(&dir).map_err(|err| Error::io(&self.dir)(err.into()))
    }
}

impl Engine for FilePerDoc {
    type Reader<'a> = FileReader<'a>;

    const NAME: &'static str = NAME;
    const HAS_STEADY_STATE: bool = false;

    fn create(dir: &Path) -> Result<Self> {
        Ok(FilePerDoc {
            dir: dir.to_path_buf(),
        })
    }

    fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::engine(NAME, "open")(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        Ok(FilePerDoc {
            dir: dir.to_path_buf(),
        })
    }

    fn settings(&self) -> String {
        "a file per document under 1024 directories, replaced by write + rename; a single \
         put is fdatasync of the file and fsync of its directory, a batch or an ingest one \
         syncfs"
            .to_owned()
    }

    fn ingest(&self, docs: &[Document]) -> Result<()> {
        for doc in docs {
            self.write(doc.id, &doc.text)?;
        }
        self.sync_all()
    }

    fn put(&self, id: DocId, text: &str) -> Result<()> {
        let file = self.write(id, text)?;
        let path = self.path(id);
        file.sync_data().map_err(Error::io(&path))?;
        let parent = path.parent().expect("a document's file is in a directory");
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(Error::io(parent))
    }

    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
        for &(id, text) in docs {
            self.write(id, text)?;
        }
        self.sync_all()
    }

    fn reader(&self) -> Result<Self::Reader<'_>> {
        Ok(FileReader {
            engine: self,
            buf: Vec::new(),
        })
    }

    fn compact(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn close(self) -> Result<()> {
        self.sync_all()
    }
}

/// Reads a document's file into a buffer it reuses.
#[derive(Debug)]
pub struct FileReader<'a> {
    engine: &'a FilePerDoc,
    buf: Vec<u8>,
}

impl Reader for FileReader<'_> {
    const ENGINE: &'static str = NAME;

    fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let path = self.engine.path(id);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io(path)(err)),
        };
        self.buf.clear();
        file.read_to_end(&mut self.buf).map_err(Error::io(&path))?;
        Ok(Some(f(&self.buf)))
    }
}
