//! An HTTP service over a store: axum over the async handle.
//!
//! ```sh
//! http_service STORE_DIR [ADDRESS]    # ADDRESS defaults to 127.0.0.1:3000
//! ```
//!
//! Routes:
//! - `GET /docs/{id}`: the document's text (`text/plain`), 404 when there is none;
//! - `GET /docs/{id}/lines/{first}/{last}`: lines `first..=last` (one-based, inclusive);
//! - `GET /metrics`: every call's counts and latencies and the store's figures, in the
//!   Prometheus text format.
//!
//! `{id}` is a document id (ULID or decimal) or, failing that, the key it derives from
//! (`/docs/guide%2Fintro.md`). Reads run inline when the document's pages are in memory and
//! on tokio's blocking pool when they are not, so a read from disk never stalls the other
//! requests on its worker thread.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use textstore::{AsyncOptions, AsyncStore, DocId, ErrorKind, TextRange, Textstore};

type Store = Arc<AsyncStore<Textstore>>;

/// An error as the client sees it: 404 for a missing document, 400 for a bad request, 500
/// for the rest, with the error's sentence as the body.
struct Failure(textstore::Error);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = match self.0.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, format!("{}\n", self.0)).into_response()
    }
}

impl From<textstore::Error> for Failure {
    fn from(err: textstore::Error) -> Failure {
        Failure(err)
    }
}

fn id_of(text: &str) -> DocId {
    DocId::parse(text).unwrap_or_else(|_| DocId::from_key(text))
}

fn plain(text: impl Into<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.into(),
    )
        .into_response()
}

async fn document(State(store): State<Store>, Path(id): Path<String>) -> Result<Response, Failure> {
    match store
        .get(id_of(&id))
        .await
        .map_err(textstore::Error::from)?
    {
        Some(doc) => Ok(plain(&*doc)),
        None => Ok((StatusCode::NOT_FOUND, format!("no document {id}\n")).into_response()),
    }
}

async fn lines(
    State(store): State<Store>,
    Path((id, first, last)): Path<(String, u64, u64)>,
) -> Result<Response, Failure> {
    let text = store
        .extract(id_of(&id), TextRange::lines(first, last))
        .await
        .map_err(textstore::Error::from)?;
    Ok(plain(&*text))
}

async fn metrics(State(store): State<Store>) -> Result<Response, Failure> {
    let snapshot = store.inner().snapshot()?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        textstore::prometheus(&snapshot),
    )
        .into_response())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: http_service STORE_DIR [ADDRESS]");
        std::process::exit(2);
    };
    let address = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let store: Store = Arc::new(
        Textstore::builder(dir)
            .open_async(AsyncOptions::new())
            .await?,
    );
    let app = axum::Router::new()
        .route("/docs/{id}", get(document))
        .route("/docs/{id}/lines/{first}/{last}", get(lines))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&store));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    // The bound address, for a caller that asked for port 0.
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    store.close().await?;
    Ok(())
}
