//! The Helm chart (`chart/`) as rendered by helm, built from source at a pinned version
//! (`e2e/tools/helm.sh`): `helm lint --strict`, the values schema, and the promises of the
//! rendered objects — an unprivileged pod with probes, a config that `keelson serve`'s own
//! `ServeConfig` accepts and whose every file is mounted, narrow RBAC. No cluster needed;
//! `chart_cluster.rs` takes the chart to a real one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/chart.rs"]
mod chart;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chart::{
    FULL, MINIMAL, chart, kind_name, kube_version, of_kind, one, run_helm, strings, template,
    template_text,
};
use keelson::serve::config::{ServeConfig, Settings};
use serde_json::{Value, json};

#[test]
fn helm_lint_is_clean_with_default_and_with_every_option() {
    let chart = chart().display().to_string();
    for set in [MINIMAL, FULL] {
        let out = run_helm(
            &[
                "lint",
                "--strict",
                &chart,
                "--kube-version",
                &kube_version(),
            ],
            set,
        )
        .unwrap_or_else(|e| panic!("helm lint --strict failed with {set:?}:\n{e}"));
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

#[test]
fn the_values_schema_refuses_typos_and_impossible_choices() {
    for (set, mentions) in [
        (&["replicas=2"][..], "replicas"),
        (
            &[
                "clusters.kubeconfigSecrets[0].name=k",
                "clusters.kubeconfigSecrets[0].access=file",
            ][..],
            "access",
        ),
        (&["image.digest=latest"][..], "digest"),
        (&["http.port=70000"][..], "port"),
        (
            &["rbac.manage.resources[0].apiGroups[0]=apps"][..],
            "resources",
        ),
    ] {
        let err = template_text("keelson", "keelson-system", &[MINIMAL, set].concat())
            .expect_err(&format!("{set:?} must be refused"));
        assert!(
            err.contains("schema") && err.contains(mentions),
            "{set:?}: {err}"
        );
    }
    // keelson serve refuses to start without a repository: so does the chart.
    let err = template_text("keelson", "keelson-system", &[]).unwrap_err();
    assert!(
        err.contains("config.repositories: name at least one repository"),
        "{err}"
    );
}

/// The ConfigMap's config.yaml, parsed and validated as `keelson serve` does.
fn serve_settings(objects: &[Value], name: &str) -> (Value, Settings) {
    let cm = one(objects, "ConfigMap", name);
    let text = cm["data"]["config.yaml"].as_str().unwrap();
    let config: ServeConfig = keelson::yaml::from_str(text)
        .unwrap_or_else(|e| panic!("keelson serve cannot read the chart's config: {e}\n{text}"));
    let settings = config
        .validate()
        .unwrap_or_else(|e| panic!("keelson serve refuses the chart's config: {e:?}\n{text}"));
    (keelson::yaml::from_str(text).unwrap(), settings)
}

#[test]
fn the_pod_runs_unprivileged_with_probes_and_its_config_names_only_mounted_files() {
    let objects = template("kc", "gitops", FULL);
    let deploy = one(&objects, "Deployment", "kc-keelson");
    assert_eq!(deploy["spec"]["replicas"], 3);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["serviceAccountName"], "kc-keelson");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        strings(&c["securityContext"]["capabilities"]["drop"]),
        ["ALL"]
    );
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        strings(&c["args"]),
        ["serve", "--config", "/etc/keelson/config/config.yaml"]
    );

    let ports: BTreeMap<&str, u64> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, BTreeMap::from([("http", 8080), ("metrics", 9090)]));
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path);
        assert_eq!(c[probe]["httpGet"]["port"], "http");
    }

    // Mount path → the volume behind it.
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mounts: Vec<(&str, &Value, bool)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap(),
                volumes[m["name"].as_str().unwrap()],
                m["readOnly"] == true,
            )
        })
        .collect();
    let volume_of = |file: &str| -> (&Value, bool) {
        let (_, v, ro) = mounts
            .iter()
            .filter(|(dir, _, _)| file.starts_with(&format!("{dir}/")) || file == *dir)
            .max_by_key(|(dir, _, _)| dir.len())
            .unwrap_or_else(|| panic!("{file} is under no volume mount"));
        (*v, *ro)
    };
    let secret_file = |file: &str, secret: &str, key: &str| {
        let (v, ro) = volume_of(file);
        assert!(ro, "{file} must be mounted read-only");
        assert_eq!(v["secret"]["secretName"], secret, "{file}");
        assert!(file.ends_with(&format!("/{key}")), "{file}");
    };

    let (config, settings) = serve_settings(&objects, "kc-keelson");
    // Three replicas: they split the clusters with Leases in the release namespace.
    let leases = settings
        .leases
        .as_ref()
        .expect("leases with more than one replica");
    assert!(leases.in_cluster);
    assert_eq!(leases.namespace, "gitops");
    let pdb = one(&objects, "PodDisruptionBudget", "kc-keelson");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deploy["spec"]["selector"]["matchLabels"]
    );
    let (config_volume, ro) = volume_of("/etc/keelson/config/config.yaml");
    assert!(ro);
    assert_eq!(config_volume["configMap"]["name"], "kc-keelson");
    let path = |p: &Option<PathBuf>| p.as_ref().unwrap().display().to_string();
    secret_file(
        &path(&settings.webhook_secret_file),
        "keelson-webhook",
        "secret",
    );
    secret_file(
        &settings
            .github
            .as_ref()
            .unwrap()
            .token_file
            .display()
            .to_string(),
        "keelson-github",
        "token",
    );
    secret_file(
        &path(&settings.kubeconfig),
        "keelson-kubeconfig",
        "kubeconfig",
    );
    assert_eq!(settings.listen.port() as u64, ports["http"]);
    assert_eq!(
        settings.metrics_listen.unwrap().port() as u64,
        ports["metrics"]
    );
    assert!(settings.listen.ip().is_unspecified());
    assert_eq!(
        config["repositories"][0]["url"],
        "https://github.com/example/deploy.git"
    );
    assert_eq!(config["repositories"][0]["ref"], "main");
    // The state directory (git mirrors, render cache) is the one writable place besides /tmp.
    let state = path(&settings.state_dir);
    let (state_volume, ro) = volume_of(&state);
    assert!(!ro && state_volume["emptyDir"].is_object());
    let writable: Vec<&str> = mounts.iter().filter(|m| !m.2).map(|m| m.0).collect();
    assert_eq!(writable, [state.as_str(), "/tmp"]);
    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // Credentials are mounted, kubeconfigs only where asked (`access: mount`).
    volume_of("/etc/keelson/git/deploy-git/token");
    assert_eq!(
        volume_of("/etc/keelson/kubeconfigs/edge-kubeconfig/kubeconfig").0["secret"]["secretName"],
        "edge-kubeconfig"
    );
    assert!(
        !mounts.iter().any(|(d, _, _)| d.contains("prod-kubeconfig")),
        "an `access: api` kubeconfig is read through the API, not mounted"
    );

    // The Service reaches both ports by name; the ServiceMonitor scrapes this Service.
    let svc = one(&objects, "Service", "kc-keelson");
    for p in svc["spec"]["ports"].as_array().unwrap() {
        assert!(ports.contains_key(p["targetPort"].as_str().unwrap()), "{p}");
    }
    let selector = &svc["spec"]["selector"];
    for (k, v) in selector.as_object().unwrap() {
        assert_eq!(&deploy["spec"]["template"]["metadata"]["labels"][k], v);
    }
    let sm = one(&objects, "ServiceMonitor", "kc-keelson");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&svc["metadata"]["labels"][k], v);
    }
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");

    // A changed config restarts the pods.
    let checksum = |objects: &[Value]| {
        one(objects, "Deployment", "kc-keelson")["spec"]["template"]["metadata"]["annotations"]
            ["checksum/config"]
            .clone()
    };
    let mut other = FULL.to_vec();
    other.push("config.repositories[0].ref=release");
    assert_ne!(
        checksum(&objects),
        checksum(&template("kc", "gitops", &other))
    );
    assert_eq!(
        checksum(&objects),
        checksum(&template("kc", "gitops", FULL))
    );

    // Without the Secrets: no webhook receiver, no statuses, no kubeconfig, nothing mounted
    // for them; health, status API and metrics are served all the same.
    let objects = template("kc", "gitops", MINIMAL);
    let (_, settings) = serve_settings(&objects, "kc-keelson");
    assert!(settings.webhook_secret_file.is_none());
    assert!(settings.github.is_none() && settings.kubeconfig.is_none());
    assert!(settings.leases.is_none(), "one replica owns every cluster");
    assert!(
        of_kind(&objects, "PodDisruptionBudget").next().is_none(),
        "no budget for a single replica"
    );
    let deploy = one(&objects, "Deployment", "kc-keelson");
    let names: Vec<&str> = deploy["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["config", "state", "tmp", "fingerprint-key"]);
    // The fingerprint key: a Secret of the chart's own, random, mounted, in the config.
    let key = one(&objects, "Secret", "kc-keelson-fingerprint");
    assert!(key["data"]["key"].as_str().is_some_and(|k| k.len() >= 64));
    assert_eq!(
        settings.fingerprint_key_file.as_deref(),
        Some(std::path::Path::new("/etc/keelson/fingerprint/key"))
    );
    let svc = one(&objects, "Service", "kc-keelson");
    assert_eq!(svc["spec"]["ports"].as_array().unwrap().len(), 2);
}

