//! Knowledge: what turns a tenant's documents into passages an agent answers from. Text
//! arrives as [`Block`]s that keep its structure (headings, paragraphs, list items, tables,
//! page numbers); [`chunk::chunk`] cuts them into passages by structure first and then by a
//! token budget with overlap, each passage knowing its section and page for citations.
//! [`rank`] holds retrieval's exact vector index and the fusion of the vector and full-text
//! rankings.

pub mod chunk;
pub mod csv;
pub mod docx;
pub mod extract;
pub mod html;
pub mod index;
mod ingest;
pub mod library;
pub mod markdown;
pub mod pdf;
pub mod rank;
pub mod vector;

pub use chunk::{chunk, Block, BlockKind, Chunk, ChunkSettings};
pub use library::{Added, DocumentWithPassages, Library, LibrarySettings, NewDocument};
pub use rank::{fuse, FlatIndex, Scored};
pub use vector::VectorIndex;
