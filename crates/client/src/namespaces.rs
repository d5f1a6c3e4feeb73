//! Namespaces: `POST /v1/namespaces`, `GET /v1/namespaces`.

use reqwest::Method;
use serde::Deserialize;
use tasker_model::Namespace;

use crate::{Client, Result};

impl Client {
    /// Creates a namespace (and its queue). Returns `created` false when it
    /// already existed (HTTP 200 instead of 201).
    pub async fn namespace_create(&self, name: &str) -> Result<(Namespace, bool)> {
        let url = self.url(&["v1", "namespaces"]);
        let builder = self
            .request(Method::POST, &url)
            .json(&serde_json::json!({ "name": name }));
        let (status, namespace) = self.call(&url, builder).await?;
        Ok((namespace, status == 201))
    }

    pub async fn namespace_list(&self) -> Result<Vec<Namespace>> {
        #[derive(Deserialize)]
        struct Reply {
            namespaces: Vec<Namespace>,
        }
        let url = self.url(&["v1", "namespaces"]);
        let builder = self.request(Method::GET, &url);
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        Ok(reply.namespaces)
    }
}
