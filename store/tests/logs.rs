//! Integration tests of the json-file log writer and reader.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use berth_store::logfile::{LogEntry, LogIter, LogReader, LogStream, LogWriter, ReadOptions, Tail, PARTIAL_MAX};
use berth_test_support::clock_after;

fn log_path(d: &tempfile::TempDir) -> PathBuf {
    d.path().join("c-json.log")
}

async fn read_all(path: &PathBuf, opts: ReadOptions) -> Vec<LogEntry> {
    let mut r = LogReader::open(path, opts).await.unwrap();
    let mut v = Vec::new();
    while let Some(e) = r.next().await {
        v.push(e.unwrap());
    }
    v
}

fn text(entries: &[LogEntry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8(e.line.clone()).unwrap()).collect()
}

fn concat(entries: &[LogEntry], stream: LogStream) -> Vec<u8> {
    entries.iter().filter(|e| e.stream == stream).flat_map(|e| e.line.iter().copied()).collect()
}

#[tokio::test]
async fn round_trip_two_streams_and_partial_lines() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open(&p).unwrap();
    w.write(LogStream::Stdout, b"out one\nout tw").unwrap();
    w.write(LogStream::Stderr, b"err one\n").unwrap();
    w.write(LogStream::Stdout, b"o\n").unwrap();
    w.write(LogStream::Stderr, "ünïcödé \"quoted\" \t\\ \u{1}\n".as_bytes()).unwrap();
    w.write(LogStream::Stdout, b"prompt> ").unwrap();
    w.flush_partial().unwrap();
    w.write(LogStream::Stdout, b"answer\nlast without newline").unwrap();
    w.close().unwrap();

    let all = read_all(&p, ReadOptions::default()).await;
    assert_eq!(
        text(&all),
        ["out one\n", "err one\n", "out two\n", "ünïcödé \"quoted\" \t\\ \u{1}\n", "prompt> ", "answer\n", "last without newline"]
    );
    assert!(all[4].is_partial() && all[6].is_partial() && !all[5].is_partial());
    assert_eq!(all[1].stream, LogStream::Stderr);
    assert_eq!(concat(&all, LogStream::Stdout), b"out one\nout two\nprompt> answer\nlast without newline");
    // Times are non-decreasing and formatted like `docker logs -t`.
    assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
    let ts = all[0].timestamp();
    assert_eq!(ts.len(), 30, "{ts}");
    assert!(ts.ends_with('Z'));

    // The file itself is Docker's format.
    let raw = std::fs::read_to_string(&p).unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "out one\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));

    // Stream selection.
    let err_only = read_all(&p, ReadOptions { stdout: false, ..Default::default() }).await;
    assert_eq!(err_only.len(), 2);
    // The blocking iterator sees the same.
    let sync: Vec<_> = LogIter::open(&p, ReadOptions::default()).unwrap().map(Result::unwrap).collect();
    assert_eq!(sync, all);
}

#[tokio::test]
async fn tail_since_until() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open(&p).unwrap();
    // t1 and t2 lie strictly between the writes' times.
    w.write(LogStream::Stdout, b"a1\na2\n").unwrap();
    let t1 = clock_after(SystemTime::now());
    clock_after(t1);
    w.write(LogStream::Stderr, b"b1\nb2\n").unwrap();
    let t2 = clock_after(SystemTime::now());
    clock_after(t2);
    w.write(LogStream::Stdout, b"c1\nc2\n").unwrap();

    let tail = |n| ReadOptions { tail: Tail::Last(n), ..Default::default() };
    assert_eq!(text(&read_all(&p, tail(1)).await), ["c2\n"]);
    assert_eq!(text(&read_all(&p, tail(3)).await), ["b2\n", "c1\n", "c2\n"]);
    assert_eq!(read_all(&p, tail(0)).await.len(), 0);
    assert_eq!(read_all(&p, tail(100)).await.len(), 6);
    let since = ReadOptions { since: Some(t1), ..Default::default() };
    assert_eq!(text(&read_all(&p, since).await), ["b1\n", "b2\n", "c1\n", "c2\n"]);
    let until = ReadOptions { until: Some(t2), ..Default::default() };
    assert_eq!(text(&read_all(&p, until).await), ["a1\n", "a2\n", "b1\n", "b2\n"]);
    let both = ReadOptions { since: Some(t1), until: Some(t2), ..Default::default() };
    assert_eq!(text(&read_all(&p, both).await), ["b1\n", "b2\n"]);
    // Tail counts lines before the since filter, as in Docker.
    let tail_since = ReadOptions { tail: Tail::Last(3), since: Some(t2), ..Default::default() };
    assert_eq!(text(&read_all(&p, tail_since).await), ["c1\n", "c2\n"]);
    let tail_err = ReadOptions { tail: Tail::Last(3), stdout: false, ..Default::default() };
    assert_eq!(text(&read_all(&p, tail_err).await), ["b2\n"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_with_writer_notification_until_close() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = Arc::new(LogWriter::open(&p).unwrap());
    w.write(LogStream::Stdout, b"old1\nold2\n").unwrap();

    let reader = LogReader::open(&p, ReadOptions { tail: Tail::Last(1), ..Default::default() })
        .await
        .unwrap()
        .follow(Some(w.subscribe()), std::future::pending());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(async move {
        let mut reader = reader;
        while let Some(e) = reader.next().await {
            tx.send(e.unwrap()).unwrap();
        }
    });
    let first = rx.recv().await.unwrap();
    assert_eq!(first.line, b"old2\n");
    for i in 0..20 {
        let started = Instant::now();
        w.write(LogStream::Stdout, format!("live{i}\n").as_bytes()).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(got.line, format!("live{i}\n").into_bytes());
        // Notified, not waiting for the 1 s safety poll.
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    }
    w.write(LogStream::Stderr, b"partial at stop").unwrap();
    w.close().unwrap();
    tokio::time::timeout(Duration::from_secs(5), follower).await.expect("follow ends when the writer closes").unwrap();
    let last = rx.recv().await.unwrap();
    assert_eq!(last.line, b"partial at stop");
    assert!(last.is_partial());
    assert!(rx.recv().await.is_none());
}

/// Polls `f` once: whether it is still pending.
async fn is_pending<F: std::future::Future>(mut f: std::pin::Pin<&mut F>) -> bool {
    std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx).is_pending())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_by_polling_until_stop_signal() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open(&p).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut reader = LogReader::open(&p, ReadOptions::default()).await.unwrap().follow(None, async move {
        let _ = stop_rx.await;
    });
    w.write(LogStream::Stdout, b"x1\n").unwrap();
    assert_eq!(reader.next().await.unwrap().unwrap().line, b"x1\n");
    // Each write comes while the reader waits at the end of the file (its
    // next entry polled to Pending), so polling has to find it.
    let mut next = Box::pin(reader.next());
    assert!(is_pending(next.as_mut()).await, "nothing to read yet");
    w.write(LogStream::Stdout, b"x2\n").unwrap();
    let x2 = tokio::time::timeout(Duration::from_secs(5), next).await.unwrap().unwrap().unwrap();
    assert_eq!(x2.line, b"x2\n");
    let mut next = Box::pin(reader.next());
    assert!(is_pending(next.as_mut()).await, "nothing to read yet");
    // x3 was written before the stop signal: it is still delivered.
    w.write(LogStream::Stdout, b"x3\n").unwrap();
    stop_tx.send(()).unwrap();
    let x3 = tokio::time::timeout(Duration::from_secs(5), next).await.unwrap().unwrap().unwrap();
    assert_eq!(x3.line, b"x3\n");
    assert!(tokio::time::timeout(Duration::from_secs(5), reader.next()).await.unwrap().is_none());
}