#[test]
fn rbac_grants_each_need_narrowly_and_nothing_broad() {
    let objects = template("kr", "gitops", FULL);
    let sa = "kr-keelson";
    // No wildcard and no privilege-granting verb anywhere.
    for role in of_kind(&objects, "Role").chain(of_kind(&objects, "ClusterRole")) {
        for rule in role["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs"] {
                assert!(
                    !strings(&rule[field]).contains(&"*"),
                    "{}: {rule}",
                    kind_name(role)
                );
            }
            for verb in ["escalate", "bind", "impersonate", "deletecollection"] {
                assert!(
                    !strings(&rule["verbs"]).contains(&verb),
                    "{}: {rule}",
                    kind_name(role)
                );
            }
            for resource in [
                "pods/exec",
                "nodes",
                "clusterroles",
                "roles",
                "rolebindings",
            ] {
                assert!(
                    !strings(&rule["resources"]).contains(&resource),
                    "{}: {rule}",
                    kind_name(role)
                );
            }
        }
    }
    // Secrets: the inventory namespace's (ApplySet parents), and one kubeconfig by name.
    let mut secret_grants = Vec::new();
    for role in of_kind(&objects, "Role").chain(of_kind(&objects, "ClusterRole")) {
        for rule in role["rules"].as_array().unwrap() {
            if strings(&rule["resources"]).contains(&"secrets") {
                secret_grants.push((
                    role["kind"].as_str().unwrap(),
                    role["metadata"]["namespace"].as_str().unwrap_or(""),
                    strings(&rule["resourceNames"]),
                    strings(&rule["verbs"]),
                ));
            }
        }
    }
    secret_grants.sort();
    assert_eq!(
        secret_grants,
        [
            ("Role", "gitops", vec!["prod-kubeconfig"], vec!["get"]),
            (
                "Role",
                "keelson-system",
                vec![],
                vec!["get", "list", "create", "patch", "delete"]
            ),
        ]
    );
    // The cluster-wide role touches namespaces only for keelson-system beyond the managed kinds.
    let manage = one(&objects, "ClusterRole", "kr-keelson-manage");
    let ns_rule = manage["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| !strings(&r["resourceNames"]).is_empty())
        .unwrap();
    assert_eq!(strings(&ns_rule["resourceNames"]), ["keelson-system"]);
    assert_eq!(strings(&ns_rule["verbs"]), ["get", "patch"]);
    // Leases in the release namespace only; Tekton runs where asked.
    let leases = one(&objects, "Role", "kr-keelson-leases");
    assert_eq!(leases["metadata"]["namespace"], "gitops");
    assert_eq!(strings(&leases["rules"][0]["resources"]), ["leases"]);
    let tekton = one(&objects, "Role", "kr-keelson-tekton");
    assert_eq!(tekton["metadata"]["namespace"], "keelson-ci");
    assert_eq!(strings(&tekton["rules"][0]["resources"]), ["pipelineruns"]);
    // Every Role is bound, to this ServiceAccount only.
    for role in of_kind(&objects, "Role").chain(of_kind(&objects, "ClusterRole")) {
        let binding_kind = if role["kind"] == "Role" {
            "RoleBinding"
        } else {
            "ClusterRoleBinding"
        };
        let binding = of_kind(&objects, binding_kind)
            .find(|b| {
                b["roleRef"]["name"] == role["metadata"]["name"]
                    && b["metadata"]["namespace"] == role["metadata"]["namespace"]
            })
            .unwrap_or_else(|| panic!("{} is not bound", kind_name(role)));
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": sa, "namespace": "gitops"}])
        );
    }
    // Managing only other clusters: nothing cluster-wide, no inventory access here.
    let objects = template(
        "kr",
        "gitops",
        &[
            MINIMAL,
            &[
                "clusters.inCluster=false",
                "config.clusters[0].name=prod",
                "config.clusters[0].kubeconfig.context=prod",
            ],
        ]
        .concat(),
    );
    assert_eq!(of_kind(&objects, "ClusterRole").count(), 0);
    assert!(of_kind(&objects, "Role").all(|r| r["metadata"]["namespace"] == "gitops"));
    // rbac.create=false: no RBAC object at all.
    let objects = template("kr", "gitops", &[MINIMAL, &["rbac.create=false"]].concat());
    assert!(objects.iter().all(|o| {
        o["apiVersion"]
            .as_str()
            .is_some_and(|v| !v.starts_with("rbac.authorization.k8s.io"))
    }));
}

