//! A second client, written with bollard: create, start, wait, logs, remove.

mod common;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder};
use common::Daemon;
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_create_start_wait_logs_remove() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    let docker = bollard::Docker::connect_with_unix(d.sock().to_str().unwrap(), 120, bollard::API_DEFAULT_VERSION)
        .unwrap()
        .negotiate_version()
        .await
        .expect("version negotiation");
    let body = ContainerCreateBody {
        image: Some("bb".into()),
        cmd: Some(vec!["sh".into(), "-c".into(), "echo from-bollard; echo oops >&2; exit 5".into()]),
        ..Default::default()
    };
    let created = docker.create_container(Some(CreateContainerOptionsBuilder::default().name("bl").build()), body).await.unwrap();
    assert_eq!(created.id.len(), 64);
    let mut wait = docker.wait_container("bl", Some(WaitContainerOptionsBuilder::default().condition("next-exit").build()));
    docker.start_container("bl", None).await.unwrap();
    let code = match wait.next().await.unwrap() {
        Ok(r) => r.status_code,
        // bollard reports a non-zero exit as an error carrying the code.
        Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
        Err(e) => panic!("wait failed: {e}"),
    };
    assert_eq!(code, 5);
    let mut logs = docker.logs("bl", Some(LogsOptionsBuilder::default().stdout(true).stderr(true).build()));
    let mut out = String::new();
    while let Some(item) = logs.next().await {
        out.push_str(&item.unwrap().to_string());
    }
    assert!(out.contains("from-bollard\n") && out.contains("oops\n"), "{out}");
    let inspect = docker.inspect_container("bl", None).await.unwrap();
    assert_eq!(inspect.state.unwrap().exit_code, Some(5));
    docker.remove_container("bl", Some(RemoveContainerOptionsBuilder::default().force(true).build())).await.unwrap();
    assert!(docker.inspect_container("bl", None).await.is_err());
}
