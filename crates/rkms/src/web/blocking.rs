//! Runs store reads (synchronous, possibly on disk) on the blocking thread pool, so page and
//! API handlers never stall the async workers.

use std::sync::Arc;

use super::error::WebError;
use super::state::WebState;

/// Runs `f(state)` on a blocking thread and returns its result.
pub async fn blocking<T, F>(state: &Arc<WebState>, f: F) -> Result<T, WebError>
where
    T: Send + 'static,
    F: FnOnce(&WebState) -> Result<T, WebError> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|e| WebError::Store(format!("store read failed: {e}")))?
}
