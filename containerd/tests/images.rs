//! Image import, list, get, tag, delete.

mod common;

use std::collections::HashMap;

use berth_containerd::{ConfigSource, Error, ImageConfig, ImportRequest};
use common::{busybox_rootfs_tar, TestEnv};

#[tokio::test]
async fn import_list_get_delete() {
    let env = TestEnv::start().await;
    let imported = env.import_busybox("example.local/busybox:latest").await;
    assert_eq!(imported.diff_ids.len(), 1);
    assert_eq!(imported.chain_id.as_deref(), Some(imported.diff_ids[0].as_str()));

    let list = env.images.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "example.local/busybox:latest");
    assert_eq!(list[0].target.digest, imported.manifest_digest);

    let info = env.images.get("example.local/busybox:latest").await.unwrap();
    assert_eq!(info.config_digest, imported.config_digest);
    assert_eq!(info.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(info.config.env, Some(vec!["PATH=/bin".to_string()]));
    assert_eq!(info.config.os, "linux");
    assert_eq!(info.chain_id, imported.chain_id);
    assert!(info.size > 1_000_000, "busybox is big: {}", info.size);
    assert!(info.record.created_at.is_some());
    assert_eq!(env.images.chain_id("example.local/busybox:latest").await.unwrap(), imported.chain_id);

    let (digest, raw) = env.images.read_config("example.local/busybox:latest").await.unwrap();
    assert_eq!(digest, imported.config_digest);
    assert!(String::from_utf8(raw).unwrap().contains("\"Cmd\":[\"sh\"]"));

    // Re-import (idempotent) and a second tag.
    let again = env.import_busybox("example.local/busybox:latest").await;
    assert_eq!(again.manifest_digest, imported.manifest_digest);
    env.images.tag("example.local/busybox:latest", "example.local/bb:2").await.unwrap();
    assert_eq!(env.images.list().await.unwrap().len(), 2);

    env.images.delete("example.local/busybox:latest").await.unwrap();
    env.images.delete("example.local/bb:2").await.unwrap();
    assert!(env.images.list().await.unwrap().is_empty());
    let err = env.images.get("example.local/busybox:latest").await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let err = env.images.delete("example.local/busybox:latest").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    env.shutdown().await;
}

#[tokio::test]
async fn import_gzip_multi_layer_raw_config_several_tags() {
    use std::io::Write;
    let env = TestEnv::start().await;
    let base = busybox_rootfs_tar(env.dir.path());
    // Layer 1: busybox, gzipped.
    let gz = env.path("l1.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&base).unwrap()).unwrap();
    enc.finish().unwrap();
    // Layer 2: one file, plain tar.
    let l2 = env.path("l2.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&l2).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/motd", &b"hello\n"[..]).unwrap();
        b.into_inner().unwrap();
    }
    let d1 = berth_containerd::layers::inspect_layer(&gz).unwrap();
    let d2 = berth_containerd::layers::inspect_layer(&l2).unwrap();
    let raw = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["cat","/etc/motd"],"Env":["PATH=/bin"]}},"rootfs":{{"type":"layers","diff_ids":["{}","{}"]}},"docker_version":"x"}}"#,
        d1.diff_id, d2.diff_id
    );
    let imported = env
        .images
        .import(ImportRequest {
            names: vec!["example.local/two:1".into(), "example.local/two:latest".into()],
            layers: vec![gz.clone(), l2.clone()],
            config: ConfigSource::Raw(raw.clone().into_bytes()),
            labels: HashMap::new(),
        })
        .await
        .unwrap();
    assert_eq!(imported.names.len(), 2);
    assert_eq!(imported.config_digest, format!("sha256:{}", sha256_hex(raw.as_bytes())));
    let chains = berth_containerd::layers::chain_ids(&imported.diff_ids);
    assert_eq!(imported.chain_id.as_ref(), chains.last());

    // The two layers really stack: cat /etc/motd from layer 2 using layer 1's busybox.
    let (status, out, _) = env.run("two", &imported, &["cat", "/etc/motd"], env.runtime()).await;
    assert_eq!(status.code, 0);
    assert_eq!(out, "hello\n");

    // A raw config whose diff_ids do not match is refused.
    let err = env
        .images
        .import(ImportRequest {
            names: vec!["example.local/bad:1".into()],
            layers: vec![l2],
            config: ConfigSource::Raw(raw.into_bytes()),
            labels: HashMap::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidData(_)), "{err:?}");

    // docker-import style: one layer + built config.
    let single = env
        .images
        .import(ImportRequest {
            names: vec!["example.local/imported:1".into()],
            layers: vec![gz],
            config: ConfigSource::Build(ImageConfig { cmd: Some(vec!["true".into()]), ..Default::default() }),
            labels: HashMap::new(),
        })
        .await
        .unwrap();
    assert_eq!(single.chain_id, Some(d1.diff_id.clone()));
    env.shutdown().await;
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
