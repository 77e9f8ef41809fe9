//! The Helm chart (`chart/`) against a real cluster: a server-side dry-run of every
//! rendered object (with the Prometheus Operator's published ServiceMonitor CRD), keelson
//! syncing its own rendered chart and pruning what a new render drops, and the chart's
//! ServiceAccount — with a token of its own — syncing and pruning a target and running a
//! pipeline gate with exactly the rights the chart grants, and being refused the rest
//! (SubjectAccessReviews).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/chart.rs"]
mod chart;
// Tekton's CRDs, and a driver playing Tekton's controller, for the pipeline gate run as
// the chart's ServiceAccount.
#[path = "support/tekton.rs"]
mod tekton;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chart::{FULL, MINIMAL, kind_name, template, template_text};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use keelson::config::{Gate, Project};
use keelson::gate::Verdict;
use keelson::sync::{self, Outcome, OutcomeResult, Overrides, Selection};
use keelson_e2e::ControlPlane;
use keelson_e2e::unique;
use keelson_pipelines::model::Pipeline;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{self, Scope};
use kube::{Client, core::GroupVersionKind};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// The Go module whose published CRDs define `ServiceMonitor` (the chart's optional one).
const PROMETHEUS_OPERATOR: &str = "github.com/prometheus-operator/prometheus-operator@v0.85.0";

async fn client() -> Client {
    ControlPlane::shared().clusters()[0].client().await.unwrap()
}

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

/// Installs the ServiceMonitor CRD published by the Prometheus Operator (pinned module),
/// once per test binary, and waits until it is Established.
async fn install_service_monitor_crd(client: &Client) {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            let out = Command::new("go")
                .args(["mod", "download", "-json", PROMETHEUS_OPERATOR])
                .current_dir(std::env::temp_dir())
                .output()
                .expect("go runs (the ServiceMonitor CRD comes from the Go module proxy)");
            let info: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "go mod download {PROMETHEUS_OPERATOR}: {e}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            let dir = info["Dir"]
                .as_str()
                .unwrap_or_else(|| panic!("go mod download {PROMETHEUS_OPERATOR}: {info}"));
            let file = Path::new(dir)
                .join("example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml");
            let crd: Value =
                keelson::yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let name = crd["metadata"]["name"].as_str().unwrap().to_string();
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            crds.patch(
                &name,
                &PatchParams::apply("keelson-e2e").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("installing {}: {e}", file.display()));
            let established = async {
                loop {
                    let crd = crds.get(&name).await.unwrap();
                    if crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    }) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(60), established)
                .await
                .unwrap_or_else(|_| panic!("CRD {name} not Established within 60 s"));
        })
        .await;
}

/// Server-side applies every object (field manager `keelson-chart-test`), for real or as a
/// dry-run; returns one line per refused object.
async fn apply_all(client: &Client, objects: &[Value], dry_run: bool) -> Vec<String> {
    let mut errors = Vec::new();
    for o in objects {
        let (group, version) = match o["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", o["apiVersion"].as_str().unwrap()),
        };
        let gvk = GroupVersionKind::gvk(group, version, o["kind"].as_str().unwrap());
        let (resource, caps) = match discovery::pinned_kind(client, &gvk).await {
            Ok(found) => found,
            Err(e) => {
                errors.push(format!("{}: not served: {e}", kind_name(o)));
                continue;
            }
        };
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                o["metadata"]["namespace"].as_str().unwrap_or("default"),
                &resource,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let mut params = PatchParams::apply("keelson-chart-test").force();
        params.dry_run = dry_run;
        if let Err(e) = api
            .patch(
                o["metadata"]["name"].as_str().unwrap(),
                &params,
                &Patch::Apply(o),
            )
            .await
        {
            errors.push(format!("{}: {e}", kind_name(o)));
        }
    }
    errors
}

#[tokio::test]
async fn every_rendered_object_passes_a_server_side_dry_run() {
    let client = client().await;
    install_service_monitor_crd(&client).await;
    create_namespace(&client, "keelson-system").await;
    create_namespace(&client, "keelson-ci").await;
    for set in [MINIMAL, FULL] {
        let ns = unique("chart-dry");
        create_namespace(&client, &ns).await;
        let objects = template(&unique("dry"), &ns, set);
        assert!(objects.len() >= 10, "{objects:?}");
        let errors = apply_all(&client, &objects, true).await;
        assert!(errors.is_empty(), "with {set:?}:\n{}", errors.join("\n"));
    }
}

fn ok<T: std::fmt::Debug>(o: &Outcome<T>) -> &T {
    match &o.result {
        OutcomeResult::Ok(v) => v,
        OutcomeResult::Error(e) => panic!("{} on {}: {e}", o.target, o.cluster),
    }
}

