//! The OpenAPI description, generated from the handlers' `#[utoipa::path]`
//! attributes and the `ToSchema` derives of the API's types and of the domain
//! types it returns (`tasker-model` and `tasker-store` with their `openapi`
//! feature), so it cannot drift from the code. Served at
//! `GET /api-docs/openapi.json`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    cluster, leases, namespaces, probes, step_reports, steps, tasks, templates, workers,
};
use crate::{dto, metrics};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tasker",
        description = "Workflow orchestration server. Errors are `{\"error\": {\"code\", \"message\", \"details\"}}` \
                       with a stable `code`. Management endpoints take an admin or operator token; \
                       the worker plane an admin or worker token; probes, metrics and docs none."
    ),
    paths(
        probes::health,
        probes::ready,
        metrics::scrape,
        cluster::cluster,
        namespaces::create,
        namespaces::list,
        templates::register,
        templates::list,
        templates::get_one,
        tasks::create,
        tasks::create_batch,
        tasks::list,
        tasks::get_one,
        tasks::cancel,
        tasks::steps,
        tasks::history,
        steps::get_one,
        steps::retry,
        steps::resolve,
        workers::register,
        workers::poll,
        leases::heartbeat,
        leases::complete,
        leases::fail,
        leases::release,
        leases::result,
        step_reports::report_many,
    ),
    components(schemas(
        dto::ErrorBody,
        dto::ErrorDetail,
        tasker_model::Namespace,
        tasker_model::TemplateRecord,
        tasker_model::Task,
        tasker_model::TaskState,
        tasker_model::Step,
        tasker_model::StepState,
        tasker_model::StepError,
        tasker_model::Transition,
        tasker_store::Worker,
        tasker_store::Node,
        tasker_store::ClusterLeader,
        tasker_store::ClusterNode,
        tasker_store::ClusterWorker,
        tasker_model::Lease,
        tasker_model::ClaimedStep,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "probes", description = "Health, readiness and metrics; no token needed"),
        (name = "cluster", description = "Live nodes, the leader and live workers"),
        (name = "namespaces", description = "Groups of templates, one queue each"),
        (name = "templates", description = "Immutable workflow definitions"),
        (name = "tasks", description = "Runs of a template"),
        (name = "steps", description = "A step by id; manual retry and resolution of steps"),
        (name = "workers", description = "Worker plane: register and long-poll for steps"),
        (name = "leases", description = "Worker plane: heartbeat, complete, fail and release a claimed step, one or many at a time"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document of this API, at `version`.
pub fn openapi(version: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = version.to_owned();
    doc
}
