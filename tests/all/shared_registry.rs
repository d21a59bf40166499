//! The registry a fleet shares (`weir_aws::SharedRegistry`) against moto: the same
//! behaviour as the local registry — content-addressed components checked on read,
//! versions in upload order, deployments, an audit log numbered from 1.

use weir_aws::SharedRegistry;
use weir_config::{S3Location, SharedRegistrySettings};
use weir_e2e::aws_servers::{boto3, create_bucket, servers};
use weir_registry::{AuditEntry, Deployment, RegistryError, RegistryStore, VersionRecord};

/// A version record of an enricher; its size and WIT version are made up.
pub(crate) fn version(name: &str, version: &str, sha256: &str, at: &str) -> VersionRecord {
    VersionRecord {
        name: name.into(),
        version: version.into(),
        sha256: sha256.into(),
        world: "enricher".into(),
        wit_version: "1.0.0".into(),
        size: 3,
        imports: Vec::new(),
        description: String::new(),
        uploaded_by: "test".into(),
        uploaded_at: at.into(),
        fixtures: None,
        config: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_registry_stores_components_versions_deployments_and_the_audit_log() {
    let id = crate::s3_lake::unique("shared-registry");
    create_bucket(&id);
    let settings = SharedRegistrySettings {
        components: S3Location {
            bucket: id.clone(),
            prefix: "registry".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(servers().dynamodb.clone()),
            path_style: true,
        },
        table: id.clone(),
        region: Some("us-east-1".into()),
        dynamodb_endpoint: Some(servers().dynamodb.clone()),
    };
    let credentials = Some(("test".to_owned(), "test".to_owned()));
    let registry = SharedRegistry::open(&settings, credentials.clone()).await.unwrap();

    let sha = registry.put_component(b"abc".to_vec()).await.unwrap();
    assert_eq!(registry.put_component(b"abc".to_vec()).await.unwrap(), sha, "the same bytes, the same address");
    assert_eq!(registry.component(sha.clone()).await.unwrap(), b"abc");
    // Damaged in S3 behind the registry's back: refused on read, naming the address.
    boto3(
        "s3.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=b'abd')",
        &[&id, &format!("registry/components/{sha}.wasm")],
    );
    assert!(matches!(registry.component(sha.clone()).await, Err(RegistryError::Damaged { .. })));
    assert!(matches!(registry.component("00".repeat(32)).await, Err(RegistryError::MissingComponent { .. })));

    registry.put_version(version("enricher", "2", "bb", "2026-11-26T10:00:01Z")).await.unwrap();
    registry.put_version(version("enricher", "10", "aa", "2026-11-26T10:00:02Z")).await.unwrap();
    registry.put_version(version("parser", "1", "cc", "2026-11-26T09:00:00Z")).await.unwrap();
    let enricher: Vec<String> =
        registry.versions(Some("enricher".into())).await.unwrap().into_iter().map(|v| v.version).collect();
    assert_eq!(enricher, ["2", "10"], "upload order, not text order");
    assert_eq!(registry.versions(None).await.unwrap().len(), 3);
    assert_eq!(registry.version("parser".into(), "1".into()).await.unwrap().unwrap().sha256, "cc");
    registry.remove_version("parser".into(), "1".into()).await.unwrap();
    assert_eq!(registry.version("parser".into(), "1".into()).await.unwrap(), None);

    let deployment = Deployment {
        plugin: "enricher".into(),
        live: "10".into(),
        previous: vec!["2".into()],
        candidate: None,
        last_candidate: None,
    };
    registry.put_deployment(deployment.clone()).await.unwrap();
    // Another host opening the same registry sees it.
    let other = SharedRegistry::open(&settings, credentials).await.unwrap();
    assert_eq!(other.deployments().await.unwrap(), [deployment]);

    for (i, action) in ["upload", "activate", "rollback"].iter().enumerate() {
        let entry = AuditEntry {
            seq: 0,
            at: "2026-11-26T10:00:00Z".into(),
            actor: "admin".into(),
            action: (*action).into(),
            target: "enricher@10".into(),
            result: "ok".into(),
        };
        let stored = if i % 2 == 0 { registry.append_audit(entry).await } else { other.append_audit(entry).await };
        assert_eq!(stored.unwrap().seq, i as u64 + 1, "numbered from 1 across hosts");
    }
    let after_first: Vec<String> = registry.audit(1, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(after_first, ["activate", "rollback"]);
    assert_eq!(registry.audit(0, 1).await.unwrap().len(), 1);
}