/// A GitOps repository on disk with one target `app` (directory `app/`) on one cluster.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new(target: &str, kubeconfig: &Path, context: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("keelson.yaml"),
            format!(
                "clusters:\n- name: one\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: {context}, path: {}}}\n\
                 targets:\n- name: {target}\n  path: app\n  clusterSelector: {{all: \"yes\"}}\n  sync: {{prune: true}}\n",
                kubeconfig.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        Repo { dir }
    }

    /// Writes the target's objects (a YAML stream) and its kustomization.
    fn objects(&self, yaml: &str) {
        let app = self.dir.path().join("app");
        std::fs::write(app.join("objects.yaml"), yaml).unwrap();
        std::fs::write(
            app.join("kustomization.yaml"),
            "resources:\n- objects.yaml\n",
        )
        .unwrap();
    }

    async fn sync(&self) -> Vec<Outcome<keelson::apply::Report>> {
        let project = Project::load(self.dir.path()).unwrap();
        sync::sync(
            self.dir.path(),
            &project,
            &Selection::default(),
            &Overrides::default(),
        )
        .await
        .unwrap()
    }

    async fn diff(&self) -> Vec<Outcome<keelson::plan::Plan>> {
        let project = Project::load(self.dir.path()).unwrap();
        sync::diff(self.dir.path(), &project, &Selection::default())
            .await
            .unwrap()
    }
}

fn namespace_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n---\n")
}

#[tokio::test]
async fn keelson_syncs_its_own_rendered_chart_and_prunes_what_a_new_render_drops() {
    let client = client().await;
    install_service_monitor_crd(&client).await;
    create_namespace(&client, "keelson-system").await;
    create_namespace(&client, "keelson-ci").await;
    let ns = unique("chart-self");
    let release = unique("self");
    let kubeconfig = ControlPlane::shared().kubeconfig();
    let repo = Repo::new(&release, kubeconfig, "e2e-1");
    let render = |set: &[&str]| {
        let text = template_text(&release, &ns, set).unwrap_or_else(|e| panic!("{e}"));
        format!("{}{text}", namespace_yaml(&ns))
    };

    repo.objects(&render(FULL));
    let expected = template(&release, &ns, FULL).len() + 1;
    for o in repo.sync().await {
        assert_eq!(ok(&o).applied.len(), expected, "{:#?}", ok(&o));
    }
    // Nothing the API server defaults shows as drift: the chart is stable under apply.
    for o in repo.diff().await {
        let plan = ok(&o);
        assert!(!plan.has_changes(), "second diff must be empty: {plan:#?}");
    }
    let tekton_role = format!("{release}-keelson-tekton");
    let roles: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "keelson-ci",
        &kube::api::ApiResource::erase::<k8s_openapi::api::rbac::v1::Role>(&()),
    );
    assert!(roles.get_opt(&tekton_role).await.unwrap().is_some());
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &ns);
    let name = format!("{release}-keelson");
    assert_eq!(deployments.get(&name).await.unwrap().spec.replicas, Some(3));

    // A new render without Tekton gates and with one replica: the Role, its binding and the
    // disruption budget (one replica needs none) go, the rest updates.
    let mut set = FULL.to_vec();
    set.retain(|s| !s.starts_with("rbac.tekton") && !s.starts_with("replicaCount"));
    repo.objects(&render(&set));
    for o in repo.sync().await {
        let report = ok(&o);
        assert_eq!(
            report.pruned.len(),
            3,
            "Role, RoleBinding and PodDisruptionBudget: {report:#?}"
        );
    }
    assert!(roles.get_opt(&tekton_role).await.unwrap().is_none());
    assert_eq!(deployments.get(&name).await.unwrap().spec.replicas, Some(1));
    cleanup(&client, &ns, &release).await;
}

/// A kubeconfig whose only context (`sa`) authenticates as the ServiceAccount with a
/// short-lived token (TokenRequest), against cluster e2e-1.
async fn service_account_kubeconfig(client: &Client, ns: &str, sa: &str, dir: &Path) -> PathBuf {
    let request: TokenRequest = serde_json::from_value(json!({
        "spec": {"audiences": [], "expirationSeconds": 3600}
    }))
    .unwrap();
    let token = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let admin = kube::config::Kubeconfig::read_from(ControlPlane::shared().kubeconfig()).unwrap();
    let context = admin
        .contexts
        .iter()
        .find(|c| c.name == "e2e-1")
        .and_then(|c| c.context.clone())
        .unwrap();
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .unwrap();
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e-1", "cluster": serde_json::to_value(cluster.cluster.clone().unwrap()).unwrap()}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "e2e-1", "user": "sa"}}],
        "current-context": "sa",
    });
    let path = dir.join("sa-kubeconfig");
    std::fs::write(&path, serde_json::to_string(&kubeconfig).unwrap()).unwrap();
    path
}

