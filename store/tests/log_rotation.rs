//! Rotation of json-file logs: boundaries, the disk bound, gzip, tail and
//! since across files, following across rotations.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_store::logfile::{LogEntry, LogIter, LogReader, LogStream, LogWriter, ReadOptions, Rotation, Tail};
use berth_test_support::clock_after;

fn log_path(d: &tempfile::TempDir) -> PathBuf {
    d.path().join("c-json.log")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

fn read_sync(p: &Path, opts: ReadOptions) -> Vec<String> {
    LogIter::open(p, opts).unwrap().map(|e| String::from_utf8(e.unwrap().line).unwrap()).collect()
}

fn numbered(i: usize) -> String {
    format!("line {i:06}\n")
}

/// Writes lines `from..to`, one burst each.
fn write_lines(w: &LogWriter, from: usize, to: usize) {
    for i in from..to {
        w.write(LogStream::Stdout, numbered(i).as_bytes()).unwrap();
    }
}

/// The lines read are consecutive and end with the last one written.
fn assert_contiguous_suffix(lines: &[String], last: usize) {
    assert!(!lines.is_empty());
    let first: usize = lines[0]["line ".len().."line ".len() + 6].parse().unwrap();
    let want: Vec<String> = (first..=last).map(numbered).collect();
    assert_eq!(lines, want.as_slice());
}

#[test]
fn rotates_at_max_size_and_keeps_max_file_files() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    // One entry is 73 bytes: {"log":"line 000000\n","stream":"stdout","time":"…Z"}\n
    let rot = Rotation { max_size: Some(1000), max_files: 3, compress: false };
    let w = LogWriter::open_with(&p, rot).unwrap();
    write_lines(&w, 0, 100);
    assert_eq!(names(d.path()), ["c-json.log", "c-json.log.1", "c-json.log.2"]);
    for f in ["c-json.log.1", "c-json.log.2"] {
        let len = std::fs::metadata(d.path().join(f)).unwrap().len();
        // Rotation happens before the entry that would start past max-size.
        assert!((1000..1000 + 80).contains(&len), "{f}: {len}");
    }
    let all = read_sync(&p, ReadOptions::default());
    assert_contiguous_suffix(&all, 99);
    assert!(all.len() > 2 * 13 && all.len() < 3 * 15, "{}", all.len());
    // Entries 13, 26, … 91 each started a new file.
    assert_eq!(w.subscribe().progress().rotations, 7);
}

#[test]
fn one_burst_larger_than_max_size_is_split_between_files() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open_with(&p, Rotation { max_size: Some(1000), max_files: 50, compress: false }).unwrap();
    let burst: String = (0..200).map(numbered).collect();
    w.write(LogStream::Stdout, burst.as_bytes()).unwrap();
    let sizes: Vec<u64> = names(d.path()).iter().map(|n| std::fs::metadata(d.path().join(n)).unwrap().len()).collect();
    assert!(sizes.len() > 10, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s < 1000 + 80), "{sizes:?}");
    assert_eq!(read_sync(&p, ReadOptions::default()), (0..200).map(numbered).collect::<Vec<_>>());
}

#[test]
fn max_file_one_replaces_the_live_file() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open_with(&p, Rotation { max_size: Some(1000), max_files: 1, compress: false }).unwrap();
    write_lines(&w, 0, 100);
    assert_eq!(names(d.path()), ["c-json.log"]);
    let lines = read_sync(&p, ReadOptions::default());
    assert!(lines.len() <= 14);
    assert_contiguous_suffix(&lines, 99);
}

#[test]
fn disk_use_stays_bounded_under_a_flood() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open_with(&p, Rotation { max_size: Some(1_000_000), max_files: 2, compress: false }).unwrap();
    // What `yes` gives a copier: 32 KiB reads of "y\n" (≈ 1 MB of JSON each).
    let chunk = "y\n".repeat(16 * 1024);
    for _ in 0..8 {
        w.write(LogStream::Stdout, chunk.as_bytes()).unwrap();
    }
    let total: u64 = names(d.path()).iter().map(|n| std::fs::metadata(d.path().join(n)).unwrap().len()).sum();
    assert!(total <= 2 * (1_000_000 + 100), "{total}");
    assert_eq!(names(d.path()), ["c-json.log", "c-json.log.1"]);
}

