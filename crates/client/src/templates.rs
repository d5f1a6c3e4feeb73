//! Templates: register (YAML or JSON), list, get.

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use tasker_model::{Template, TemplateRecord};

use crate::{Client, Result};

impl Client {
    /// Registers a template from its YAML text, as written on disk. Returns
    /// `created` false when identical content was already registered; a
    /// different definition under the same version is a 409
    /// `template_conflict`, an invalid one a 422 `template_invalid` whose
    /// `details` list every problem with its path.
    pub async fn template_register_yaml(&self, yaml: &str) -> Result<(TemplateRecord, bool)> {
        let url = self.url(&["v1", "templates"]);
        let builder = self
            .request(Method::POST, &url)
            .header(CONTENT_TYPE, "application/yaml")
            .body(yaml.to_owned());
        let (status, record) = self.call(&url, builder).await?;
        Ok((record, status == 201))
    }

    /// Registers a template from its JSON form.
    pub async fn template_register_json(
        &self,
        definition: &serde_json::Value,
    ) -> Result<(TemplateRecord, bool)> {
        let url = self.url(&["v1", "templates"]);
        let builder = self.request(Method::POST, &url).json(definition);
        let (status, record) = self.call(&url, builder).await?;
        Ok((record, status == 201))
    }

    /// Registers a parsed template (sent in its JSON form).
    pub async fn template_register(&self, template: &Template) -> Result<(TemplateRecord, bool)> {
        let url = self.url(&["v1", "templates"]);
        let builder = self.request(Method::POST, &url).json(template);
        let (status, record) = self.call(&url, builder).await?;
        Ok((record, status == 201))
    }

    /// All templates, or those of one namespace.
    pub async fn template_list(&self, namespace: Option<&str>) -> Result<Vec<TemplateRecord>> {
        #[derive(Deserialize)]
        struct Reply {
            templates: Vec<TemplateRecord>,
        }
        let url = self.url(&["v1", "templates"]);
        let mut builder = self.request(Method::GET, &url);
        if let Some(namespace) = namespace {
            builder = builder.query(&[("namespace", namespace)]);
        }
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        Ok(reply.templates)
    }

    /// One template; `version` `None` means the newest registered.
    pub async fn template_get(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<TemplateRecord> {
        let url = self.url(&["v1", "templates", namespace, name]);
        let mut builder = self.request(Method::GET, &url);
        if let Some(version) = version {
            builder = builder.query(&[("version", version)]);
        }
        Ok(self.call(&url, builder).await?.1)
    }
}
