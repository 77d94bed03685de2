//! One admin client per cluster bootstrap address, connected on first use
//! and dropped after a failure so that the next reconciliation reconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use runnel_client::Admin;

use super::ReconcileError;

#[derive(Debug, Default)]
pub struct Admins {
    connected: Mutex<HashMap<String, Arc<Admin>>>,
}

impl Admins {
    /// The admin client for `bootstrap`, connecting when there is none.
    pub async fn get(&self, bootstrap: &str) -> Result<Arc<Admin>, ReconcileError> {
        if let Some(admin) = self.lock().get(bootstrap) {
            return Ok(Arc::clone(admin));
        }
        let admin = Admin::new(bootstrap, "runnel-operator")
            .await
            .map_err(|source| ReconcileError::Brokers {
                bootstrap: bootstrap.to_string(),
                source,
            })?;
        let admin = Arc::new(admin);
        self.lock()
            .entry(bootstrap.to_string())
            .or_insert_with(|| Arc::clone(&admin));
        Ok(admin)
    }

    /// Drops the client for `bootstrap` after it failed.
    pub fn forget(&self, bootstrap: &str) {
        self.lock().remove(bootstrap);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Admin>>> {
        self.connected.lock().unwrap_or_else(|e| e.into_inner())
    }
}