/// A client of a kubeconfig's context.
async fn client_of(kubeconfig: &Path, context: &str) -> Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// Asks the API server whether `user` may do this (SubjectAccessReview).
async fn allowed(
    client: &Client,
    user: &str,
    ns: Option<&str>,
    verb: &str,
    group: &str,
    resource: &str,
) -> bool {
    let sa_ns = user.split(':').nth(2).unwrap();
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{sa_ns}"), "system:authenticated"],
            "resourceAttributes": {"namespace": ns, "verb": verb, "group": group, "resource": resource},
        }
    }))
    .unwrap();
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed
}

#[tokio::test]
async fn the_charts_service_account_can_sync_and_prune_a_target_and_no_more() {
    let client = client().await;
    create_namespace(&client, "keelson-system").await;
    let ns = unique("chart-sa");
    let release = unique("sa");
    create_namespace(&client, &ns).await;
    let errors = apply_all(&client, &template(&release, &ns, MINIMAL), false).await;
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let sa = format!("{release}-keelson");

    // A target of the kinds the example deploys, synced as the ServiceAccount.
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = service_account_kubeconfig(&client, &ns, &sa, tmp.path()).await;
    let app = unique("chart-app");
    let repo = Repo::new(&unique("sa-target"), &kubeconfig, "sa");
    let objects = |with_config: bool| {
        let mut s = namespace_yaml(&app);
        s.push_str(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {app}}}\n\
             spec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n\
             \x20   spec: {{containers: [{{name: web, image: nginx:1.27}}]}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {app}}}\n\
             spec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}\n---\n\
             apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web, namespace: {app}}}\n\
             spec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  minReplicas: 1\n  maxReplicas: 3\n---\n\
             apiVersion: v1\nkind: LimitRange\nmetadata: {{name: limits, namespace: {app}}}\n\
             spec: {{limits: [{{type: Container, default: {{memory: 256Mi}}}}]}}\n---\n\
             apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: quota, namespace: {app}}}\n\
             spec: {{hard: {{pods: \"20\"}}}}\n"
        ));
        if with_config {
            s.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {app}}}\ndata: {{k: v}}\n"
            ));
        }
        s
    };
    repo.objects(&objects(true));
    for o in repo.sync().await {
        assert_eq!(ok(&o).applied.len(), 7, "{:#?}", ok(&o));
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &app);
    assert!(config_maps.get_opt("settings").await.unwrap().is_some());
    repo.objects(&objects(false));
    for o in repo.sync().await {
        assert_eq!(ok(&o).pruned.len(), 1, "{:#?}", ok(&o));
    }
    assert!(config_maps.get_opt("settings").await.unwrap().is_none());

    // And no more than that.
    let user = format!("system:serviceaccount:{ns}:{sa}");
    let places = [(".", ns.as_str()), ("APP", app.as_str())];
    check_access(
        &client,
        &user,
        &places,
        &[
            "yes update coordination.k8s.io/leases .",
            "yes patch /secrets keelson-system",
            "yes create events.k8s.io/events keelson-system",
            "no delete events.k8s.io/events keelson-system",
            "no get /secrets .",
            "no list /secrets -",
            "no get /secrets kube-system",
            "no update coordination.k8s.io/leases kube-system",
            "no create /pods APP",
            "no create rbac.authorization.k8s.io/clusterrolebindings -",
            "no create rbac.authorization.k8s.io/rolebindings APP",
            "no create apiextensions.k8s.io/customresourcedefinitions -",
            "no impersonate /users -",
            "no get /nodes -",
            "no create tekton.dev/pipelineruns keelson-ci",
        ],
    )
    .await;
    cleanup(&client, &ns, &release).await;
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&app, &Default::default())
        .await;
}

