//! The table of every Atlas operation rewind serves: path, method, operation id and the
//! dated versions it accepts. Version negotiation and our OpenAPI document both read it, so
//! they cannot disagree with each other.

/// One operation.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path template with `{name}` parameters, as axum matches it.
    pub path: &'static str,
    /// Atlas's operation id (the SDK and CLI name).
    pub operation_id: &'static str,
    /// Accepted `application/vnd.atlas.<date>+json` dates; empty means any (or none) is accepted.
    pub versions: &'static [&'static str],
    /// Status of a success.
    pub success: u16,
    /// One-line description.
    pub summary: &'static str,
}

const V2023: &[&str] = &["2023-01-01"];
const V_CLUSTER: &[&str] = &["2023-02-01", "2024-08-05", "2024-10-23"];
const V_SCHEDULE: &[&str] = &["2023-01-01", "2024-08-05"];
const V_SERVICE_ACCOUNT: &[&str] = &["2024-08-01"];

const G: &str = "/api/atlas/v2/groups/{groupId}";

macro_rules! op {
    ($method:literal, $path:expr, $id:literal, $versions:expr, $success:literal, $summary:literal) => {
        Operation {
            method: $method,
            path: $path,
            operation_id: $id,
            versions: $versions,
            success: $success,
            summary: $summary,
        }
    };
}

/// Routes served beside the Atlas API (no version negotiation), as the router mounts them.
pub mod service {
    /// Our OpenAPI document.
    pub const OPENAPI: &str = "/api/atlas/v2/openapi.json";
    /// OAuth client credentials: token.
    pub const OAUTH_TOKEN: &str = "/api/oauth/token";
    /// OAuth client credentials: revoke.
    pub const OAUTH_REVOKE: &str = "/api/oauth/revoke";
    /// Download restore links.
    pub const DOWNLOAD: &str = "/api/rewind/v1/downloads/{token}/{file}";
    /// Prometheus exposition.
    pub const METRICS: &str = "/metrics";
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness.
    pub const READYZ: &str = "/readyz";
    /// All of them.
    pub const ALL: [&str; 7] = [
        OPENAPI,
        OAUTH_TOKEN,
        OAUTH_REVOKE,
        DOWNLOAD,
        METRICS,
        HEALTHZ,
        READYZ,
    ];
}

/// The route template `path` as a static string, if we serve it.
pub fn static_template(path: &str) -> Option<&'static str> {
    service::ALL
        .iter()
        .copied()
        .chain(OPERATIONS.iter().map(|operation| operation.path))
        .find(|template| *template == path)
}

