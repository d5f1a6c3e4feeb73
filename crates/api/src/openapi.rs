//! The OpenAPI description, generated from the handlers' `#[utoipa::path]`
//! attributes and the `ToSchema` derives of the API's types and of the domain
//! types it returns (`tasker-model` and `tasker-store` with their `openapi`
//! feature), so it cannot drift from the code. Served at
//! `GET /api-docs/openapi.json`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    cluster, dead_letters, leases, namespaces, probes, schedules, step_reports, steps, tasks,
    templates, workers,
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
        tasks::explain,
        schedules::create,
        schedules::list,
        schedules::get_one,
        schedules::update,
        schedules::delete,
        schedules::pause,
        schedules::resume,
        schedules::trigger,
        schedules::backfill,
        schedules::fires,
        steps::get_one,
        steps::retry,
        steps::resolve,
        dead_letters::list,
        dead_letters::retry,
        dead_letters::resolve,
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
        tasker_model::TaskExplanation,
        tasker_model::StepExplanation,
        tasker_model::WaitReason,
        tasker_model::explanation::StepRef,
        tasker_model::wire::Worker,
        tasker_model::wire::Node,
        tasker_model::wire::ClusterLeader,
        tasker_model::wire::ClusterNode,
        tasker_model::wire::ClusterWorker,
        tasker_model::wire::SweepRecord,
        tasker_model::wire::DeadLetter,
        tasker_model::wire::DeadLetterFilter,
        tasker_model::wire::DeadLetterPage,
        tasker_model::wire::DeadLetterOutcome,
        tasker_model::wire::DeadLetterRefusal,
        tasker_model::Lease,
        tasker_model::ClaimedStep,
        tasker_model::FanOutItems,
        tasker_model::ScheduleSpec,
        tasker_model::Schedule,
        tasker_model::ScheduleFire,
        tasker_model::schedule::OverlapPolicy,
        tasker_model::schedule::CatchUp,
        tasker_model::schedule::FireKind,
        tasker_model::schedule::FireOutcome,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "probes", description = "Health, readiness and metrics; no token needed"),
        (name = "cluster", description = "Live nodes, the leader and live workers"),
        (name = "namespaces", description = "Groups of templates, one queue each"),
        (name = "templates", description = "Immutable workflow definitions"),
        (name = "tasks", description = "Runs of a template"),
        (name = "schedules", description = "Tasks started on a cron expression or an interval by the leader; pause, resume, trigger, backfill, fires"),
        (name = "steps", description = "A step by id; manual retry and resolution of steps"),
        (name = "dead-letters", description = "Steps that exhausted their retries: list, retry or resolve many at once"),
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
