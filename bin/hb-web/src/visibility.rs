//! What a viewer sees of the hosts: one host by the name in a path, with their role on it,
//! and every host (or every name) they see.

use std::collections::BTreeSet;

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use hb_ipc::edge::{Answer, HostSummary, Query};
use hb_web::access::{HostRole, Viewer};

use crate::reply::{ApiError, unexpected};
use crate::web::Web;

/// A host name from a path: lower case, and a valid name, or it cannot exist.
pub fn host_name(raw: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(raw) = raw?;
    let name = raw.to_ascii_lowercase();
    if hb_proto::names::check_host_name(&name).is_err() {
        return Err(ApiError::not_found("no such host"));
    }
    Ok(name)
}

impl Web {
    /// One host the viewer sees, with their role on it: 404 if they see none, 403 if their
    /// role is below `needs`.
    pub async fn host_for(
        &self,
        viewer: &Viewer,
        name: &str,
        needs: HostRole,
    ) -> Result<(HostSummary, Answer), ApiError> {
        let answer = self
            .ask(Query::Host {
                host: name.to_string(),
            })
            .await?;
        let summary = match &answer {
            Answer::Host { host, .. } => (**host).clone(),
            _ => return Err(ApiError::not_found(format!("no host {name}"))),
        };
        let Some(role) = viewer.role(&summary) else {
            return Err(ApiError::not_found(format!("no host {name}")));
        };
        if role < needs {
            return Err(ApiError::forbidden(format!(
                "this needs the {} role on {name}; you are {}",
                needs.name(),
                role.name()
            )));
        }
        Ok((summary, answer))
    }

    /// Every host the viewer sees.
    pub async fn visible_hosts(&self, viewer: &Viewer) -> Result<Vec<HostSummary>, ApiError> {
        Ok(self
            .host_list()
            .await?
            .into_iter()
            .filter(|h| viewer.sees(h))
            .collect())
    }

    /// Every host, sorted by name: kept by the live feed, or (until it has a full list)
    /// from the engine.
    pub async fn host_list(&self) -> Result<Vec<HostSummary>, ApiError> {
        if let Some(list) = self.live.list() {
            return Ok(list);
        }
        match self.ask(Query::ListHosts {}).await? {
            Answer::Hosts { hosts } => Ok(hosts),
            other => Err(unexpected(other)),
        }
    }

    /// Names of the hosts the viewer sees (`None`: all, for admins).
    pub async fn visible_names(
        &self,
        viewer: &Viewer,
    ) -> Result<Option<BTreeSet<String>>, ApiError> {
        if viewer.is_admin() {
            return Ok(None);
        }
        Ok(Some(
            self.visible_hosts(viewer)
                .await?
                .into_iter()
                .map(|h| h.name)
                .collect(),
        ))
    }
}
