//! What a viewer sees of the hosts: one host by the name in a path, with their role on it,
//! and every host (or every name) they see.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::Path;
use hb_ipc::edge::{AlertSummary, Answer, HostSummary, PluginLatest, Query};
use hb_web::access::{HostRole, Viewer};

use crate::reply::{ApiError, PathParams};
use crate::web::{Web, answer};

/// A host name from a path: lower case, and a valid name, or it cannot exist.
pub fn host_name(raw: PathParams) -> Result<String, ApiError> {
    let Path(raw) = raw?;
    let name = raw.to_ascii_lowercase();
    if hb_proto::names::check_host_name(&name).is_err() {
        return Err(ApiError::not_found("no such host"));
    }
    Ok(name)
}

/// One host as the engine tells of it.
pub struct HostSeen {
    pub summary: HostSummary,
    /// The latest data of each plugin.
    pub plugins: BTreeMap<String, PluginLatest>,
    /// Its active alerts.
    pub alerts: Vec<AlertSummary>,
}

impl Web {
    /// One host the viewer sees, with their role on it: 404 if they see none, 403 if their
    /// role is below `needs`.
    pub async fn host_for(
        &self,
        viewer: &Viewer,
        name: &str,
        needs: HostRole,
    ) -> Result<HostSeen, ApiError> {
        let answer = self
            .ask(Query::Host {
                host: name.to_string(),
            })
            .await?;
        let Answer::Host {
            host,
            plugins,
            alerts,
        } = answer
        else {
            return Err(ApiError::not_found(format!("no host {name}")));
        };
        let summary = *host;
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
        Ok(HostSeen {
            summary,
            plugins,
            alerts,
        })
    }

    /// The host named in `path` ([`host_name`]) with [`Web::host_for`]; its name too.
    pub async fn host_in_path(
        &self,
        viewer: &Viewer,
        path: PathParams,
        needs: HostRole,
    ) -> Result<(String, HostSeen), ApiError> {
        let name = host_name(path)?;
        let host = self.host_for(viewer, &name, needs).await?;
        Ok((name, host))
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
        self.ask_for(
            Query::ListHosts {},
            answer!(Answer::Hosts { hosts } => hosts),
        )
        .await
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