#[test]
fn keelson_may_impersonate_exactly_the_service_accounts_its_repositories_act_as() {
    let objects = template(
        "ki",
        "gitops",
        &[
            MINIMAL,
            &[
                "config.defaultServiceAccount=tenants/default",
                "config.repositories[0].serviceAccount=shop/deployer",
            ],
        ]
        .concat(),
    );
    let (_, settings) = serve_settings(&objects, "ki-keelson");
    assert_eq!(
        settings.grant(0).impersonate,
        Some("system:serviceaccount:shop:deployer")
    );
    let mut granted: Vec<(String, String)> = of_kind(&objects, "Role")
        .filter(|r| r["rules"][0]["verbs"][0] == "impersonate")
        .map(|r| {
            assert_eq!(r["rules"].as_array().unwrap().len(), 1);
            assert_eq!(strings(&r["rules"][0]["resources"]), ["serviceaccounts"]);
            (
                r["metadata"]["namespace"].as_str().unwrap().to_string(),
                strings(&r["rules"][0]["resourceNames"]).join(","),
            )
        })
        .collect();
    granted.sort();
    assert_eq!(
        granted,
        [
            ("shop".to_string(), "deployer".to_string()),
            ("tenants".to_string(), "default".to_string())
        ]
    );
    assert!(
        of_kind(&objects, "RoleBinding")
            .filter(|b| b["roleRef"]["name"]
                .as_str()
                .unwrap()
                .contains("impersonate"))
            .all(|b| b["subjects"][0]["name"] == "ki-keelson")
    );
}
