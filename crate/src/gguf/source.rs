/// Random access to the bytes of a model file of known length: a file natively, fetched or cached
/// chunks in the browser. Reads are small and few while parsing the header; tensor data is read by
/// the loader in chunks, so no implementation has to hold the whole file.
pub trait ByteSource {
    fn len(&self) -> u64;

    /// Fills `buf` with the bytes at `offset..offset + buf.len()`. The caller has checked the
    /// range against `len()`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

/// Bytes already in memory: tests, and in the browser the prefix of a file holding its header
/// (`len` is the whole file's length, so a header that runs past the prefix reports how many
/// bytes it needs).
pub struct SliceSource<'a> {
    bytes: &'a [u8],
    len: u64,
}

impl<'a> SliceSource<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, len: bytes.len() as u64 }
    }

    /// A prefix of a file whose full length is `file_len`.
    pub fn prefix(bytes: &'a [u8], file_len: u64) -> Self {
        Self { bytes, len: file_len.max(bytes.len() as u64) }
    }
}

impl ByteSource for SliceSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).ok().filter(|&s| s <= self.bytes.len());
        match start.and_then(|s| self.bytes.get(s..s + buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("bytes {offset}..{} are not loaded yet", offset + buf.len() as u64),
            )),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use file::FileSource;

#[cfg(not(target_arch = "wasm32"))]
mod file {
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom};
    use std::path::Path;

    pub struct FileSource {
        file: File,
        len: u64,
    }

    impl FileSource {
        pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
            let file = File::open(path)?;
            let len = file.metadata()?.len();
            Ok(Self { file, len })
        }
    }

    impl super::ByteSource for FileSource {
        fn len(&self) -> u64 {
            self.len
        }

        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.file.seek(SeekFrom::Start(offset))?;
            self.file.read_exact(buf)
        }
    }
}