#[tokio::test]
async fn a_release_for_other_clusters_runs_pipeline_gates_with_its_tekton_role_alone() {
    let client = client().await;
    let ns = unique("chart-gate");
    let ci = unique("chart-ci");
    let release = unique("gate");
    create_namespace(&client, &ns).await;
    create_namespace(&client, &ci).await;
    // No in-cluster targets: nothing cluster-wide, so the Tekton Role is all there is.
    let values = [
        "clusters.inCluster=false".to_string(),
        "config.clusters[0].name=prod".to_string(),
        "config.clusters[0].kubeconfig.context=prod".to_string(),
        "rbac.tekton.enabled=true".to_string(),
        format!("rbac.tekton.namespaces[0]={ci}"),
    ];
    let set: Vec<&str> = MINIMAL
        .iter()
        .copied()
        .chain(values.iter().map(String::as_str))
        .collect();
    let errors = apply_all(&client, &template(&release, &ns, &set), false).await;
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let sa = format!("{release}-keelson");
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = service_account_kubeconfig(&client, &ns, &sa, tmp.path()).await;

    // A pipeline gate as keelson serve runs it, as this ServiceAccount, while the test plays
    // Tekton's controller: submit, follow (watch runs and TaskRuns, the delivery log).
    tekton::install_crds(&client).await;
    let pipeline: Pipeline = keelson::yaml::from_str(
        "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: chart-ci\nspec:\n  params:\n  - name: revision\n    type: string\n  tasks:\n  - name: test\n    params:\n    - name: revision\n      value: $(params.revision)\n    taskSpec:\n      params:\n      - name: revision\n        type: string\n      steps:\n      - name: test\n        image: busybox\n        script: echo testing $(params.revision)\n",
    )
    .unwrap();
    let gate: Gate = serde_json::from_value(json!({
        "pipeline": "chart-ci", "cluster": "one", "namespace": ci,
        "params": {"revision": "$(keelson.commit)"},
    }))
    .unwrap();
    let sa_client = client_of(&kubeconfig, "sa").await;
    let gate_run = tokio::spawn(async move {
        keelson::gate::run(
            sa_client,
            &pipeline,
            &gate,
            "example/deploy",
            "https://github.com/example/deploy.git",
            "chart-gated",
            "0123456789abcdef0123456789abcdef01234567",
        )
        .await
    });
    let driver = tekton::Driver {
        client: client.clone(),
        namespace: ci.clone(),
    };
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        driver.next_new_run(&mut Vec::new()),
    )
    .await
    .expect("the gate submits a PipelineRun within 60 s");
    let name = run.metadata.name.clone().unwrap();
    driver.start_run(&name).await;
    driver
        .finish_run(
            &name,
            "True",
            "Succeeded",
            "Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0",
        )
        .await;
    let verdict = tokio::time::timeout(Duration::from_secs(60), gate_run)
        .await
        .expect("the gate ends within 60 s of its run")
        .unwrap();
    assert_eq!(
        verdict.map_err(|e| e.to_string()),
        Ok(Verdict::Passed(name))
    );

    let user = format!("system:serviceaccount:{ns}:{sa}");
    let places = [(".", ns.as_str()), ("CI", ci.as_str())];
    check_access(
        &client,
        &user,
        &places,
        &[
            "yes create tekton.dev/pipelineruns CI",
            "yes patch tekton.dev/pipelineruns CI",
            "yes watch tekton.dev/taskruns CI",
            "yes create /configmaps CI",
            "no delete tekton.dev/pipelineruns CI",
            "no create tekton.dev/taskruns CI",
            "no create tekton.dev/pipelineruns .",
            "no create /configmaps .",
            "no get /secrets CI",
            "no create /pods CI",
            "no patch /secrets keelson-system",
            "no patch /namespaces -",
        ],
    )
    .await;
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&ci, &Default::default())
        .await;
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&ns, &Default::default())
        .await;
}

/// Checks a table of "yes|no VERB GROUP/RESOURCE NAMESPACE" lines for `user` with
/// SubjectAccessReviews; `-` is cluster-wide, and `places` maps placeholders to namespaces.
async fn check_access(client: &Client, user: &str, places: &[(&str, &str)], table: &[&str]) {
    for line in table {
        let f: Vec<&str> = line.split(' ').collect();
        let (group, resource) = f[2].split_once('/').unwrap();
        let namespace = match f[3] {
            "-" => None,
            other => Some(
                places
                    .iter()
                    .find(|(p, _)| *p == other)
                    .map_or(other, |(_, ns)| *ns),
            ),
        };
        assert_eq!(
            allowed(client, user, namespace, f[1], group, resource).await,
            f[0] == "yes",
            "{user}: {line}"
        );
    }
}

/// Removes what a test installed: its namespace, its cluster-wide RBAC and its Roles in
/// keelson-system (namespaces are only marked for deletion: no controller-manager runs).
async fn cleanup(client: &Client, ns: &str, release: &str) {
    let name = format!("{release}-keelson-manage");
    let dp = Default::default();
    let _ = Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(client.clone())
        .delete(&name, &dp)
        .await;
    let _ = Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
        .delete(&name, &dp)
        .await;
    let inventory = format!("{release}-keelson-inventory");
    let _ = Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(client.clone(), "keelson-system")
        .delete(&inventory, &dp)
        .await;
    let _ = Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(
        client.clone(),
        "keelson-system",
    )
    .delete(&inventory, &dp)
    .await;
    let _ = Api::<Namespace>::all(client.clone()).delete(ns, &dp).await;
}