/// Every operation served under `/api/atlas/v2`.
pub const OPERATIONS: &[Operation] = &[
    op!(
        "GET",
        "/api/atlas/v2/orgs",
        "listOrganizations",
        V2023,
        200,
        "Return all organizations the caller belongs to."
    ),
    op!(
        "GET",
        "/api/atlas/v2/orgs/{orgId}",
        "getOrganization",
        V2023,
        200,
        "Return one organization."
    ),
    op!(
        "GET",
        "/api/atlas/v2/orgs/{orgId}/apiKeys",
        "listApiKeys",
        V2023,
        200,
        "Return the organization's API keys."
    ),
    op!(
        "POST",
        "/api/atlas/v2/orgs/{orgId}/apiKeys",
        "createApiKey",
        V2023,
        200,
        "Create an organization API key; its private key is shown once."
    ),
    op!(
        "GET",
        "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}",
        "getApiKey",
        V2023,
        200,
        "Return one API key."
    ),
    op!(
        "PATCH",
        "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}",
        "updateApiKey",
        V2023,
        200,
        "Change an API key's description or organization roles."
    ),
    op!(
        "DELETE",
        "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}",
        "deleteApiKey",
        V2023,
        204,
        "Delete an API key."
    ),
    op!(
        "GET",
        "/api/atlas/v2/orgs/{orgId}/serviceAccounts",
        "listServiceAccounts",
        V_SERVICE_ACCOUNT,
        200,
        "Return the organization's service accounts."
    ),
    op!(
        "POST",
        "/api/atlas/v2/orgs/{orgId}/serviceAccounts",
        "createServiceAccount",
        V_SERVICE_ACCOUNT,
        201,
        "Create a service account; its client secret is shown once."
    ),
    op!(
        "GET",
        "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}",
        "getServiceAccount",
        V_SERVICE_ACCOUNT,
        200,
        "Return one service account."
    ),
    op!(
        "DELETE",
        "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}",
        "deleteServiceAccount",
        V_SERVICE_ACCOUNT,
        204,
        "Delete a service account and revoke its tokens."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups",
        "listProjects",
        V2023,
        200,
        "Return the projects the caller can see."
    ),
    op!(
        "POST",
        "/api/atlas/v2/groups",
        "createProject",
        V2023,
        200,
        "Create a project."
    ),
    op!("GET", G, "getProject", V2023, 200, "Return one project."),
    op!(
        "DELETE",
        G,
        "deleteProject",
        V2023,
        204,
        "Delete a project without clusters."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/apiKeys",
        "listProjectApiKeys",
        V2023,
        200,
        "Return the API keys assigned to a project."
    ),
    op!(
        "POST",
        "/api/atlas/v2/groups/{groupId}/apiKeys/{apiUserId}",
        "addProjectApiKey",
        V2023,
        200,
        "Assign an organization API key to a project with roles."
    ),
    op!(
        "PATCH",
        "/api/atlas/v2/groups/{groupId}/apiKeys/{apiUserId}",
        "updateApiKeyRoles",
        V2023,
        200,
        "Replace an API key's roles in a project."
    ),
    op!(
        "DELETE",
        "/api/atlas/v2/groups/{groupId}/apiKeys/{apiUserId}",
        "removeProjectApiKey",
        V2023,
        204,
        "Remove an API key from a project."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters",
        "listClusters",
        V_CLUSTER,
        200,
        "Return a project's clusters."
    ),
    op!(
        "POST",
        "/api/atlas/v2/groups/{groupId}/clusters",
        "createCluster",
        V_CLUSTER,
        201,
        "Create a cluster."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}",
        "getCluster",
        V_CLUSTER,
        200,
        "Return one cluster."
    ),
    op!(
        "PATCH",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}",
        "updateCluster",
        V_CLUSTER,
        200,
        "Change a cluster."
    ),
    op!(
        "DELETE",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}",
        "deleteCluster",
        V_CLUSTER,
        202,
        "Delete a cluster with its snapshots."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/restoreJobs",
        "listBackupRestoreJobs",
        V2023,
        200,
        "Return a cluster's restore jobs, newest first."
    ),
    op!(
        "POST",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/restoreJobs",
        "createBackupRestoreJob",
        V2023,
        200,
        "Restore one snapshot of one cluster."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/restoreJobs/{restoreJobId}",
        "getBackupRestoreJob",
        V2023,
        200,
        "Return one restore job."
    ),
    op!(
        "DELETE",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/restoreJobs/{restoreJobId}",
        "cancelBackupRestoreJob",
        V2023,
        204,
        "Cancel a download restore job and revoke its link."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots",
        "listBackupSnapshots",
        V2023,
        200,
        "Return a cluster's snapshots, newest first."
    ),
    op!(
        "POST",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots",
        "takeSnapshots",
        V2023,
        200,
        "Take an on-demand snapshot."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
        "getClusterBackupSnapshot",
        V2023,
        200,
        "Return one snapshot."
    ),
    op!(
        "PATCH",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
        "updateBackupSnapshot",
        V2023,
        200,
        "Change a snapshot's retention."
    ),
    op!(
        "DELETE",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
        "deleteClusterBackupSnapshot",
        V2023,
        204,
        "Delete a snapshot."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedClusters",
        "listBackupShardedClusters",
        V2023,
        200,
        "Return a sharded cluster's snapshots."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedCluster/{snapshotId}",
        "getBackupShardedCluster",
        V2023,
        200,
        "Return one sharded-cluster snapshot."
    ),
    op!(
        "DELETE",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedCluster/{snapshotId}",
        "deleteBackupShardedCluster",
        V2023,
        204,
        "Delete one sharded-cluster snapshot."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
        "getBackupSchedule",
        V_SCHEDULE,
        200,
        "Return a cluster's backup schedule."
    ),
    op!(
        "PATCH",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
        "updateBackupSchedule",
        V_SCHEDULE,
        200,
        "Change a cluster's backup schedule."
    ),
    op!(
        "DELETE",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
        "deleteClusterBackupSchedule",
        V_SCHEDULE,
        200,
        "Remove every policy item of a cluster's backup schedule."
    ),
    op!(
        "GET",
        "/api/atlas/v2/groups/{groupId}/flexClusters/{name}/{*rest}",
        "flexClusterBackup",
        &[],
        400,
        "Flex cluster backup paths: rewind has no flex clusters, so these answer CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API or CLUSTER_NOT_FOUND."
    ),
    op!(
        "POST",
        "/api/atlas/v2/groups/{groupId}/flexClusters/{name}/{*rest}",
        "flexClusterBackupAction",
        &[],
        400,
        "Flex cluster backup actions; answered as the GET variant."
    ),
];

/// The operation matching a route template and method.
pub fn find(method: &str, path: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|operation| operation.method == method && operation.path == path)
}
