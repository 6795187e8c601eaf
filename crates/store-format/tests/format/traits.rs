use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use store_format::{
    Doc, DocId, DocMeta, DocRead, ErrorKind, IntoTicket, RangeError, Ready, Residency, StoreError,
    Text, TextRange, WriteTicket,
};

/// The least a reader implements; every other method of the traits is their default.
struct Shelf {
    docs: BTreeMap<DocId, (u64, Text)>,
    /// Documents whose bytes are in memory.
    resident: Mutex<Vec<DocId>>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum ShelfError {
    #[error("document {0} not found")]
    NotFound(DocId),
    #[error(transparent)]
    Range(#[from] RangeError),
}

impl StoreError for ShelfError {
    fn kind(&self) -> ErrorKind {
        match self {
            ShelfError::NotFound(_) => ErrorKind::NotFound,
            ShelfError::Range(_) => ErrorKind::InvalidInput,
        }
    }
}

/// An error of the layer above, into which a [`ShelfError`] converts.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("above: {0}")]
struct AboveError(#[from] ShelfError);

impl StoreError for AboveError {
    fn kind(&self) -> ErrorKind {
        self.0.kind()
    }
}

impl DocRead for Shelf {
    type Error = ShelfError;

    fn get(&self, id: DocId) -> Result<Option<Doc>, ShelfError> {
        Ok(self
            .docs
            .get(&id)
            .map(|(seq, text)| Doc::new(*seq, text.clone())))
    }

    fn meta(&self, id: DocId) -> Result<Option<DocMeta>, ShelfError> {
        Ok(self.docs.get(&id).map(|(seq, text)| DocMeta {
            seq: *seq,
            text_len: text.len() as u64,
        }))
    }

    fn extract(&self, id: DocId, range: TextRange) -> Result<Text, ShelfError> {
        let (_, text) = self.docs.get(&id).ok_or(ShelfError::NotFound(id))?;
        Ok(text.extract(range)?)
    }
}

impl Residency for Shelf {
    fn get_if_resident(&self, id: DocId) -> Result<Option<Option<Doc>>, ShelfError> {
        if self.resident.lock().unwrap().contains(&id) {
            self.get(id).map(Some)
        } else {
            Ok(None)
        }
    }

    fn refresh_residency(&self) -> Result<(), ShelfError> {
        Ok(())
    }

    fn note_resident(&self, id: DocId) {
        self.resident.lock().unwrap().push(id);
    }
}

fn shelf() -> Shelf {
    Shelf {
        docs: BTreeMap::from([
            (DocId::from(1u64), (5, Text::from("one\ntwo\n"))),
            (DocId::from(2u64), (9, Text::from(""))),
        ]),
        resident: Mutex::new(Vec::new()),
    }
}

#[test]
fn the_readers_defaults_answer_from_get_and_meta() {
    let shelf = shelf();
    let (one, empty, absent) = (DocId::from(1u64), DocId::from(2u64), DocId::from(3u64));
    assert_eq!(shelf.contains(one), Ok(true));
    assert_eq!(
        shelf.contains(empty),
        Ok(true),
        "an empty text is a document"
    );
    assert_eq!(shelf.contains(absent), Ok(false));
    assert_eq!(shelf.placement_epoch(), 0, "records that never move");
    let mut buf = String::from("left over");
    assert_eq!(shelf.read_into(one, &mut buf), Ok(true));
    assert_eq!(buf, "one\ntwo\n");
    assert_eq!(shelf.read_into(absent, &mut buf), Ok(false));
    assert_eq!(buf, "", "cleared even when the document is absent");
}

#[test]
fn an_extract_if_resident_is_made_only_from_memory() {
    let shelf = shelf();
    let one = DocId::from(1u64);
    let second_line = TextRange::lines(2, 2);
    assert_eq!(shelf.extract_if_resident(one, second_line), Ok(None));
    shelf.note_resident(one);
    assert_eq!(
        shelf.extract_if_resident(one, second_line),
        Ok(Some(Text::from("two\n")))
    );
    assert!(
        shelf
            .extract_if_resident(one, TextRange::lines(4, 4))
            .is_err()
    );
}

#[test]
fn tickets_pass_on_their_outcome() {
    let done: Ready<u64, ShelfError> = Ready::new(Ok(7));
    assert!(done.is_ready());
    assert_eq!(done.wait(), Ok(7));

    let inner: Ready<u64, ShelfError> = Ready::new(Err(ShelfError::NotFound(DocId::from(4u64))));
    let above: IntoTicket<_, AboveError> = IntoTicket::new(inner);
    assert!(above.is_ready());
    assert!(format!("{above:?}").contains("NotFound"), "{above:?}");
    let err = above.wait().unwrap_err();
    assert_eq!(err, AboveError(ShelfError::NotFound(DocId::from(4u64))));
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let waiting: IntoTicket<Waiting, AboveError> = IntoTicket::new(Waiting);
    assert!(
        !waiting.is_ready(),
        "a ticket is ready when the one it wraps is"
    );
}

/// A ticket whose write has not committed yet.
#[derive(Debug)]
struct Waiting;

impl Future for Waiting {
    type Output = Result<u64, ShelfError>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

impl WriteTicket for Waiting {
    type Value = u64;
    type Error = ShelfError;

    fn wait(self) -> Result<u64, ShelfError> {
        Ok(0)
    }

    fn is_ready(&self) -> bool {
        false
    }
}
