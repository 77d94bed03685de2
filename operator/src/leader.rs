//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's
//! leaderelection does it, so that two operator replicas never reconcile
//! at once: a replica takes the Lease when it is free or expired, renews it
//! every [`LeaseConfig::renew_every`], and stops (the process exits and is
//! restarted) when it cannot renew within the lease duration. Every write
//! carries the `resourceVersion` it read, so two candidates racing for the
//! same Lease cannot both win: one gets 409 Conflict.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use runnel_http::error_chain;

/// Where the Lease is and who this replica is.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's name in `holderIdentity` (its pod name).
    pub identity: String,
    /// How long a holder that stopped renewing keeps the Lease.
    pub duration: Duration,
    pub renew_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("Lease {namespace}/{name}")]
    Api {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("Lease {namespace}/{name} is now held by {holder:?}")]
    Lost {
        namespace: String,
        name: String,
        holder: String,
    },
    #[error("Lease {namespace}/{name} not renewed for {seconds} s")]
    Expired {
        namespace: String,
        name: String,
        seconds: u64,
    },
}

/// What a candidate does with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// There is none: create it, held by us.
    Create,
    /// Free or expired: take it over (a new holder).
    Take,
    /// Ours: renew it.
    Renew,
    /// Someone else's and live.
    Wait { holder: String },
}

/// The pure part of the election.
pub fn lease_action(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> LeaseAction {
    let Some(spec) = spec else {
        return LeaseAction::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == identity {
        return LeaseAction::Renew;
    }
    if holder.is_empty() {
        return LeaseAction::Take;
    }
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let expired = spec
        .renew_time
        .as_ref()
        .is_none_or(|renewed| renewed.0 + SignedDuration::from_secs(seconds) < now);
    if expired {
        LeaseAction::Take
    } else {
        LeaseAction::Wait {
            holder: holder.to_string(),
        }
    }
}

/// A candidate for the Lease.
#[derive(Debug)]
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl Elector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    fn api_error(&self, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }

    /// One round: reads the Lease and creates, takes or renews it when it
    /// may. Returns whether this replica holds it afterwards (`Ok(false)`
    /// also when another candidate won a race).
    pub async fn try_hold(&self) -> Result<bool, LeaseError> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.api_error(e))?;
        let now = Timestamp::now();
        let action = lease_action(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.config.identity,
            now,
        );
        let lease = match (&action, current) {
            (LeaseAction::Wait { .. }, _) => return Ok(false),
            (LeaseAction::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.held_spec(None, now)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(err) => Err(self.api_error(err)),
                };
            }
            (_, Some(lease)) => lease,
        };
        let mut updated = lease.clone();
        updated.spec = Some(self.held_spec(lease.spec.as_ref(), now));
        // `replace` sends the resourceVersion read above.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(self.api_error(err)),
        }
    }

    /// The spec of a Lease held by us from `now`, continuing `previous`.
    fn held_spec(&self, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let ours =
            previous.and_then(|p| p.holder_identity.as_deref()) == Some(&self.config.identity);
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: if ours {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours || previous.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        let mut waiting_for = None;
        loop {
            match self.try_hold().await {
                Ok(true) => return,
                Ok(false) => {
                    if waiting_for.is_none() {
                        tracing::info!(lease = %self.config.name, "another replica leads; standing by");
                        waiting_for = Some(());
                    }
                }
                Err(err) => tracing::warn!(error = %error_chain(&err), "leader election"),
            }
            tokio::time::sleep(self.config.renew_every).await;
        }
    }

    /// Renews the Lease until it cannot; returns why it was lost.
    pub async fn hold(&self) -> LeaseError {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_every).await;
            match self.try_hold().await {
                Ok(true) => renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    let holder = self
                        .api
                        .get_opt(&self.config.name)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|l| l.spec)
                        .and_then(|s| s.holder_identity)
                        .unwrap_or_default();
                    return LeaseError::Lost {
                        namespace: self.config.namespace.clone(),
                        name: self.config.name.clone(),
                        holder,
                    };
                }
                Err(err) => {
                    tracing::warn!(error = %error_chain(&err), "renewing the leader lease failed");
                }
            }
            if renewed.elapsed() >= self.config.duration {
                return LeaseError::Expired {
                    namespace: self.config.namespace.clone(),
                    name: self.config.name.clone(),
                    seconds: self.config.duration.as_secs(),
                };
            }
        }
    }

    /// Gives the Lease up on a clean stop, so that a standby takes over at
    /// once instead of after the lease duration.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(&self.config.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        if let Err(err) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %error_chain(&err), "releasing the leader lease failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed_at: i64, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(MicroTime(
                Timestamp::from_second(renewed_at).unwrap_or(Timestamp::UNIX_EPOCH),
            )),
            ..LeaseSpec::default()
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_live_lease_of_another_replica_is_waited_for_and_an_expired_one_taken() {
        assert_eq!(lease_action(None, "a", at(100)), LeaseAction::Create);
        let b = spec(Some("b"), 100, 15);
        assert_eq!(
            lease_action(Some(&b), "a", at(110)),
            LeaseAction::Wait { holder: "b".into() }
        );
        assert_eq!(
            lease_action(Some(&b), "a", at(115)),
            LeaseAction::Wait { holder: "b".into() }
        );
        assert_eq!(lease_action(Some(&b), "a", at(116)), LeaseAction::Take);
        assert_eq!(lease_action(Some(&b), "b", at(200)), LeaseAction::Renew);
        let released = spec(None, 100, 1);
        assert_eq!(
            lease_action(Some(&released), "a", at(100)),
            LeaseAction::Take
        );
        let never_renewed = LeaseSpec {
            holder_identity: Some("b".into()),
            ..LeaseSpec::default()
        };
        assert_eq!(
            lease_action(Some(&never_renewed), "a", at(0)),
            LeaseAction::Take
        );
    }
}