#[tokio::test]
async fn follow_ends_at_until() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open(&p).unwrap();
    w.write(LogStream::Stdout, b"before\n").unwrap();
    let until = SystemTime::now() + Duration::from_millis(300);
    let mut reader = LogReader::open(&p, ReadOptions { until: Some(until), ..Default::default() })
        .await
        .unwrap()
        .follow(Some(w.subscribe()), std::future::pending());
    assert_eq!(reader.next().await.unwrap().unwrap().line, b"before\n");
    let started = Instant::now();
    assert!(tokio::time::timeout(Duration::from_secs(5), reader.next()).await.unwrap().is_none());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn one_mib_write_round_trips_intact() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open(&p).unwrap();
    // 1 MiB line of mixed ASCII and multi-byte UTF-8 plus a newline, then
    // 1 MiB without any newline, each in a single write.
    let mut line = String::with_capacity(1 << 20);
    let mut i = 0u32;
    while line.len() < (1 << 20) {
        line.push_str(match i % 5 {
            0 => "é",
            1 => "€",
            2 => "😀",
            3 => "\"\\",
            _ => "abcdefg",
        });
        i += 1;
    }
    line.push('\n');
    w.write(LogStream::Stdout, line.as_bytes()).unwrap();
    let blob: Vec<u8> = (0..(1u32 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    w.write(LogStream::Stderr, &blob).unwrap();
    w.close().unwrap();

    let all = read_all(&p, ReadOptions::default()).await;
    assert_eq!(concat(&all, LogStream::Stdout), line.as_bytes());
    assert_eq!(concat(&all, LogStream::Stderr), blob);
    assert!(all.iter().all(|e| e.line.len() <= PARTIAL_MAX));
    assert!(all.iter().all(|e| std::str::from_utf8(&e.line).is_ok()), "no UTF-8 sequence was split");
    let out: Vec<_> = all.iter().filter(|e| e.stream == LogStream::Stdout).collect();
    assert!(out[..out.len() - 1].iter().all(|e| e.is_partial()));
    assert!(!out.last().unwrap().is_partial());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_is_not_pathological() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open(&p).unwrap();
    let mut chunk = Vec::with_capacity(64 * 1024);
    while chunk.len() < 64 * 1024 - 100 {
        chunk.extend_from_slice(b"the quick brown fox jumps over the lazy dog 0123456789 0123456789 0123456789 0123456789\n");
    }
    let lines_per_chunk = chunk.iter().filter(|&&b| b == b'\n').count();
    let total: usize = 16 << 20;
    let chunks = total / chunk.len();
    let started = Instant::now();
    for _ in 0..chunks {
        w.write(LogStream::Stdout, &chunk).unwrap();
    }
    w.close().unwrap();
    let write_time = started.elapsed();
    let started = Instant::now();
    let mut r = LogReader::open(&p, ReadOptions::default()).await.unwrap();
    let (mut n, mut bytes) = (0usize, 0usize);
    while let Some(e) = r.next().await {
        bytes += e.unwrap().line.len();
        n += 1;
    }
    let read_time = started.elapsed();
    assert_eq!(n, chunks * lines_per_chunk);
    assert_eq!(bytes, chunks * chunk.len());
    let mib = bytes as f64 / (1 << 20) as f64;
    println!(
        "{mib:.0} MiB: write {:.0} MiB/s, read {:.0} MiB/s",
        mib / write_time.as_secs_f64(),
        mib / read_time.as_secs_f64()
    );
    // Generous bound (debug build, shared machine): 1 GiB would take
    // minutes at worst, not hours.
    assert!(write_time < Duration::from_secs(60) && read_time < Duration::from_secs(60));
}