#[test]
fn compressed_files_are_gzip_with_dockers_header_and_read_back() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open_with(&p, Rotation { max_size: Some(1000), max_files: 4, compress: true }).unwrap();
    write_lines(&w, 0, 100);
    w.wait_for_compression();
    assert_eq!(names(d.path()), ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz", "c-json.log.3.gz"]);
    // Plain gzip, readable by any tool; the header carries the last time.
    let f = std::fs::File::open(d.path().join("c-json.log.1.gz")).unwrap();
    let mut dec = flate2::read::GzDecoder::new(f);
    let mut text = String::new();
    dec.read_to_string(&mut text).unwrap();
    assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["stream"] == "stdout"));
    let extra: serde_json::Value = serde_json::from_slice(dec.header().unwrap().extra().unwrap()).unwrap();
    assert!(extra["lastTime"].as_str().unwrap().ends_with('Z'), "{extra}");

    let all = read_sync(&p, ReadOptions::default());
    assert_contiguous_suffix(&all, 99);
    assert!(all.len() > 3 * 13);
    // Tail reaching into gzipped files.
    for n in [1, 5, 14, 20, 30, 40] {
        let t = read_sync(&p, ReadOptions { tail: Tail::Last(n), ..Default::default() });
        assert_eq!(t.len(), n.min(all.len()), "tail {n}");
        assert_contiguous_suffix(&t, 99);
    }
    let huge = read_sync(&p, ReadOptions { tail: Tail::Last(10_000), ..Default::default() });
    assert_eq!(huge, all);
    assert!(read_sync(&p, ReadOptions { tail: Tail::Last(0), ..Default::default() }).is_empty());
}

#[test]
fn since_skips_old_gzipped_files_and_filters_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open_with(&p, Rotation { max_size: Some(1000), max_files: 5, compress: true }).unwrap();
    write_lines(&w, 0, 30);
    // Strictly after the last line written, strictly before the next.
    let since = clock_after(SystemTime::now());
    clock_after(since);
    write_lines(&w, 30, 40);
    w.wait_for_compression();
    let got = read_sync(&p, ReadOptions { since: Some(since), ..Default::default() });
    assert_eq!(got, (30..40).map(numbered).collect::<Vec<_>>());
}

#[test]
fn tail_across_plain_rotated_files() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = LogWriter::open_with(&p, Rotation { max_size: Some(1000), max_files: 3, compress: false }).unwrap();
    write_lines(&w, 0, 30);
    let all = read_sync(&p, ReadOptions::default());
    for n in [1, 2, 13, 14, 15, 28, 29] {
        let t = read_sync(&p, ReadOptions { tail: Tail::Last(n), ..Default::default() });
        assert_eq!(t, all[all.len() - n.min(all.len())..].to_vec(), "tail {n}");
    }
}

async fn follow_all(w: Arc<LogWriter>, p: PathBuf, total: usize, burst: usize) -> Vec<String> {
    let mut r = LogReader::open_live(&p, ReadOptions { tail: Tail::Last(0), ..Default::default() }, Some(w.subscribe()))
        .await
        .unwrap()
        .follow(None, std::future::pending());
    let writer = {
        let w = w.clone();
        std::thread::spawn(move || {
            for start in (0..total).step_by(burst) {
                let text: String = (start..(start + burst).min(total)).map(numbered).collect();
                w.write(LogStream::Stdout, text.as_bytes()).unwrap();
            }
            w.close().unwrap();
        })
    };
    let mut got = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(20), r.next()).await.expect("follower stalled") {
        let e: LogEntry = e.unwrap();
        got.push(String::from_utf8(e.line).unwrap());
    }
    writer.join().unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_across_rotations_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    // Enough files that a follower on a loaded machine never falls
    // max-file rotations behind; bursts cross file boundaries.
    let w = Arc::new(LogWriter::open_with(&p, Rotation { max_size: Some(2000), max_files: 100, compress: false }).unwrap());
    let got = follow_all(w.clone(), p, 2000, 7).await;
    assert!(w.subscribe().progress().rotations > 50);
    assert_eq!(got, (0..2000).map(numbered).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_across_rotations_of_compressed_files() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = Arc::new(LogWriter::open_with(&p, Rotation { max_size: Some(2000), max_files: 100, compress: true }).unwrap());
    let got = follow_all(w.clone(), p.clone(), 2000, 7).await;
    assert_eq!(got, (0..2000).map(numbered).collect::<Vec<_>>());
    w.wait_for_compression();
    assert!(names(d.path()).iter().filter(|n| n.ends_with(".gz")).count() > 50);
    assert_eq!(read_sync(&p, ReadOptions::default()), got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_by_more_than_max_file_skips_but_keeps_order() {
    let d = tempfile::tempdir().unwrap();
    let p = log_path(&d);
    let w = Arc::new(LogWriter::open_with(&p, Rotation { max_size: Some(1000), max_files: 2, compress: false }).unwrap());
    let mut r = LogReader::open_live(&p, ReadOptions::default(), Some(w.subscribe())).await.unwrap().follow(None, std::future::pending());
    write_lines(&w, 0, 5);
    assert_eq!(r.next().await.unwrap().unwrap().line, numbered(0).into_bytes());
    // Many rotations while the follower does not read.
    write_lines(&w, 5, 200);
    w.close().unwrap();
    let mut got = vec![numbered(0)];
    while let Some(e) = r.next().await {
        got.push(String::from_utf8(e.unwrap().line).unwrap());
    }
    // The file it held is read to its end, then the newest files: a gap,
    // but no duplicate and no reordering.
    assert!(got.starts_with(&(0..5).map(numbered).collect::<Vec<_>>()), "{got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert_eq!(got.last().unwrap(), &numbered(199));
}
